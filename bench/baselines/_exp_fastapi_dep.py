"""FastAPI raw asyncpg + one yield dependency (scope=function) that does nothing: framework cost of SessionDep."""
from collections.abc import AsyncIterator
from typing import Annotated
from fastapi import Depends, Request, HTTPException, status
from bench.baselines import fastapi_asyncpg as base
from bench.baselines.common import GET_ITEM
app = base.app
class Token: pass
async def get_token(request: Request) -> AsyncIterator[Token]:
    t = Token()
    try:
        yield t
    finally:
        pass
TokenDep = Annotated[Token, Depends(get_token, scope="function")]
@app.get("/dep/items/{item_id}")
async def get_item_dep(item_id: int, request: Request, token: TokenDep) -> base.ItemRead:
    row = await request.app.state.pool.fetchrow(GET_ITEM, item_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    return base.ItemRead(**row)
