"""SQLite writers: many concurrent writers all succeed; readers are not blocked."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import httpx

from reliability import client as http
from reliability.checks import check
from reliability.checks._common import (
    DATABASE_LOCKED,
    log_check,
)
from reliability.checks._held_lock import HeldLock
from reliability.checks._judge import rest_checks
from reliability.client import describe, new_client
from reliability.databases import Database
from reliability.report import Row
from reliability.target import Target

LABEL = "4 SQLite writers"


@check("sqlite-writers", order=4, label=LABEL, applies=lambda variant: not variant.is_postgres)
async def check_sqlite_writers(target: Target) -> list[Row]:
    writers = target.sizes.sqlite_writers
    hold = 3.0
    row = Row(
        target.variant.id,
        LABEL,
        f"{writers} concurrent writers (half inserts, half read-then-write updates) released at "
        f"once, 8 readers looping meanwhile; again while another process holds the write lock "
        f"for {hold:g}s",
    )
    if not target.variant.with_examples:
        row.skipped = "no data endpoints without examples"
        return [row]
    database = target.new_database("writers")
    try:
        with target.servers(database) as servers:
            async with new_client(servers[0].url, connections=writers + 20) as client:
                seeds = [await http.create_item(client, f"w-seed-{n}", stock=0) for n in range(5)]
                for round_, held in enumerate((0.0, hold)):
                    await writers_round(row, target, database, client, seeds, round_, held)
            count = await asyncio.to_thread(database.count, "items")
            row.expect(
                count == len(seeds) + writers,
                f"exactly the {writers} inserted rows stored",
                f"{count - len(seeds)} inserted rows stored, expected {writers}",
            )
            log_locked = [line for s in servers for line in s.log_problems(pattern=DATABASE_LOCKED)]
            row.expect(not log_locked, 'no "database is locked" in the logs')
            await rest_checks(row, database, servers)
            log_check(row, servers)
    finally:
        database.drop()
    return [row]


async def writers_round(
    row: Row,
    target: Target,
    database: Database,
    client: httpx.AsyncClient,
    seeds: list[dict[str, Any]],
    round_: int,
    held: float,
) -> None:
    writers = target.sizes.sqlite_writers
    tag = f"[lock held {held:g}s] " if held else "[at once] "
    go = asyncio.Event()
    writes_left = writers

    async def write(n: int) -> httpx.Response:
        nonlocal writes_left
        await go.wait()
        try:
            if n % 2:
                body = {"name": f"writer-{round_}-{n}", "price_cents": 2}
                return await client.post("/items", json=body)
            seed = seeds[n % len(seeds)]
            return await client.patch(f"/items/{seed['id']}", json={"stock": n})
        finally:
            writes_left -= 1

    reads: list[tuple[float, float, int]] = []  # (started, seconds, status)

    async def read(n: int) -> None:
        await go.wait()
        if held:
            await asyncio.sleep(0.5)  # after the burst of the writers' arrival
        while writes_left > 0:
            started = time.monotonic()
            url = f"/items/{seeds[n % len(seeds)]['id']}" if n % 2 else "/items"
            response = await reader.get(url)
            reads.append((started, time.monotonic() - started, response.status_code))

    reader = new_client(str(client.base_url), connections=8)  # a pool of their own
    tasks = [asyncio.create_task(write(n)) for n in range(writers)]
    readers = [asyncio.create_task(read(n)) for n in range(8)]
    lock = HeldLock(database, held)
    with lock if held else contextlib.nullcontext():
        started = time.monotonic()
        go.set()
        responses = await asyncio.gather(*tasks)
        took = time.monotonic() - started
    await asyncio.gather(*readers)
    await reader.aclose()
    if held:
        # the reads in flight while the writers were all waiting, before the burst of writes
        # once the lock goes
        window = (lock.locked_at + 0.5, lock.locked_at + held - 1.0)
        reads = [r for r in reads if r[0] < window[1] and r[0] + r[1] > window[0]]
    failed = [describe(r, 100) for r in responses if r.status_code not in (200, 201)]
    locked = [r for r in responses if DATABASE_LOCKED.search(r.text)]
    row.expect(
        not failed,
        f"{tag}all {writers} writers succeeded in {took:.2f}s",
        f"{tag}{len(failed)} writers failed: {failed[:3]}",
    )
    row.expect(not locked, f'{tag}no "database is locked" answer')
    read_times = sorted(seconds for _, seconds, _ in reads)
    bad_reads = [status for _, _, status in reads if status != 200]
    slowest = read_times[-1] if read_times else 0.0
    median = read_times[len(read_times) // 2] if read_times else 0.0
    row.expect(
        bool(reads) and not bad_reads,
        f"{tag}{len(reads)} reads {'while the writers waited' if held else 'meanwhile'}, all 200",
        f"{tag}reads: {len(reads)}, failed {len(bad_reads)} ({bad_reads[:5]})",
    )
    # Readers never wait for SQLite's write lock in WAL mode; if they wait for anything, it is
    # for connections the waiting writers hold. With the lock held elsewhere the writers wait
    # (nearly idle) for `held` seconds: reads must not (a blocked one takes until the lock goes,
    # over 1s). The 95th percentile, not the slowest: on a busy 2-core machine a read now and
    # then stalls for other reasons; blocked readers are all slow.
    p95 = read_times[min(len(read_times) - 1, int(len(read_times) * 0.95))] if reads else 0.0
    limit = 1.0 if held else max(1.0, took / 2)
    row.expect(
        p95 <= limit,
        f"{tag}readers not blocked: 95% of reads within {p95:.2f}s (limit {limit:.2f}s), "
        f"median {median:.3f}s, slowest {slowest:.2f}s",
        f"{tag}readers blocked: 95% of reads took up to {p95:.2f}s, median {median:.3f}s, "
        f"slowest {slowest:.2f}s, while the writes took {took:.2f}s",
    )
