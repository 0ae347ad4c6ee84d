"""Reference: the least a FastAPI + SQLAlchemy ORM service on aiosqlite does with the generated
SQLite services' guarantees, for GET /items/{id} and POST /items; the SQLite counterpart of
`fastapi_sqlalchemy_floor` (its difference to `fastapi_aiosqlite` is SQLAlchemy's own cost).

- Every connection: the driver's implicit BEGIN off, foreign keys on, WAL, a busy timeout; at
  every checkout, the database file's identity compared with the one the connection opened.
- GET: a session on the readers' engine reads in autocommit mode (no BEGIN, no COMMIT), one
  `session.get`, the model validated into the answer.
- POST: a session on the writer's engine (one connection) begins with BEGIN IMMEDIATE, adds one
  item, flushes (INSERT … RETURNING) and commits before the response; a taken name is 409.

No settings beyond the pool's size, no other error mapping, no queue in front of the pools.
BENCH_SQLITE_PATH is the database file."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, status
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as create_engine
from sqlalchemy.pool import ConnectionPoolEntry

from bench.baselines.common import pool_limits
from bench.baselines.fastapi_sqlalchemy import Item, ItemCreate, ItemRead, add_item

PATH = os.environ.get("BENCH_SQLITE_PATH", "")


def identity() -> tuple[int, int]:
    status = os.stat(PATH)
    return status.st_dev, status.st_ino


def sqlite_engine(*, writer: bool) -> AsyncEngine:
    size, overflow = pool_limits()
    engine = create_engine(
        f"sqlite+aiosqlite:///{PATH}",
        pool_size=1 if writer else size,
        max_overflow=0 if writer else overflow,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA busy_timeout = 5000")
        cursor.close()
        record.info["file"] = identity()

    @event.listens_for(engine.sync_engine, "checkout")
    def checkout(_dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        if identity() != record.info["file"]:
            raise DisconnectionError("the database file was replaced")

    if writer:

        @event.listens_for(engine.sync_engine, "begin")
        def begin(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    readers, writer = sqlite_engine(writer=False), sqlite_engine(writer=True)
    app.state.readers = async_sessionmaker(readers, expire_on_commit=False)
    app.state.writer = async_sessionmaker(writer, expire_on_commit=False)
    try:
        yield
    finally:
        await readers.dispose()
        await writer.dispose()


async def get_reading_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.readers() as session:
        yield session


async def get_writing_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.writer() as session, session.begin():
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
