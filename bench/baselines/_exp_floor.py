from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated
from fastapi import Depends, FastAPI, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict
from sqlalchemy import String, func
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from bench.baselines.common import database_url
class Base(DeclarativeBase): pass
class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    price_cents: Mapped[int]
    stock: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
class ItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int; name: str; price_cents: int; stock: int; created_at: datetime
@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    engine = create_async_engine(database_url().replace("postgresql://", "postgresql+asyncpg://", 1), pool_size=20, max_overflow=0)
    app.state.sm = async_sessionmaker(engine, expire_on_commit=False)
    yield
    await engine.dispose()
async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sm(execution_options={"isolation_level": "AUTOCOMMIT"}) as session, session.begin():
        yield session
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
app = FastAPI(lifespan=lifespan)
@app.get("/items/{item_id}")
async def get_item(item_id: int, session: SessionDep) -> ItemRead:
    item = await session.get(Item, item_id)
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    return ItemRead.model_validate(item)
