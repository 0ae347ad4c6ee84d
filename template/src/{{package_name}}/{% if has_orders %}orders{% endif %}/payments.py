"""The payment gateway behind an interface, so that tests (and a real provider) can stand in."""

from typing import Annotated, Protocol

from fastapi import Depends


class PaymentDeclinedError(Exception):
    """The gateway refused the charge; nothing was taken."""


class PaymentGateway(Protocol):
    async def charge(self, *, amount_cents: int, reference: str) -> None:
        """Take the amount, or raise PaymentDeclinedError."""


class ApprovingPaymentGateway:
    """Approves every charge: the stand-in until a provider is wired into get_payment_gateway."""

    async def charge(self, *, amount_cents: int, reference: str) -> None:
        return None


_gateway = ApprovingPaymentGateway()


async def get_payment_gateway() -> PaymentGateway:
    """`async`: FastAPI would run a plain `def` dependency in a worker thread."""
    return _gateway


PaymentGatewayDep = Annotated[PaymentGateway, Depends(get_payment_gateway)]
