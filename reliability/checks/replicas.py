"""Read replicas: a real streaming replica that lags; read-your-writes, reads on the replica, a
stopped replica, and PgBouncer in front of both servers."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable

import httpx

from reliability.checks import check
from reliability.checks._common import log_check
from reliability.client import describe, new_client
from reliability.databases import PgDatabase
from reliability.pgbouncer import PgBouncer, install_pgbouncer
from reliability.report import Row
from reliability.target import Target
from toolkit.cluster import PostgresUnavailable, ThrowawayReplica, find_bindir
from toolkit.postgres import Postgres, PostgresServer

LABEL = "11 read replicas"
HEADER = "X-Read-After-LSN"
COOKIE = "__Host-read_after_lsn"  # ENVIRONMENT=production: Secure, __Host- prefixed
APPLY_DELAY_MS = 500
SECRET_KEYS = json.dumps(["reliability-replica-position-key-0000000001"])
WRITES = 20
READS = 200


@check(
    "replicas",
    order=11,
    label=LABEL,
    applies=lambda variant: variant.is_postgres and variant.with_examples,
)
async def check_replicas(target: Target) -> list[Row]:
    row = Row(
        target.variant.id,
        LABEL,
        f"a streaming replica (pg_basebackup -R, replaying {APPLY_DELAY_MS} ms late): "
        f"{WRITES} writes each read back at once, by cookie or by header; {READS} reads of "
        "other clients; the replica stopped and started under reads; the same behind PgBouncer",
    )
    if not (target.variant.is_postgres and target.variant.with_examples):
        return []
    assert target.pg is not None
    bindir = find_bindir()
    if bindir is None:
        row.failed.append("no PostgreSQL binaries to start a replica with (pg_basebackup)")
        return [row]
    replica = ThrowawayReplica(bindir, target.pg.server.url(), apply_delay_ms=APPLY_DELAY_MS)
    try:
        port = await asyncio.to_thread(replica.start)
    except PostgresUnavailable as exc:
        row.failed.append(f"could not start a replica of {target.pg.server}: {exc}")
        return [row]
    standby = Postgres(
        PostgresServer("127.0.0.1", port, target.pg.server.user, target.pg.server.password),
        replica,
    )
    database = target.new_database("replicas")
    assert isinstance(database, PgDatabase)
    try:
        await until_replicated(standby, database.name)
        url = standby.url(target.variant.url_scheme, database.name)
        await check_direct(row, target, database, standby, replica, url)
        await check_behind_pgbouncer(row, target, database, standby)
    finally:
        database.drop()
        await asyncio.to_thread(replica.stop)
    return [row]


def replica_settings(url: str) -> dict[str, str]:
    return {
        "database_replica_urls": json.dumps([url]),
        "database_replica_secret_keys": SECRET_KEYS,
        "database_replica_max_lag_seconds": "30",
    }


async def check_direct(
    row: Row,
    target: Target,
    database: PgDatabase,
    standby: Postgres,
    replica: ThrowawayReplica,
    url: str,
) -> None:
    with target.servers(database, **replica_settings(url)) as servers:
        async with new_client(servers[0].url) as client:
            await read_your_writes(row, client, "")
            await reads_on_the_replica(row, client, standby, database.name, "")
            await stopped_replica(row, client, standby, database.name, replica)
        log_check(row, servers)


async def check_behind_pgbouncer(
    row: Row, target: Target, database: PgDatabase, standby: Postgres
) -> None:
    assert target.pg is not None
    try:
        binary = await asyncio.to_thread(install_pgbouncer)
    except RuntimeError as exc:
        row.failed.append(f"behind PgBouncer: {exc}")
        return
    bouncers = [PgBouncer(target.pg, binary), PgBouncer(standby, binary)]
    try:
        for bouncer in bouncers:
            await asyncio.to_thread(bouncer.start)
        primary, replica = (b.url(target.variant.url_scheme, database.name) for b in bouncers)
        settings = {"database_pgbouncer": "true", **replica_settings(replica)}
        with target.servers(database, url=primary, **settings) as servers:
            async with new_client(servers[0].url) as client:
                await read_your_writes(row, client, " (PgBouncer)")
                await reads_on_the_replica(row, client, standby, database.name, " (PgBouncer)")
            log_check(row, servers)
    finally:
        for bouncer in bouncers:
            await asyncio.to_thread(bouncer.stop)


async def until_replicated(standby: Postgres, name: str, timeout: float = 60) -> None:
    """Until the database created on the primary is there on the replica, with its tables."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if await asyncio.to_thread(standby.scalar, "SELECT to_regclass('items')", name):
                return
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.2)


