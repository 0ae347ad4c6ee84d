"""Baseline 1: plain Starlette + asyncpg (no validation library, no dependency injection)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

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


def item_json(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "price_cents": row["price_cents"],
        "stock": row["stock"],
        "created_at": row["created_at"].isoformat(),
    }


def problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"status": status, "detail": detail}, status_code=status)


async def get_item(request: Request) -> JSONResponse:
    try:
        item_id = int(request.path_params["item_id"])
    except ValueError:
        return problem(422, "item_id must be an integer")
    row = await request.app.state.pool.fetchrow(GET_ITEM, item_id)
    if row is None:
        return problem(404, f"Item {item_id} does not exist.")
    return JSONResponse(item_json(row))


async def list_items(request: Request) -> JSONResponse:
    try:
        limit = int(request.query_params.get("limit", "20"))
        offset = int(request.query_params.get("offset", "0"))
    except ValueError:
        return problem(422, "limit and offset must be integers")
    if not (1 <= limit <= 100 and 0 <= offset <= 1_000_000):
        return problem(422, "limit or offset out of range")
    rows = await request.app.state.pool.fetch(LIST_ITEMS, limit, offset)
    return JSONResponse([item_json(row) for row in rows])


async def create_item(request: Request) -> JSONResponse:
    body = await request.json()
    name, price, stock = body.get("name"), body.get("price_cents"), body.get("stock", 0)
    if not (
        isinstance(name, str)
        and 1 <= len(name) <= 200
        and isinstance(price, int)
        and price >= 0
        and isinstance(stock, int)
        and stock >= 0
    ):
        return problem(422, "The request is not valid.")
    try:
        row = await request.app.state.pool.fetchrow(CREATE_ITEM, name, price, stock)
    except asyncpg.UniqueViolationError:
        return problem(409, "The request conflicts with data already stored.")
    return JSONResponse(item_json(row), status_code=201)


async def me(request: Request) -> JSONResponse:
    token = request.cookies.get(COOKIE_NAME)
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return problem(401, "Log in first: no valid session.")
    row = await request.app.state.pool.fetchrow(CURRENT_USER, hash_token(token))
    if row is None:
        return problem(401, "Log in first: no valid session.")
    return JSONResponse(
        {"id": row["id"], "email": row["email"], "display_name": row["display_name"]}
    )


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.pool = await create_pool()
    try:
        yield
    finally:
        await app.state.pool.close()


app = Starlette(
    routes=[
        Route("/items/{item_id}", get_item, methods=["GET"]),
        Route("/items", list_items, methods=["GET"]),
        Route("/items", create_item, methods=["POST"]),
        Route("/auth/me", me, methods=["GET"]),
    ],
    lifespan=lifespan,
)
