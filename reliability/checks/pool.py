"""Pool exhaustion: a request that cannot get a connection gets 503 within the pool timeout."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from reliability import client as http
from reliability.checks import check
from reliability.checks._common import log_check
from reliability.checks._held_lock import HeldLock
from reliability.client import describe, is_problem, new_client
from reliability.report import Row
from reliability.target import Target

LABEL = "1 pool exhaustion"


@check("pool", order=1, label=LABEL)
async def check_pool_exhaustion(target: Target) -> list[Row]:
    pool_timeout = 1.0
    margin = 1.0
    sqlite = not target.variant.is_postgres
    row = Row(
        target.variant.id,
        LABEL,
        f"pool 1+0, timeout {pool_timeout:g}s; the one connection held by a request blocked on "
        + (
            "SQLite's write lock (held by another process); 4 more writes (they queue for the "
            "writers' single connection) and 4 reads sent meanwhile"
            if sqlite
            else "a table lock; 4 more requests and /health/ready sent meanwhile"
        ),
    )
    if not target.variant.with_examples:
        row.skipped = "no table to hold a lock on without examples"
        return [row]
    database = target.new_database("pool")
    try:
        with target.servers(
            database,
            database_pool_size="1",
            database_max_overflow="0",
            database_pool_timeout=str(pool_timeout),
        ) as servers:
            async with new_client(servers[0].url) as client:
                await http.create_item(client, "pool-seed", price_cents=100, stock=5)
                before = await asyncio.to_thread(database.count, "items")
                with HeldLock(database, seconds=4):
                    holder = asyncio.create_task(
                        client.post("/items", json={"name": "pool-holder", "price_cents": 1})
                    )
                    await asyncio.sleep(0.5)  # the holder now waits on the lock with the connection

                    async def timed(
                        method: str, url: str, body: Any = None
                    ) -> tuple[httpx.Response, float]:
                        started = time.monotonic()
                        response = await client.request(method, url, json=body)
                        return response, time.monotonic() - started

                    if sqlite:  # reads go on: only writers wait for the write lock
                        waiting, reads = await asyncio.gather(
                            asyncio.gather(
                                *(
                                    timed("POST", "/items", {"name": f"pool-{n}", "price_cents": 1})
                                    for n in range(3)
                                ),
                                timed("PATCH", "/items/1", {"stock": 7}),
                            ),
                            asyncio.gather(
                                *(timed("GET", "/items") for _ in range(2)),
                                timed("GET", "/items/1"),
                                timed("GET", "/health/ready"),
                            ),
                        )
                    else:
                        waiting = await asyncio.gather(
                            *(timed("GET", "/items") for _ in range(3)),
                            timed("GET", "/items/1"),
                            timed("GET", "/health/ready"),
                        )
                    holder_result = await holder
                statuses = [r.status_code for r, _ in waiting]
                slowest = max(seconds for _, seconds in waiting)
                row.expect(
                    all(r.status_code == 503 for r, _ in waiting),
                    f"every waiting request answered 503 ({statuses})",
                    f"waiting requests answered {[describe(r, 80) for r, _ in waiting]}",
                )
                row.expect(
                    all(is_problem(r) for r, _ in waiting),
                    "as problem details",
                )
                row.expect(
                    all(r.headers.get("retry-after") for r, _ in waiting),
                    "with Retry-After",
                )
                row.expect(
                    slowest <= pool_timeout + margin,
                    f"within {slowest:.2f}s ≤ timeout {pool_timeout:g}s + {margin:g}s",
                    f"slowest took {slowest:.2f}s > timeout {pool_timeout:g}s + {margin:g}s",
                )
                if sqlite:
                    row.expect(
                        all(r.status_code == 200 and seconds < 1 for r, seconds in reads),
                        "reads meanwhile answered at once (200): only writers queue",
                        f"reads meanwhile: {[(describe(r, 60), round(t, 2)) for r, t in reads]}",
                    )
                row.expect(
                    holder_result.status_code == 201,
                    "the request holding the connection completed once the lock went (201)",
                    f"the holding request got {describe(holder_result)}",
                )
                after = await client.get("/items")
                row.expect(
                    after.status_code == 200,
                    "the pool serves again afterwards (200)",
                    f"afterwards: {describe(after)}",
                )
                count = await asyncio.to_thread(database.count, "items")
                row.expect(
                    count == before + 1,
                    "exactly the holder's row was stored",
                    f"items went from {before} to {count}, expected +1",
                )
            log_check(row, servers)
    finally:
        database.drop()
    return [row]
