"""Reference for `python -m bench.instructions`: the least a FastAPI + SQLAlchemy ORM service does
for GET /items/{id} with the generated services' guarantees — a `scope="function"` yield
dependency that opens an AsyncSession reading in autocommit mode (no BEGIN/COMMIT), one
`session.get`, the model validated into the answer. No settings, no error mapping, one route.
The difference to `fastapi_dependency` is SQLAlchemy's own cost; a variant's difference to this
app is what the template adds. BENCH_SQLALCHEMY_DRIVER picks the driver (asyncpg, or psycopg)."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request, status
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from bench.baselines.common import database_url, pool_limits
from bench.baselines.fastapi_sqlalchemy import Item, ItemRead

AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}
DRIVER = os.environ.get("BENCH_SQLALCHEMY_DRIVER", "asyncpg")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    size, overflow = pool_limits()
    engine = create_async_engine(
        database_url().replace("postgresql://", f"postgresql+{DRIVER}://", 1),
        pool_size=size,
        max_overflow=overflow,
    )
    app.state.sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    try:
        yield
    finally:
        await engine.dispose()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    sessionmaker = request.app.state.sessionmaker
    async with sessionmaker(execution_options=AUTOCOMMIT) as session, session.begin():
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
app = FastAPI(lifespan=lifespan)


@app.get("/items/{item_id}")
async def get_item(item_id: int, session: SessionDep) -> ItemRead:
    item = await session.get(Item, item_id)
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"Item {item_id} does not exist.")
    return ItemRead.model_validate(item)
