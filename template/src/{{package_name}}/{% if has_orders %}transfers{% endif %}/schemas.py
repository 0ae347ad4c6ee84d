from typing import Final, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_ID: Final = 2_147_483_647  # an integer key's range
MAX_AMOUNT: Final = 1_000_000_000_000
"""The largest amount one transfer or deposit moves, in minor units."""


class TransferCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_account_id: int = Field(ge=1, le=MAX_ID, description="The caller's own account.")
    to_account_id: int = Field(ge=1, le=MAX_ID)
    amount: int = Field(ge=1, le=MAX_AMOUNT, strict=True, description="In minor units (cents).")

    @model_validator(mode="after")
    def between_two_accounts(self) -> Self:
        if self.from_account_id == self.to_account_id:
            msg = "a transfer goes to another account than the one it comes from"
            raise ValueError(msg)
        return self


class TransferRead(BaseModel):
    from_account_id: int
    to_account_id: int
    amount: int
    balance: int = Field(description="The sending account's balance after the transfer.")


class AccountRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    display_name: str
    balance: int
