"""The checks, each against real uvicorn processes of a rendered variant, a real database and real
HTTP clients on loopback. Every check returns rows for the result table.

One module per check: a module of this package whose name does not start with `_` holds one
function decorated with `@check(...)`, which registers it; `registry()` imports every such module
(pkgutil) and returns the checks in their order. The modules starting with `_` hold what several
checks share. Adding a check is adding one module.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from toolkit.answers import Variant

if TYPE_CHECKING:
    from reliability.report import Row
    from reliability.target import Target

Run = Callable[["Target"], Awaitable[list["Row"]]]


def everywhere(_variant: Variant) -> bool:
    return True


@dataclass(frozen=True)
class Check:
    name: str
    """What --check takes."""
    order: int
    """Where it runs among the checks (and its number in the table)."""
    label: str
    """Its rows' name in the result table."""
    run: Run
    applies: Callable[[Variant], bool]
    """Whether the check means anything for a variant; if not, it is not run on it."""


_REGISTERED: dict[str, Check] = {}


def check(
    name: str, *, order: int, label: str, applies: Callable[[Variant], bool] = everywhere
) -> Callable[[Run], Run]:
    """Register the decorated coroutine function as the check `name`."""

    def register(run: Run) -> Run:
        if name in _REGISTERED:
            raise ValueError(f"two checks are named {name!r}")
        _REGISTERED[name] = Check(name, order, label, run, applies)
        return run

    return register


@cache
def registry() -> dict[str, Check]:
    """Every check of this package, by name, in their order."""
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")
    return dict(sorted(_REGISTERED.items(), key=lambda item: (item[1].order, item[0])))


def applies(name: str, variant: Variant) -> bool:
    return registry()[name].applies(variant)