async def read_your_writes(row: Row, client: httpx.AsyncClient, where: str) -> None:
    """Every write read back at once, the position carried by cookie or by header in turns."""
    missed: list[str] = []
    for n in range(WRITES):
        response = await client.post(
            "/items", json={"name": f"ryw-{where.strip()}-{n}", "price_cents": 1, "stock": 1}
        )
        position = response.headers.get(HEADER)
        cookie = next(
            (
                value.split(";")[0].removeprefix(f"{COOKIE}=")
                for value in response.headers.get_list("set-cookie")
                if value.startswith(f"{COOKIE}=")
            ),
            None,
        )
        if response.status_code != 201 or not position or cookie != position:
            missed.append(f"write {n}: {describe(response)}, header {position}, cookie {cookie}")
            continue
        carried = {HEADER: position} if n % 2 else {"cookie": f"{COOKIE}={cookie}"}
        read = await client.get(f"/items/{response.json()['id']}", headers=carried)
        if read.status_code != 200:
            missed.append(f"read {n}: {describe(read)}")
    row.expect(
        not missed,
        f"{WRITES}/{WRITES} writes read back at once, by cookie and by header{where}",
        f"read-your-writes failed{where}: {missed[:3]}",
    )


def replica_transactions(standby: Postgres, name: str) -> int:
    return int(
        standby.scalar(
            f"SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '{name}'"
        )
        or 0
    )


async def reads_on_the_replica(
    row: Row, client: httpx.AsyncClient, standby: Postgres, name: str, where: str
) -> None:
    """Reads of a client that wrote nothing counted on the replica (statistics arrive there
    within a second or so: polled)."""
    before = await asyncio.to_thread(replica_transactions, standby, name)
    statuses = Counter(
        [(await client.get("/items", params={"limit": 5})).status_code for _ in range(READS)]
    )
    counted = 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        counted = await asyncio.to_thread(replica_transactions, standby, name) - before
        if counted >= READS:
            break
        await asyncio.sleep(0.5)
    row.expect(statuses == Counter({200: READS}), f"{READS} reads 200{where}", f"{statuses}")
    row.expect(
        counted >= READS,
        f"served by the replica: {counted} transactions counted there for {READS} reads{where}",
        f"only {counted} transactions counted on the replica for {READS} reads{where}",
    )


async def stopped_replica(
    row: Row,
    client: httpx.AsyncClient,
    standby: Postgres,
    name: str,
    replica: ThrowawayReplica,
) -> None:
    """Readers keep going while the replica is stopped (pg_ctl stop -m fast) and started."""
    statuses: Counter[int] = Counter()
    stop = asyncio.Event()

    async def reader() -> None:
        while not stop.is_set():
            response = await client.get("/items", params={"limit": 5})
            statuses[response.status_code] += 1

    readers = [asyncio.create_task(reader()) for _ in range(8)]
    try:
        await asyncio.sleep(1)
        await asyncio.to_thread(replica.stop_server)
        await asyncio.sleep(1)
        ready = await client.get("/health/ready")
        states = ready.json().get("replicas") if ready.status_code == 200 else None
        row.expect(
            ready.status_code == 200 and states == [{"replica": 0, "state": "down"}],
            "/health/ready 200 with the replica listed down while it is stopped",
            f"/health/ready while the replica is stopped: {describe(ready)}",
        )
        await asyncio.to_thread(replica.start_server)
        back = await eventually(lambda: replica_transactions_grow(standby, name), timeout=20)
        row.expect(back, "reads back on the replica once it is started again")
    finally:
        stop.set()
        await asyncio.gather(*readers)
    row.expect(
        set(statuses) == {200},
        f"{sum(statuses.values())} reads while it stopped and started: all 200",
        f"reads while the replica stopped and started: {dict(statuses)}",
    )


async def replica_transactions_grow(standby: Postgres, name: str) -> bool:
    before = await asyncio.to_thread(replica_transactions, standby, name)
    await asyncio.sleep(1.5)  # statistics reach pg_stat_database about once a second
    return await asyncio.to_thread(replica_transactions, standby, name) > before + 5


async def eventually(condition: Callable[[], Awaitable[bool]], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if await condition():
                return True
        except RuntimeError:  # psql: the replica is still starting
            await asyncio.sleep(0.5)
    return False
