from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class OrderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_id: int = Field(ge=1, le=2_147_483_647)  # items.schemas.MAX_ID: an integer key's range
    quantity: int = Field(ge=1, le=1000)


class OrderRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    item_id: int
    quantity: int
    total_cents: int
    created_at: datetime
