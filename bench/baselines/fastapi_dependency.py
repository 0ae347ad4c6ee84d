"""Reference for `python -m bench.instructions`: the FastAPI baseline's GET /items/{id} with one
yield dependency declared like the generated `SessionDep` (`scope="function"`) that does no work
at all. The difference to `fastapi_asyncpg` is FastAPI's own cost of such a dependency."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request, status

from bench.baselines.common import GET_ITEM
from bench.baselines.fastapi_asyncpg import ItemRead, lifespan


class Unit:
    """What the dependency hands out: nothing."""


async def get_unit() -> AsyncIterator[Unit]:
    yield Unit()


UnitDep = Annotated[Unit, Depends(get_unit, scope="function")]
app = FastAPI(lifespan=lifespan)


@app.get("/items/{item_id}")
async def get_item(item_id: int, request: Request, _unit: UnitDep) -> ItemRead:
    row = await request.app.state.pool.fetchrow(GET_ITEM, item_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"Item {item_id} does not exist.")
    return ItemRead(**row)
