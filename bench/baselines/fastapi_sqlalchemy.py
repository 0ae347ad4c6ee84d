"""Reference (optional, --orm-baseline): the straightforward FastAPI + SQLAlchemy ORM app a team
would start from — one AsyncSession per request, `session.begin()` as the unit of work,
`session.get` — with none of the generated services' tuning. Same tables and answers."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import String, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bench.baselines.common import COOKIE_NAME, MAX_TOKEN_LENGTH, hash_token, pool_limits
from bench.baselines.common import database_url as asyncpg_url


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    price_cents: Mapped[int]
    stock: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class UserSession(Base):
    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str]
    user_id: Mapped[int]
    expires_at: Mapped[datetime]


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str]


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int]
    display_name: Mapped[str]


class ItemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    price_cents: int = Field(ge=0, le=2_000_000_000)
    stock: int = Field(default=0, ge=0, le=2_000_000_000)


class ItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

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
    size, overflow = pool_limits()
    engine = create_async_engine(
        asyncpg_url().replace("postgresql://", "postgresql+asyncpg://", 1),
        pool_size=size,
        max_overflow=overflow,
    )
    app.state.sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    try:
        yield
    finally:
        await engine.dispose()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessionmaker() as session, session.begin():
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
app = FastAPI(lifespan=lifespan)


@app.get("/items/{item_id}")
async def get_item(item_id: int, session: SessionDep) -> ItemRead:
    item = await session.get(Item, item_id)
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"Item {item_id} does not exist.")
    return ItemRead.model_validate(item)


@app.get("/items")
async def list_items(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[ItemRead]:
    items = await session.scalars(select(Item).order_by(Item.id).limit(limit).offset(offset))
    return [ItemRead.model_validate(item) for item in items]


async def add_item(session: AsyncSession, body: ItemCreate) -> ItemRead:
    """The item inserted (flushed) in the session's transaction; 409 when the name is taken."""
    item = Item(**body.model_dump())
    session.add(item)
    try:
        await session.flush()
    except IntegrityError:
        raise HTTPException(status.HTTP_409_CONFLICT, "The name is taken.") from None
    return ItemRead.model_validate(item)


@app.post("/items", status_code=status.HTTP_201_CREATED)
async def create_item(body: ItemCreate, session: SessionDep) -> ItemRead:
    return await add_item(session, body)


@app.get("/auth/me")
async def me(request: Request, session: SessionDep) -> UserRead:
    token = request.cookies.get(COOKIE_NAME)
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Log in first: no valid session.")
    row = (
        await session.execute(
            select(User.id, User.email, Account.display_name)
            .join(UserSession, UserSession.user_id == User.id)
            .join(Account, Account.user_id == User.id)
            .where(UserSession.token_hash == hash_token(token), UserSession.expires_at > func.now())
        )
    ).first()
    if row is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Log in first: no valid session.")
    return UserRead(id=row.id, email=row.email, display_name=row.display_name)
