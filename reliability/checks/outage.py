"""Database outage: the database taken away while the service runs, then given back."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from typing import Any

import httpx

from reliability import client as http
from reliability.checks import check
from reliability.checks._common import log_check
from reliability.client import UserSession, describe, is_problem, new_client
from reliability.databases import Database
from reliability.report import Row
from reliability.target import Target

LABEL = "2 database outage"


@check("outage", order=2, label=LABEL)
async def check_outage(target: Target) -> list[Row]:
    row = Row(target.variant.id, LABEL, "")
    database = target.new_database("outage")
    try:
        ways = database.outage_ways()
        if not ways:
            row.tried = "stop the PostgreSQL server while the service runs"
            row.skipped = "TEST_POSTGRES_URL's server is not ours to stop"
            return [row]
        with target.servers(database) as servers:
            server = servers[0]
            async with new_client(server.url, timeout=60) as client:
                user: UserSession | None = None
                if target.variant.has_users:
                    [user] = await http.new_users(client, "outage", 1)
                tried = []
                for n, way in enumerate(ways):
                    tried.append(await outage(row, target, database, client, user, way, n))
                row.tried = (
                    "; ".join(tried)
                    + " — while the service runs; requests during it; then the database back"
                )
                if len(ways) == 1 and not target.variant.is_postgres:
                    row.tried += (
                        " (chmod cannot stop a server running as root: run as non-root or let "
                        "the suite find an interpreter RELIABILITY_OS_USER may run)"
                    )
            log_check(row, servers)
    finally:
        with contextlib.suppress(Exception):
            database.give_back()
        database.drop()
    return [row]


async def outage(
    row: Row,
    target: Target,
    database: Database,
    client: httpx.AsyncClient,
    user: UserSession | None,
    way: str,
    n: int,
) -> str:
    """One outage: warm the pool, take the database away, probe, give it back, probe."""
    examples = target.variant.with_examples
    if examples:
        for k in range(3):
            await http.create_item(client, f"outage-{n}-seed-{k}")
        # several connections in the pool, so that stale ones are met afterwards
        await asyncio.gather(*(client.get("/items") for _ in range(12)))
    background = Background(client.base_url, user, n) if examples else None
    if background is not None:
        await background.start()
        await asyncio.sleep(0.5)
    how = await asyncio.to_thread(database.take_away, way)
    probes: list[tuple[str, str, dict[str, Any]]] = [("GET", "/health/ready", {})]
    if examples:
        probes += [
            ("GET", "/items", {}),
            ("GET", "/items/1", {}),
            ("POST", "/items", {"json": {"name": f"during-outage-{n}", "price_cents": 1}}),
        ]
    if user is not None:
        probes.append(("GET", "/auth/me", {"headers": user.headers()}))
    answers: list[tuple[str, httpx.Response, float]] = []
    try:
        for _round in range(3):
            for method, url, kwargs in probes:
                started = time.monotonic()
                response = await client.request(method, url, **kwargs)
                answers.append((f"{method} {url}", response, time.monotonic() - started))
        live = await client.get("/health/live")
    finally:
        await asyncio.to_thread(database.give_back)
    back_at = time.monotonic()
    tag = f"[{way}] "
    bad = [f"{what}: {describe(r, 100)}" for what, r, _ in answers if not is_problem(r, 503)]
    row.expect(
        not bad,
        f"{tag}{len(answers)} requests during the outage (ready, data"
        f"{', /auth/me' if user else ''}) all 503 problem details",
        f"{tag}during the outage: {bad[:4]}",
    )
    row.expect(
        all(r.headers.get("retry-after") for _, r, _ in answers),
        f"{tag}with Retry-After",
    )
    slowest = max(seconds for _, _, seconds in answers)
    row.expect(slowest < 10, f"{tag}each answered within {slowest:.1f}s (no hang)")
    row.expect(live.status_code == 200, f"{tag}/health/live still 200 (no database)")
    recovered = False
    while time.monotonic() < back_at + 30:
        if (await client.get("/health/ready")).status_code == 200:
            recovered = True
            break
        await asyncio.sleep(0.25)
    took = time.monotonic() - back_at
    row.expect(
        recovered,
        f"{tag}ready again {took:.1f}s after the database came back, no restart",
        f"{tag}not ready within 30s of the database coming back",
    )
    after: list[httpx.Response] = []
    if examples:
        after += await asyncio.gather(*(client.get("/items") for _ in range(12)))
        after.append(
            await client.post("/items", json={"name": f"after-outage-{n}", "price_cents": 1})
        )
    if user is not None:
        after.append(await client.get("/auth/me", headers=user.headers()))
    failed_after = [describe(r, 100) for r in after if r.status_code >= 400]
    row.expect(
        not failed_after,
        f"{tag}the next {len(after)} requests succeed"
        f"{' (the session from before still valid)' if user else ''}",
        f"{tag}after recovery: {failed_after[:4]}",
    )
    if background is not None:
        await asyncio.sleep(0.5)
        outcomes = await background.stop()
        stored = {
            name for (name,) in await asyncio.to_thread(database.rows, "SELECT name FROM items")
        }
        row.expect(
            f"during-outage-{n}" not in stored and f"after-outage-{n}" in stored,
            f"{tag}the write tried during the outage not stored; the one after it stored",
        )
        statuses = Counter(o.status for o in outcomes)
        wrong = [o for o in outcomes if o.status not in (200, 201, 503)]
        row.expect(
            not wrong,
            f"{tag}{len(outcomes)} requests kept in flight across the outage and back: only "
            f"2xx and 503 ({', '.join(f'{k}×{v}' for k, v in sorted(statuses.items(), key=str))})",
            f"{tag}requests in flight across the outage: {len(wrong)} neither 2xx nor 503: "
            f"{[f'{o.kind}: {o.status} {o.error or str(o.body)[:100]}' for o in wrong[:3]]}",
        )
        created = {o.info["name"] for o in outcomes if o.status == 201}
        row.expect(
            created <= stored,
            f"{tag}all {len(created)} of their creates answered 201 are stored",
            f"{tag}{len(created - stored)} creates answered 201 are missing",
        )
        refused = {o.info["name"] for o in outcomes if o.status == 503}
        row.held.append(
            f"{tag}{len(refused & stored)} of {len(refused)} creates answered 503 were stored "
            "anyway (the connection went during COMMIT: outcome unknown to the server too)"
            if refused & stored
            else f"{tag}none of their {len(refused)} creates answered 503 was stored"
        )
    return how


class Background:
    """Requests kept in flight (12 at a time, a client of their own) while the database goes
    away and comes back: creates, reads and, with users, /auth/me."""

    def __init__(self, base_url: httpx.URL, user: UserSession | None, n: int) -> None:
        self.client = new_client(str(base_url), connections=12, timeout=60)
        self.user = user
        self.n = n
        self.outcomes: list[http.Outcome] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._loop(worker)) for worker in range(12)]

    async def _loop(self, worker: int) -> None:
        for k in itertools.count():
            if self._stop.is_set():
                return
            kind = ("create", "list", "get", "me")[k % (4 if self.user else 3)]
            name = f"bg-{self.n}-{worker}-{k}"
            started = time.monotonic()
            try:
                if kind == "create":
                    body = {"name": name, "price_cents": 2}
                    response = await self.client.post("/items", json=body)
                elif kind == "list":
                    response = await self.client.get("/items")
                elif kind == "get":
                    response = await self.client.get("/items/1")
                else:
                    assert self.user is not None
                    response = await self.client.get("/auth/me", headers=self.user.headers())
            except httpx.HTTPError as exc:
                outcome = http.Outcome(kind, None, time.monotonic() - started, error=repr(exc))
            else:
                outcome = http.Outcome(
                    kind, response.status_code, time.monotonic() - started, body=response.text
                )
            outcome.info["name"] = name
            self.outcomes.append(outcome)

    async def stop(self) -> list[http.Outcome]:
        self._stop.set()
        await asyncio.gather(*self._tasks)
        await self.client.aclose()
        return self.outcomes
