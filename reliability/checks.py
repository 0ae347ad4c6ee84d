"""The checks of issue 5, each against real uvicorn processes of a rendered variant, a real
database and real HTTP clients on loopback. Every check returns rows for the result table."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import re
import sqlite3
import subprocess
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from reliability import client as http
from reliability.client import Op, UserSession, describe, is_problem, new_client
from reliability.databases import Database, PgDatabase, SqliteDatabase
from reliability.pg import PgBouncer, install_pgbouncer
from reliability.project import Variant
from reliability.report import Row
from reliability.server import Server
from reliability.target import POOL_SIZE, Target

Check = Callable[[Target], Awaitable[list[Row]]]

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


# ----------------------------------------------------------------------------- 1. pool


class HeldLock:
    """Hold the items table (PostgreSQL: ACCESS EXCLUSIVE lock) or SQLite's write lock from
    outside the service for `seconds`, so that a request needing it keeps its pooled
    connection while it waits."""

    def __init__(self, database: Database, seconds: float) -> None:
        self.database = database
        self.seconds = seconds
        self._process: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None
        self._locked = threading.Event()
        self.locked_at = 0.0  # time.monotonic() when the lock was taken (SQLite)

    def __enter__(self) -> HeldLock:
        if isinstance(self.database, PgDatabase):
            pg = self.database.pg
            self._process = subprocess.Popen(
                [
                    pg.psql,
                    "-X",
                    "-q",
                    "-h",
                    pg.server.host,
                    "-p",
                    str(pg.server.port),
                    "-U",
                    pg.server.user,
                    "-d",
                    self.database.name,
                    "-c",
                    "BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE; "
                    f"SELECT pg_sleep({self.seconds}); COMMIT;",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                granted = pg.scalar(
                    "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                    "WHERE c.relname = 'items' AND l.mode = 'AccessExclusiveLock' AND l.granted",
                    self.database.name,
                )
                if granted == "1":
                    break
                time.sleep(0.05)
        else:
            assert isinstance(self.database, SqliteDatabase)
            path = self.database.path

            def hold() -> None:
                connection = sqlite3.connect(path, timeout=10, isolation_level=None)
                try:
                    connection.execute("BEGIN IMMEDIATE")
                    self.locked_at = time.monotonic()
                    self._locked.set()
                    time.sleep(self.seconds)
                    connection.execute("ROLLBACK")
                finally:
                    connection.close()

            self._thread = threading.Thread(target=hold, daemon=True)
            self._thread.start()
            self._locked.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.wait(timeout=self.seconds + 30)
        if self._thread is not None:
            self._thread.join(self.seconds + 30)
        if isinstance(self.database, SqliteDatabase):
            self.database.give_to_server_user()


async def check_pool_exhaustion(target: Target) -> list[Row]:
    pool_timeout = 1.0
    margin = 1.0
    sqlite = not target.variant.is_postgres
    row = Row(
        target.variant.id,
        "1 pool exhaustion",
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


# ----------------------------------------------------------------------------- 2. outage


async def check_outage(target: Target) -> list[Row]:
    row = Row(target.variant.id, "2 database outage", "")
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


# ----------------------------------------------------------------------------- 3. load


class LoadPlan:
    """Seed data and a shuffled mix of requests: reads, writes, intended failures."""

    def __init__(self, target: Target, requests: int, seed: int) -> None:
        self.target = target
        self.requests = requests
        self.rng = random.Random(seed)
        self.items: dict[str, dict[str, Any]] = {}
        self.scratch: dict[str, Any] = {}
        self.declining: dict[str, Any] | None = None
        self.users: list[UserSession] = []
        self.initial_stock: dict[int, int] = {}

    async def seed(self, client: httpx.AsyncClient, users: int) -> None:
        for n in range(8):
            item = await http.create_item(client, f"seed-{n}", price_cents=200 + 2 * n, stock=1000)
            self.items[item["name"]] = item
            self.initial_stock[item["id"]] = 1000
        self.scratch = await http.create_item(client, "scratch", price_cents=10, stock=0)
        self.initial_stock[self.scratch["id"]] = 0
        if self.target.variant.has_orders:
            # odd price: the served payment gateway declines every charge of it
            self.declining = await http.create_item(client, "declined", price_cents=301, stock=1000)
            self.initial_stock[self.declining["id"]] = 1000
            self.users = await http.new_users(client, "load", users)

    def ops(self) -> list[Op]:
        rng = self.rng
        seeds = list(self.items.values())
        weights: dict[str, int] = {
            "list": 14,
            "get": 10,
            "get-missing": 3,
            "create": 15,
            "create-duplicate": 6,
            "rename-duplicate": 4,
            "update": 5,
            "invalid": 3,
            "ready": 1,
        }
        if self.target.variant.has_orders:
            weights |= {
                "order": 20,
                "order-declined": 6,
                "order-missing-item": 2,
                "order-no-csrf": 2,
                "orders-list": 4,
                "me": 4,
            }
        kinds = rng.choices(list(weights), list(weights.values()), k=self.requests)
        names = itertools.count()
        ops: list[Op] = []
        for kind in kinds:
            item = rng.choice(seeds)
            user = rng.choice(self.users) if self.users else None
            if kind == "list":
                params = {"limit": rng.randint(1, 50), "offset": rng.randint(0, 20)}
                ops.append(Op(kind, _get("/items", params=params), frozenset({200})))
            elif kind == "get":
                ops.append(Op(kind, _get(f"/items/{item['id']}"), frozenset({200})))
            elif kind == "get-missing":
                ops.append(Op(kind, _get(f"/items/{MISSING_ID}"), frozenset({404})))
            elif kind == "create":
                name = f"load-{next(names)}"
                body = {"name": name, "price_cents": 2 * rng.randint(1, 500), "stock": 0}
                ops.append(
                    Op(kind, _send("POST", "/items", json=body), frozenset({201}), {"name": name})
                )
            elif kind == "create-duplicate":
                body = {"name": item["name"], "price_cents": 100}
                ops.append(Op(kind, _send("POST", "/items", json=body), frozenset({409})))
            elif kind == "rename-duplicate":
                other = rng.choice([s for s in seeds if s["id"] != item["id"]])
                body = {"name": other["name"]}
                ops.append(
                    Op(kind, _send("PATCH", f"/items/{item['id']}", json=body), frozenset({409}))
                )
            elif kind == "update":
                body = {"price_cents": 2 * rng.randint(1, 500)}
                ops.append(
                    Op(
                        kind,
                        _send("PATCH", f"/items/{self.scratch['id']}", json=body),
                        frozenset({200}),
                    )
                )
            elif kind == "invalid":
                body = {"name": "", "price_cents": -1}
                ops.append(Op(kind, _send("POST", "/items", json=body), frozenset({422})))
            elif kind == "ready":
                ops.append(Op(kind, _get("/health/ready"), frozenset({200})))
            elif kind == "order":
                assert user is not None
                quantity = rng.randint(1, 3)
                body = {"item_id": item["id"], "quantity": quantity}
                ops.append(
                    Op(
                        kind,
                        _send("POST", "/orders", json=body, headers=user.headers()),
                        frozenset({201, 409}),
                        {"item_id": item["id"], "quantity": quantity},
                    )
                )
            elif kind == "order-declined":
                assert user is not None and self.declining is not None
                body = {"item_id": self.declining["id"], "quantity": 1}
                ops.append(
                    Op(
                        kind,
                        _send("POST", "/orders", json=body, headers=user.headers()),
                        frozenset({402}),
                    )
                )
            elif kind == "order-missing-item":
                assert user is not None
                body = {"item_id": MISSING_ID, "quantity": 1}
                ops.append(
                    Op(
                        kind,
                        _send("POST", "/orders", json=body, headers=user.headers()),
                        frozenset({404}),
                    )
                )
            elif kind == "order-no-csrf":
                assert user is not None
                body = {"item_id": item["id"], "quantity": 1}
                ops.append(
                    Op(
                        kind,
                        _send("POST", "/orders", json=body, headers=user.headers(csrf=False)),
                        frozenset({403}),
                    )
                )
            elif kind == "orders-list":
                assert user is not None
                ops.append(Op(kind, _get("/orders", headers=user.headers()), frozenset({200})))
            elif kind == "me":
                assert user is not None
                ops.append(Op(kind, _get("/auth/me", headers=user.headers()), frozenset({200})))
        return ops


def _get(url: str, **kwargs: Any) -> Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]:
    return lambda client: client.get(url, **kwargs)


def _send(
    method: str, url: str, **kwargs: Any
) -> Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]:
    return lambda client: client.request(method, url, **kwargs)


def verify_rows(row: Row, plan: LoadPlan, result: http.LoadResult, database: Database) -> None:
    """Every write a client saw succeed is stored; nothing else is, beyond what aborted requests
    (whose outcome the client never learnt) may have left; stock and orders add up exactly."""
    creates = result.by_kind("create")
    ok_names = {o.info["name"] for o in creates if o.status == 201}
    refused_names = {o.info["name"] for o in creates if o.status is not None and o.status != 201}
    unknown_names = {o.info["name"] for o in creates if o.status is None}
    stored = {name for (name,) in database.rows("SELECT name FROM items")}
    known = set(plan.items) | {"scratch"} | ({"declined"} if plan.declining else set())
    row.expect(
        ok_names <= stored,
        f"all {len(ok_names)} items answered 201 are stored",
        f"{len(ok_names - stored)} items answered 201 are missing",
    )
    extra = stored - known - ok_names - unknown_names
    row.expect(not extra, "no item stored that was not asked for", f"unexpected items: {extra}")
    row.expect(
        not (stored & refused_names),
        "no refused create stored",
        f"refused creates stored: {sorted(stored & refused_names)[:5]}",
    )
    landed = len(stored & unknown_names)
    row.held.append(
        f"items: {len(stored)} = {len(known)} seeded + {len(ok_names)} created + {landed} of "
        f"{len(unknown_names)} aborted creates that committed before the abort"
    )
    if not plan.target.variant.has_orders:
        return
    orders = result.by_kind("order")
    ok_ids = {o.body["id"] for o in orders if o.status == 201}
    ok_quantity: dict[int, int] = defaultdict(int)
    for o in orders:
        if o.status == 201:
            ok_quantity[o.info["item_id"]] += o.info["quantity"]
    aborted_orders = [o for o in orders if o.status is None]
    stored_orders = {
        int(order_id): (int(item_id), int(quantity))
        for order_id, item_id, quantity in database.rows("SELECT id, item_id, quantity FROM orders")
    }
    row.expect(
        ok_ids <= set(stored_orders),
        f"all {len(ok_ids)} orders answered 201 are stored",
        f"{len(ok_ids - set(stored_orders))} orders answered 201 are missing",
    )
    unexplained = len(set(stored_orders) - ok_ids)
    row.expect(
        unexplained <= len(aborted_orders),
        f"{unexplained} more orders stored, ≤ {len(aborted_orders)} aborted order requests",
        f"{unexplained} orders stored beyond the 201s, only {len(aborted_orders)} aborted",
    )
    stock = {int(i): int(s) for i, s in database.rows("SELECT id, stock FROM items")}
    ordered: dict[int, int] = defaultdict(int)
    for item_id, quantity in stored_orders.values():
        ordered[item_id] += quantity
    mismatched = [
        item_id
        for item_id, initial in plan.initial_stock.items()
        if stock.get(item_id, -1) + ordered[item_id] != initial
    ]
    row.expect(
        not mismatched,
        "for every item, stock + ordered quantity = initial stock (exact)",
        f"stock and orders disagree for items {mismatched}",
    )
    assert plan.declining is not None
    declined = plan.declining["id"]
    row.expect(
        ordered[declined] == 0 and stock[declined] == 1000,
        f"{len(result.by_kind('order-declined'))} declined payments left no order and no stock "
        "change",
        "a declined payment left an order or took stock",
    )


async def rest_checks(
    row: Row, database: Database, servers: list[Server], *, pool_size: int = POOL_SIZE
) -> None:
    idle = await settle(lambda: database.in_transaction(servers) == 0, timeout=10)
    row.expect(
        idle,
        "no connection left idle in transaction"
        if isinstance(database, PgDatabase)
        else "no connection left holding the write lock",
        f"{database.in_transaction(servers)} connections still inside a transaction after 10s",
    )
    if isinstance(database, PgDatabase):
        quiet = await settle(lambda: database.busy() == 0, timeout=10)
        row.expect(quiet, "no connection left active", "connections still active after 10s")
    limit = pool_size * len(servers)
    what = f"pool size {pool_size}"
    if isinstance(database, SqliteDatabase):
        limit += len(servers)  # the writers' own connection
        what = f"pool size {pool_size} + the writers' 1"
    resting = await settle(lambda: database.connections(servers) <= limit, timeout=10)
    held = database.connections(servers)
    row.expect(
        resting,
        f"pool back to rest: {held} connections ≤ {what} (overflow closed)",
        f"{held} connections held, more than the {what}",
    )


def judge_load(row: Row, result: http.LoadResult) -> None:
    errors = result.server_errors()
    row.expect(
        not errors,
        f"no 5xx ({result.summary()})",
        f"{len(errors)} 5xx: {[f'{o.kind}: {o.status} {str(o.body)[:120]}' for o in errors[:3]]}",
    )
    transport = result.transport_errors()
    row.expect(
        not transport,
        "no connection errors",
        f"{len(transport)} transport errors: {[o.error[:100] for o in transport[:3]]}",
    )
    unexpected = [o for o in result.unexpected() if o.status is not None and o.status < 500]
    row.expect(
        not unexpected,
        "every answer was one its request allows (intended failures: 402, 403, 404, 409, 422)",
        f"{len(unexpected)} unexpected answers: "
        f"{[f'{o.kind}: {o.status} {str(o.body)[:100]}' for o in unexpected[:3]]}",
    )
    not_problem = [
        o for o in result.outcomes if o.status is not None and o.status >= 400 and not o.problem
    ]
    row.expect(
        not not_problem,
        "every error answer is problem details",
        f"{len(not_problem)} error answers are not problem details: "
        f"{[f'{o.kind}: {o.status}' for o in not_problem[:3]]}",
    )


async def check_load(target: Target) -> list[Row]:
    sizes = target.sizes
    row = Row(
        target.variant.id,
        "3 load with faults",
        f"{sizes.load_requests} mixed requests, {sizes.load_concurrency} in flight, "
        f"{sizes.abort_share:.0%} aborted mid-flight by the client; intended failures: duplicate "
        "names (409), invalid bodies (422), missing items (404)"
        + (
            ", declined payments (402), out of stock (409), no CSRF (403)"
            if target.variant.has_orders
            else ""
        ),
    )
    if not target.variant.with_examples:
        row.skipped = "no data endpoints without examples"
        return [row]
    database = target.new_database("load")
    try:
        with target.servers(database) as servers:
            async with new_client(servers[0].url, connections=sizes.load_concurrency) as client:
                plan = LoadPlan(target, sizes.load_requests, seed=3)
                await plan.seed(client, sizes.users)
                result = await http.run_load(
                    client,
                    plan.ops(),
                    concurrency=sizes.load_concurrency,
                    abort_share=sizes.abort_share,
                )
            judge_load(row, result)
            await rest_checks(row, database, servers)
            await asyncio.to_thread(verify_rows, row, plan, result, database)
            log_check(row, servers)
    finally:
        database.drop()
    return [row]


# ----------------------------------------------------------------------------- 4. SQLite writers


async def check_sqlite_writers(target: Target) -> list[Row]:
    writers = target.sizes.sqlite_writers
    hold = 3.0
    row = Row(
        target.variant.id,
        "4 SQLite writers",
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


# ----------------------------------------------------------------------------- 5. invariants


async def check_invariants(target: Target) -> list[Row]:
    orders = target.sizes.oversell_orders
    row = Row(
        target.variant.id,
        "5 no oversell",
        f"{orders} concurrent orders for the last 5 units; {orders * 2} concurrent orders of "
        "1-3 units over 3 items of 40",
    )
    if not target.variant.has_orders:
        row.skipped = "no orders in this variant"
        return [row]
    database = target.new_database("oversell")
    try:
        with target.servers(database) as servers:
            async with new_client(servers[0].url, connections=orders * 2) as client:
                users = await http.new_users(client, "buyer", target.sizes.users)
                last = await http.create_item(client, "last-units", price_cents=100, stock=5)
                rng = random.Random(7)

                async def order(item_id: int, quantity: int) -> httpx.Response:
                    user = rng.choice(users)
                    return await client.post(
                        "/orders",
                        json={"item_id": item_id, "quantity": quantity},
                        headers=user.headers(),
                    )

                responses = await asyncio.gather(*(order(last["id"], 1) for _ in range(orders)))
                statuses = [r.status_code for r in responses]
                row.expect(
                    statuses.count(201) == 5 and statuses.count(409) == orders - 5,
                    f"exactly 5 orders succeeded, {orders - 5} refused 409",
                    f"statuses: { {s: statuses.count(s) for s in set(statuses)} }",
                )
                stock = database.rows(f"SELECT stock FROM items WHERE id = {last['id']}")
                sold = database.rows(
                    f"SELECT count(*), coalesce(sum(quantity), 0) FROM orders "
                    f"WHERE item_id = {last['id']}"
                )
                row.expect(
                    stock == [("0",)] and sold == [("5", "5")],
                    "stock 0 and 5 orders stored: no oversell",
                    f"stock {stock}, orders (count, units) {sold}",
                )

                items = [
                    await http.create_item(client, f"pool-{n}", price_cents=100, stock=40)
                    for n in range(3)
                ]
                plan = [(rng.choice(items)["id"], rng.randint(1, 3)) for _ in range(orders * 2)]
                responses = await asyncio.gather(*(order(i, q) for i, q in plan))
            statuses = [r.status_code for r in responses]
            row.expect(
                set(statuses) <= {201, 409},
                f"only 201 and 409 ({statuses.count(201)} placed, {statuses.count(409)} refused)",
                f"statuses: { {s: statuses.count(s) for s in set(statuses)} }",
            )
            answered: dict[int, int] = defaultdict(int)
            for (item_id, quantity), response in zip(plan, responses, strict=True):
                if response.status_code == 201:
                    answered[item_id] += quantity
            exact = True
            details = []
            for item in items:
                [(stock_left,)] = database.rows(f"SELECT stock FROM items WHERE id = {item['id']}")
                [(units,)] = database.rows(
                    f"SELECT coalesce(sum(quantity), 0) FROM orders WHERE item_id = {item['id']}"
                )
                details.append(f"{stock_left}+{units}")
                exact &= int(stock_left) + int(units) == 40 and int(units) == answered[item["id"]]
                exact &= int(stock_left) >= 0
            row.expect(
                exact,
                f"per item stock + units ordered = 40 and units = the 201s' ({', '.join(details)})",
                f"totals off: stock+ordered per item {details}, answered {dict(answered)}",
            )
            await rest_checks(row, database, servers)
            log_check(row, servers)
    finally:
        database.drop()
    return [row]


# ----------------------------------------------------------------------------- 6. PgBouncer


async def check_pgbouncer(target: Target) -> list[Row]:
    requests = target.sizes.pgbouncer_requests
    row = Row(
        target.variant.id,
        "6 PgBouncer",
        f"PgBouncer (transaction pooling, 4 server connections) in front; DATABASE_PGBOUNCER=true; "
        f"{requests} mixed requests, 48 in flight, 10% aborted",
    )
    control = Row(
        target.variant.id,
        "6 PgBouncer control",
        "the same behind PgBouncer with DATABASE_PGBOUNCER=false (must fail, or the check "
        "could not tell)",
    )
    if not target.variant.is_postgres:
        return []
    if not target.variant.with_examples:
        row.skipped = control.skipped = "no data endpoints without examples"
        return [row, control]
    assert target.pg is not None
    try:
        binary = await asyncio.to_thread(install_pgbouncer)
    except RuntimeError as exc:
        row.failed.append(str(exc))
        return [row]
    bouncer = PgBouncer(target.pg, binary)
    database = target.new_database("pgbouncer")
    assert isinstance(database, PgDatabase)
    try:
        await asyncio.to_thread(bouncer.start)
        url = bouncer.url(target.variant.url_scheme, database.name)
        with target.servers(database, url=url, database_pgbouncer="true") as servers:
            async with new_client(servers[0].url, connections=48) as client:
                plan = LoadPlan(target, requests, seed=11)
                await plan.seed(client, target.sizes.users)
                result = await http.run_load(client, plan.ops(), concurrency=48, abort_share=0.1)
            judge_load(row, result)
            prepared = [
                o for o in result.outcomes if PREPARED_STATEMENT_ERROR.search(str(o.body))
            ] + [line for s in servers for line in s.log_problems(pattern=PREPARED_STATEMENT_ERROR)]
            row.expect(
                not prepared,
                "zero prepared-statement errors (answers and logs)",
                f"{len(prepared)} prepared-statement errors: "
                f"{[str(p)[:120] for p in prepared[:2]]}",
            )
            await rest_checks(row, database, servers)
            await asyncio.to_thread(verify_rows, row, plan, result, database)
            log_check(row, servers)

        control_db = target.new_database("pgbouncer_control")
        assert isinstance(control_db, PgDatabase)
        try:
            url = bouncer.url(target.variant.url_scheme, control_db.name)
            with target.servers(control_db, url=url, database_pgbouncer="false") as servers:
                async with new_client(servers[0].url, connections=48) as client:
                    ops = [Op("get", _get("/items"), frozenset({200})) for _ in range(100)] + [
                        Op(
                            "create",
                            _send("POST", "/items", json={"name": f"c-{n}", "price_cents": 2}),
                            frozenset({201}),
                        )
                        for n in range(100)
                    ]
                    random.Random(1).shuffle(ops)
                    result = await http.run_load(client, ops, concurrency=48)
            failures = [o for o in result.outcomes if o.status != 200 and o.status != 201]
            logs = [line for s in servers for line in s.log_text().splitlines()]
            sample = next(
                (line for line in logs if PREPARED_STATEMENT_ERROR.search(line)),
                next((line for line in logs if "unsupported startup parameter" in line), ""),
            )
            control.expect(
                bool(failures),
                f"without the setting {len(failures)} of {len(result.outcomes)} requests failed "
                f"({sample[:100] or result.summary()})",
                "without the setting nothing failed: this PgBouncer does not show the problem",
            )
        finally:
            control_db.drop()
    finally:
        await asyncio.to_thread(bouncer.stop)
        database.drop()
    return [row, control]


# ----------------------------------------------------------------------------- 7. scale-out


async def check_scale_out(target: Target) -> list[Row]:
    style = target.variant.user_sessions
    row = Row(
        target.variant.id,
        "7 scale-out",
        "two server processes on different ports, one PostgreSQL: log in on one, use on the "
        "other, log out on one, restart each",
    )
    if not (target.variant.is_postgres and target.variant.has_users):
        return []
    database = target.new_database("scale")
    try:
        with target.servers(database, count=2) as (a, b):
            async with new_client(a.url) as ca, new_client(b.url) as cb:

                async def me(client: httpx.AsyncClient, session: UserSession) -> int:
                    return (await client.get("/auth/me", headers=session.headers())).status_code

                await http.register(ca, "scale@example.com")
                s1 = await http.log_in(ca, "scale@example.com")
                row.expect(
                    await me(cb, s1) == 200,
                    "a login on A is recognised by B",
                    "B does not recognise A's login",
                )
                if target.variant.has_orders:
                    item = await http.create_item(ca, "scale-item", price_cents=100, stock=3)
                    placed = await cb.post(
                        "/orders",
                        json={"item_id": item["id"], "quantity": 1},
                        headers=s1.headers(),
                    )
                    listed = await ca.get("/orders", headers=s1.headers())
                    row.expect(
                        placed.status_code == 201
                        and [o["id"] for o in listed.json()] == [placed.json()["id"]],
                        "an order placed on B with A's session (CSRF token and all) is listed by A",
                        f"order on B: {describe(placed)}; list on A: {describe(listed)}",
                    )
                s2 = await http.log_in(cb, "scale@example.com")  # a second device, through B
                logout = await cb.post("/auth/logout", headers=s1.headers())
                revoked = (await me(ca, s1), await me(cb, s1))
                row.expect(
                    logout.status_code == 204 and revoked == (401, 401),
                    "logout on B revokes the session on A and B (401 on both)",
                    f"after logout on B: logout {logout.status_code}, "
                    f"A {revoked[0]}, B {revoked[1]}",
                )
                other = (await me(ca, s2), await me(cb, s2))
                if style == "database":
                    row.expect(
                        other == (200, 200),
                        "the user's other session lives on (one session logged out)",
                        f"the other session got {other}",
                    )
                else:
                    row.expect(
                        other == (401, 401),
                        "signed cookies: logout bumps the epoch, ending every session on both",
                        f"the other session got {other}",
                    )
                    s2 = await http.log_in(cb, "scale@example.com")
                s3 = await http.log_in(ca, "scale@example.com")
                await asyncio.to_thread(a.restart)
                row.expect(
                    (await me(ca, s3), await me(ca, s2)) == (200, 200),
                    "A restarted: sessions still valid on it",
                    "A restarted: sessions lost",
                )
                await asyncio.to_thread(b.restart)
                row.expect(
                    (await me(cb, s3), await me(cb, s2)) == (200, 200),
                    "B restarted: sessions still valid on it",
                    "B restarted: sessions lost",
                )
                everywhere = await ca.post("/auth/logout-all", headers=s3.headers())
                after_all = [await me(c, s) for c in (ca, cb) for s in (s2, s3)]
                row.expect(
                    everywhere.status_code == 204 and after_all == [401] * 4,
                    "logout-all on A ends every session on both",
                    f"logout-all {everywhere.status_code}; then {after_all}",
                )
                replay = await cb.post("/auth/logout", headers=s1.headers())
                row.expect(
                    is_problem(replay, 401),
                    "a replayed, revoked cookie is refused 401 problem details",
                    f"replayed cookie: {describe(replay)}",
                )
            log_check(row, [a, b])
    finally:
        database.drop()
    return [row]


# ----------------------------------------------------------------------------- 8. bad input


def bad_requests(
    target: Target, seed_id: int | None, user: UserSession | None
) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(label, method, url, httpx keyword arguments): every one must get a 4xx problem."""
    json_headers = {"content-type": "application/json"}
    cases: list[tuple[str, str, str, dict[str, Any]]] = [
        ("unknown path", "GET", "/nope", {}),
        ("method not allowed", "PUT", "/health/live", {}),
    ]
    if target.variant.with_examples:
        item_url = f"/items/{seed_id}"
        big = 10**30
        cases += [
            ("malformed JSON", "POST", "/items", {"content": b"{", "headers": json_headers}),
            (
                "trailing comma",
                "POST",
                "/items",
                {"content": b'{"name": "x", "price_cents": 1,}', "headers": json_headers},
            ),
            (
                "invalid UTF-8",
                "POST",
                "/items",
                {"content": b'{"name": "\xff\xfe", "price_cents": 1}', "headers": json_headers},
            ),
            ("JSON array body", "POST", "/items", {"json": []}),
            ("JSON null body", "POST", "/items", {"json": None}),
            ("empty body", "POST", "/items", {"content": b"", "headers": json_headers}),
            (
                "not JSON content type",
                "POST",
                "/items",
                {
                    "content": b'{"name": "typed", "price_cents": 1}',
                    "headers": {"content-type": "text/plain"},
                },
            ),
            ("wrong types", "POST", "/items", {"json": {"name": 123, "price_cents": "ten"}}),
            ("float for int", "POST", "/items", {"json": {"name": "f", "price_cents": 1.5}}),
            ("missing field", "POST", "/items", {"json": {"name": "m"}}),
            (
                "unknown field",
                "POST",
                "/items",
                {"json": {"name": "u", "price_cents": 1, "is_admin": True}},
            ),
            ("negative price", "POST", "/items", {"json": {"name": "n", "price_cents": -1}}),
            ("huge price", "POST", "/items", {"json": {"name": "h", "price_cents": big}}),
            (
                "5000-digit number",
                "POST",
                "/items",
                {
                    "content": b'{"name": "d", "price_cents": ' + b"9" * 5000 + b"}",
                    "headers": json_headers,
                },
            ),
            (
                "1e999",
                "POST",
                "/items",
                {"content": b'{"name": "e", "price_cents": 1e999}', "headers": json_headers},
            ),
            (
                "NaN",
                "POST",
                "/items",
                {"content": b'{"name": "nan", "price_cents": NaN}', "headers": json_headers},
            ),
            ("empty name", "POST", "/items", {"json": {"name": "", "price_cents": 1}}),
            (
                "NUL in a string",
                "POST",
                "/items",
                {"json": {"name": "nul\u0000byte", "price_cents": 1}},
            ),
            (
                "lone surrogate",
                "POST",
                "/items",
                {
                    "content": b'{"name": "\\ud800", "price_cents": 1}',
                    "headers": json_headers,
                },
            ),
            ("2 MB name", "POST", "/items", {"json": {"name": "x" * 2_000_000, "price_cents": 1}}),
            (
                "20 MB body",
                "POST",
                "/items",
                {
                    "content": b'{"name": "big", "price_cents": 1, "pad": "'
                    + b"x" * 20_000_000
                    + b'"}',
                    "headers": json_headers,
                },
            ),
            (
                "deeply nested JSON",
                "POST",
                "/items",
                {
                    "content": b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
                    "headers": json_headers,
                },
            ),
            ("null to a field", "PATCH", item_url, {"json": {"stock": None}}),
            ("negative stock", "PATCH", item_url, {"json": {"stock": -5}}),
            ("unknown field (patch)", "PATCH", item_url, {"json": {"id": 77}}),
            ("limit -1", "GET", "/items?limit=-1", {}),
            ("limit 0", "GET", "/items?limit=0", {}),
            ("limit 10^20", "GET", "/items?limit=100000000000000000000", {}),
            ("offset -1", "GET", "/items?offset=-1", {}),
            ("offset 10^20", "GET", "/items?offset=100000000000000000000", {}),
            ("limit not a number", "GET", "/items?limit=abc", {}),
            ("SQL in a query value", "GET", "/items?limit=1;DROP TABLE items", {}),
            ("SQL in the path", "GET", "/items/1%27%20OR%201=1--", {}),
            ("id 0", "GET", "/items/0", {}),
            ("id -1", "GET", "/items/-1", {}),
            ("id 2^31", "GET", "/items/2147483648", {}),
            ("id 2^63", "GET", "/items/9223372036854775808", {}),
            ("id 10^30", "GET", f"/items/{big}", {}),
            ("id 2^31 (patch)", "PATCH", "/items/2147483648", {"json": {"stock": 1}}),
            ("id 10^30 (delete)", "DELETE", f"/items/{big}", {}),
            ("id as float", "GET", "/items/1.5", {}),
        ]
    if target.variant.has_users:
        cases += [
            (
                "register: bad e-mail",
                "POST",
                "/auth/register",
                {"json": {"email": "' OR 1=1 --", "password": "x" * 12, "display_name": "x"}},
            ),
            (
                "register: short password",
                "POST",
                "/auth/register",
                {"json": {"email": "short@example.com", "password": "x", "display_name": "x"}},
            ),
            (
                "register: huge display name",
                "POST",
                "/auth/register",
                {
                    "json": {
                        "email": "huge@example.com",
                        "password": "x" * 12,
                        "display_name": "x" * 10_000,
                    }
                },
            ),
            (
                "register: unknown field",
                "POST",
                "/auth/register",
                {
                    "json": {
                        "email": "extra@example.com",
                        "password": "x" * 12,
                        "display_name": "x",
                        "is_admin": True,
                    }
                },
            ),
            (
                "register: NUL in name",
                "POST",
                "/auth/register",
                {
                    "json": {
                        "email": "nul@example.com",
                        "password": "x" * 12,
                        "display_name": "a\u0000b",
                    }
                },
            ),
            (
                "login: SQL as e-mail",
                "POST",
                "/auth/login",
                {"json": {"email": "admin'--", "password": "' OR '1'='1"}},
            ),
            ("login: wrong types", "POST", "/auth/login", {"json": {"email": 1, "password": []}}),
            (
                "login: 1 MB password",
                "POST",
                "/auth/login",
                {"json": {"email": "a@example.com", "password": "x" * 1_000_000}},
            ),
            ("me: garbage cookie", "GET", "/auth/me", {"headers": {"Cookie": "session=garbage"}}),
            (
                "me: 4 KB cookie",
                "GET",
                "/auth/me",
                {"headers": {"Cookie": "session=" + "a" * 4000}},
            ),
            (
                "me: SQL in cookie",
                "GET",
                "/auth/me",
                {"headers": {"Cookie": "session=x'%20OR%20'1'='1"}},
            ),
            ("logout: no cookie", "POST", "/auth/logout", {}),
        ]
        if user is not None:
            cases += [
                (
                    "logout: wrong CSRF token",
                    "POST",
                    "/auth/logout",
                    {"headers": {**user.headers(), "X-CSRF-Token": "wrong"}},
                ),
                (
                    "logout: no CSRF token",
                    "POST",
                    "/auth/logout",
                    {"headers": user.headers(csrf=False)},
                ),
            ]
    if target.variant.has_orders and user is not None:
        h = user.headers()
        cases += [
            (
                "order: malformed JSON",
                "POST",
                "/orders",
                {"content": b"{", "headers": {**h, **json_headers}},
            ),
            (
                "order: item id as text",
                "POST",
                "/orders",
                {"json": {"item_id": "abc", "quantity": 1}, "headers": h},
            ),
            (
                "order: quantity 0",
                "POST",
                "/orders",
                {"json": {"item_id": seed_id, "quantity": 0}, "headers": h},
            ),
            (
                "order: quantity -3",
                "POST",
                "/orders",
                {"json": {"item_id": seed_id, "quantity": -3}, "headers": h},
            ),
            (
                "order: quantity 10^30",
                "POST",
                "/orders",
                {"json": {"item_id": seed_id, "quantity": 10**30}, "headers": h},
            ),
            (
                "order: item id 2^31",
                "POST",
                "/orders",
                {"json": {"item_id": 2**31, "quantity": 1}, "headers": h},
            ),
            (
                "order: item id 10^30",
                "POST",
                "/orders",
                {"json": {"item_id": 10**30, "quantity": 1}, "headers": h},
            ),
            (
                "order: unknown field",
                "POST",
                "/orders",
                {"json": {"item_id": seed_id, "quantity": 1, "total_cents": 0}, "headers": h},
            ),
            (
                "order: no CSRF",
                "POST",
                "/orders",
                {"json": {"item_id": seed_id, "quantity": 1}, "headers": user.headers(csrf=False)},
            ),
            ("orders: limit -1", "GET", "/orders?limit=-1", {"headers": h}),
        ]
    return cases


