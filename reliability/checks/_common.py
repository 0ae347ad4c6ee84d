"""What every check uses: waiting for a condition, and the servers' logs checked for errors."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

from reliability.report import Row
from reliability.server import Server

PREPARED_STATEMENT_ERROR = re.compile(r"prepared statement|InvalidSQLStatementName", re.IGNORECASE)
DATABASE_LOCKED = re.compile(r"database is locked", re.IGNORECASE)
MISSING_ID = 999_999


async def settle(condition: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """Poll a (blocking) condition until it holds or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        if await asyncio.to_thread(condition):
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)


def log_check(row: Row, servers: list[Server], since: dict[int, int] | None = None) -> None:
    problems = [
        line
        for server in servers
        for line in server.log_problems((since or {}).get(server.port, 0))
    ]
    row.expect(
        not problems,
        "server logs free of unhandled errors",
        f"server logs report errors: {problems[:3]}",
    )
