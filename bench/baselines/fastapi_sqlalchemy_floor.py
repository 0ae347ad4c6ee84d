"""Reference for `python -m bench.instructions`: the least a FastAPI + SQLAlchemy ORM service does
with the generated services' guarantees, for two routes. Both take their AsyncSession from a
`scope="function"` yield dependency (its transaction ends before the response is sent).

- GET /items/{id}: the session reads in autocommit mode (no BEGIN/COMMIT), one `session.get`,
  the model validated into the answer. The difference to `fastapi_dependency` is SQLAlchemy's own
  cost.
- POST /items: one transaction (BEGIN, the unit of work's INSERT … RETURNING at `flush`, COMMIT),
  a taken name answered 409. The difference to `fastapi_asyncpg`'s POST (one autocommitted
  INSERT) is SQLAlchemy's unit of work and the transaction's two round trips.

No settings, no other error mapping. A variant's difference to this app is what the template
adds. BENCH_SQLALCHEMY_DRIVER picks the driver (asyncpg, or psycopg)."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request, status
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from bench.baselines.common import database_url, pool_limits
from bench.baselines.fastapi_sqlalchemy import Item, ItemCreate, ItemRead, add_item

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


async def get_reading_session(request: Request) -> AsyncIterator[AsyncSession]:
    sessionmaker = request.app.state.sessionmaker
    async with sessionmaker(execution_options=AUTOCOMMIT) as session, session.begin():
        yield session


async def get_writing_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessionmaker() as session, session.begin():
        yield session


ReadingSessionDep = Annotated[AsyncSession, Depends(get_reading_session, scope="function")]
WritingSessionDep = Annotated[AsyncSession, Depends(get_writing_session, scope="function")]
app = FastAPI(lifespan=lifespan)


@app.get("/items/{item_id}")
async def get_item(item_id: int, session: ReadingSessionDep) -> ItemRead:
    item = await session.get(Item, item_id)
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"Item {item_id} does not exist.")
    return ItemRead.model_validate(item)


@app.post("/items", status_code=status.HTTP_201_CREATED)
async def create_item(body: ItemCreate, session: WritingSessionDep) -> ItemRead:
    return await add_item(session, body)