TABLES = ("items", "orders", "users", "accounts", "user_sessions")


async def check_bad_input(target: Target) -> list[Row]:
    row = Row(target.variant.id, "8 bad input", "")
    database = target.new_database("badinput")
    try:
        with target.servers(database) as servers:
            async with new_client(servers[0].url, timeout=60) as client:
                seed_id = None
                user = None
                if target.variant.with_examples:
                    seed_id = (await http.create_item(client, "bad-seed", stock=10))["id"]
                if target.variant.has_users:
                    [user] = await http.new_users(client, "bad", 1)
                tables = [t for t in TABLES if _table_exists(database, t)]

                def snapshot() -> dict[str, list[tuple[str, ...]]]:
                    return {t: sorted(database.rows(f"SELECT * FROM {t}")) for t in tables}

                before = await asyncio.to_thread(snapshot)
                cases = bad_requests(target, seed_id, user)
                row.tried = (
                    f"{len(cases)} bad requests: malformed JSON, wrong types, unknown fields, "
                    "oversized bodies (2 MB, 20 MB), deep nesting, huge/negative numbers and "
                    "pagination, out-of-range ids, NUL bytes, SQL metacharacters, bad cookies "
                    "and CSRF"
                )
                failures = []
                for label, method, url, kwargs in cases:
                    try:
                        response = await client.request(method, url, **kwargs)
                    except httpx.HTTPError as exc:
                        failures.append(f"{label}: {exc!r}")
                        continue
                    if not (400 <= response.status_code < 500 and is_problem(response)):
                        failures.append(f"{label}: {describe(response, 100)}")
                row.expect(
                    not failures,
                    f"all {len(cases)} answered 4xx problem details, none 5xx",
                    f"{len(failures)} of {len(cases)} not a 4xx problem: {failures}",
                )
                after = await asyncio.to_thread(snapshot)
                changed = [t for t in tables if before[t] != after[t]]
                row.expect(
                    not changed,
                    f"nothing stored or changed ({', '.join(tables)} identical)",
                    f"tables changed by bad requests: {changed}",
                )
                if target.variant.with_examples:
                    hostile = "Robert'); DROP TABLE items; -- \" ` \\ % _ ; /*"
                    created = await client.post("/items", json={"name": hostile, "price_cents": 2})
                    fetched = (
                        await client.get(f"/items/{created.json()['id']}")
                        if created.status_code == 201
                        else created
                    )
                    row.expect(
                        created.status_code == 201
                        and fetched.status_code == 200
                        and fetched.json()["name"] == hostile,
                        "a valid name full of SQL metacharacters is stored verbatim (201) and "
                        "reads back identical; tables intact",
                        f"SQL metacharacters in a valid name: {describe(created)}",
                    )
            log_check(row, servers)
    finally:
        database.drop()
    return [row]


def _table_exists(database: Database, table: str) -> bool:
    try:
        database.rows(f"SELECT 1 FROM {table} LIMIT 1")
    except (RuntimeError, sqlite3.Error):
        return False
    return True


CHECKS: dict[str, Check] = {
    "pool": check_pool_exhaustion,
    "outage": check_outage,
    "load": check_load,
    "sqlite-writers": check_sqlite_writers,
    "oversell": check_invariants,
    "pgbouncer": check_pgbouncer,
    "scale-out": check_scale_out,
    "bad-input": check_bad_input,
}


def applies(check: str, variant: Variant) -> bool:
    if check == "sqlite-writers":
        return not variant.is_postgres
    if check == "pgbouncer":
        return variant.is_postgres
    if check == "scale-out":
        return variant.is_postgres and variant.has_users
    if check == "oversell":
        return variant.has_orders
    return True
