"""Seed a generated project's database with items, through the project's own models and engine.

Run with the project's interpreter, in the project directory, DATABASE_URL set:
    python /path/to/bench/seed.py PACKAGE COUNT
"""

import asyncio
import importlib
import sys

from sqlalchemy import insert, text


async def seed(package: str, count: int) -> None:
    settings = importlib.import_module(f"{package}.settings").Settings()
    database = importlib.import_module(f"{package}.db").Database.from_settings(settings)
    item = importlib.import_module(f"{package}.models").Item
    rows = [
        {"name": f"item-{n:06d}", "price_cents": (n * 37) % 100_000, "stock": 1000}
        for n in range(1, count + 1)
    ]
    try:
        async with database.engine.begin() as connection:
            await connection.execute(insert(item), rows)
        if database.engine.dialect.name == "postgresql":
            async with database.engine.connect() as connection:
                await connection.execution_options(isolation_level="AUTOCOMMIT")
                await connection.execute(text("ANALYZE"))
    finally:
        await database.dispose()


if __name__ == "__main__":
    asyncio.run(seed(sys.argv[1], int(sys.argv[2])))
