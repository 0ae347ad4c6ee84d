"""Baseline 3: FastAPI + raw aiosqlite, the SQLite counterpart of `fastapi_asyncpg`: the same
pydantic models, endpoints and SQL (with SQLite's placeholders) over the same tables, written the
way a team would by hand — one aiosqlite connection opened at startup, each statement one call
(`execute_fetchall`) in autocommit mode, no ORM, no transaction around single statements.

BENCH_SQLITE_PATH is the database file (`python -m bench.dbtool sqlite` creates it)."""

import datetime as dt
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import aiosqlite
from fastapi import FastAPI, HTTPException, Query, Request, status

from bench.baselines.common import COOKIE_NAME, ITEM_COLUMNS, MAX_TOKEN_LENGTH, hash_token
from bench.baselines.fastapi_asyncpg import ItemCreate, ItemRead, UserRead

GET_ITEM = f"SELECT {ITEM_COLUMNS} FROM items WHERE id = ?"
LIST_ITEMS = f"SELECT {ITEM_COLUMNS} FROM items ORDER BY id LIMIT ? OFFSET ?"
CREATE_ITEM = (
    f"INSERT INTO items (name, price_cents, stock) VALUES (?, ?, ?) RETURNING {ITEM_COLUMNS}"
)
CURRENT_USER = (
    "SELECT u.id, u.email, a.display_name FROM user_sessions s"
    " JOIN users u ON u.id = s.user_id JOIN accounts a ON a.user_id = u.id"
    " WHERE s.token_hash = ? AND s.expires_at > ?"
)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    connection = await aiosqlite.connect(os.environ["BENCH_SQLITE_PATH"], isolation_level=None)
    connection.row_factory = sqlite3.Row
    await connection.executescript(
        "PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
        " PRAGMA busy_timeout = 5000;"
    )
    app.state.db = connection
    try:
        yield
    finally:
        await connection.close()


app = FastAPI(lifespan=lifespan)


@app.get("/items/{item_id}")
async def get_item(item_id: int, request: Request) -> ItemRead:
    rows = await request.app.state.db.execute_fetchall(GET_ITEM, (item_id,))
    if not rows:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"Item {item_id} does not exist.")
    return ItemRead(**rows[0])


@app.get("/items")
async def list_items(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[ItemRead]:
    rows = await request.app.state.db.execute_fetchall(LIST_ITEMS, (limit, offset))
    return [ItemRead(**row) for row in rows]


@app.post("/items", status_code=status.HTTP_201_CREATED)
async def create_item(body: ItemCreate, request: Request) -> ItemRead:
    try:
        rows = await request.app.state.db.execute_fetchall(
            CREATE_ITEM, (body.name, body.price_cents, body.stock)
        )
    except sqlite3.IntegrityError:
        raise HTTPException(status.HTTP_409_CONFLICT, "The name is taken.") from None
    return ItemRead(**rows[0])


@app.get("/auth/me")
async def me(request: Request) -> UserRead:
    token = request.cookies.get(COOKIE_NAME)
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Log in first: no valid session.")
    now = dt.datetime.now(dt.UTC).isoformat(sep=" ")
    rows = await request.app.state.db.execute_fetchall(CURRENT_USER, (hash_token(token), now))
    if not rows:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Log in first: no valid session.")
    return UserRead(**rows[0])
