"""Baseline 2: FastAPI + raw asyncpg, written the way a team would by hand: pydantic models for
bodies and responses, SQL through the pool, no ORM, no transaction around single statements."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated

import asyncpg
from fastapi import FastAPI, HTTPException, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from bench.baselines.common import (
    COOKIE_NAME,
    CREATE_ITEM,
    CURRENT_USER,
    GET_ITEM,
    LIST_ITEMS,
    MAX_TOKEN_LENGTH,
    create_pool,
    hash_token,
)


class ItemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    price_cents: int = Field(ge=0, le=2_000_000_000)
    stock: int = Field(default=0, ge=0, le=2_000_000_000)


class ItemRead(BaseModel):
    id: int
    name: str
    price_cents: int
    stock: int
    created_at: datetime


class UserRead(BaseModel):
    id: int
    email: str
    display_name: str


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.pool = await create_pool()
    try:
        yield
    finally:
        await app.state.pool.close()


app = FastAPI(lifespan=lifespan)


@app.get("/items/{item_id}")
async def get_item(item_id: int, request: Request) -> ItemRead:
    row = await request.app.state.pool.fetchrow(GET_ITEM, item_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"Item {item_id} does not exist.")
    return ItemRead(**row)


@app.get("/items")
async def list_items(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[ItemRead]:
    rows = await request.app.state.pool.fetch(LIST_ITEMS, limit, offset)
    return [ItemRead(**row) for row in rows]


@app.post("/items", status_code=status.HTTP_201_CREATED)
async def create_item(body: ItemCreate, request: Request) -> ItemRead:
    try:
        row = await request.app.state.pool.fetchrow(
            CREATE_ITEM, body.name, body.price_cents, body.stock
        )
    except asyncpg.UniqueViolationError:
        raise HTTPException(status.HTTP_409_CONFLICT, "The name is taken.") from None
    return ItemRead(**row)


@app.get("/auth/me")
async def me(request: Request) -> UserRead:
    token = request.cookies.get(COOKIE_NAME)
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Log in first: no valid session.")
    row = await request.app.state.pool.fetchrow(CURRENT_USER, hash_token(token))
    if row is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Log in first: no valid session.")
    return UserRead(**row)
