from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_ID = 2_147_483_647
"""The largest id an integer primary key holds on every database (PostgreSQL's is 32-bit): a
larger one in a request is refused as invalid instead of failing in the database driver."""

WITHOUT_NUL = r"^[^\x00]*$"
"""PostgreSQL's text types cannot hold NUL characters (SQLite would store them): refuse them."""

Name = Annotated[str, Field(min_length=1, max_length=200, pattern=WITHOUT_NUL)]
Cents = Annotated[int, Field(ge=0, le=2_000_000_000)]
Stock = Annotated[int, Field(ge=0, le=2_000_000_000)]


class ItemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    price_cents: Cents
    stock: Stock = 0


class ItemUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    price_cents: Cents | None = None
    stock: Stock | None = None

    @field_validator("name", "price_cents", "stock")
    @classmethod
    def refuse_null(cls, value: object) -> object:
        if value is None:
            msg = "may be left out, but not null"
            raise ValueError(msg)
        return value


class ItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    price_cents: int
    stock: int
    created_at: datetime
