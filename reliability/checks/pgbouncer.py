"""PgBouncer: transaction pooling with DATABASE_PGBOUNCER=true, and a control run without it."""

from __future__ import annotations

import asyncio
import random

from reliability import client as http
from reliability.checks import check
from reliability.checks._common import (
    PREPARED_STATEMENT_ERROR,
    log_check,
)
from reliability.checks._judge import judge_load, rest_checks, verify_rows
from reliability.checks._load_plan import LoadPlan, get, send
from reliability.client import Op, new_client
from reliability.databases import PgDatabase
from reliability.pgbouncer import PgBouncer, install_pgbouncer
from reliability.report import Row
from reliability.target import Target

LABEL = "6 PgBouncer"


@check("pgbouncer", order=6, label=LABEL, applies=lambda variant: variant.is_postgres)
async def check_pgbouncer(target: Target) -> list[Row]:
    requests = target.sizes.pgbouncer_requests
    row = Row(
        target.variant.id,
        LABEL,
        f"PgBouncer (transaction pooling, 4 server connections) in front; DATABASE_PGBOUNCER=true; "
        f"{requests} mixed requests, 48 in flight, 10% aborted",
    )
    control = Row(
        target.variant.id,
        f"{LABEL} control",
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
                    ops = [Op("get", get("/items"), frozenset({200})) for _ in range(100)] + [
                        Op(
                            "create",
                            send("POST", "/items", json={"name": f"c-{n}", "price_cents": 2}),
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
