"""Load with faults: many mixed requests, some aborted mid-flight, intended failures."""

from __future__ import annotations

import asyncio

from reliability import client as http
from reliability.checks import check
from reliability.checks._common import log_check
from reliability.checks._judge import judge_load, rest_checks, verify_rows
from reliability.checks._load_plan import LoadPlan
from reliability.client import new_client
from reliability.report import Row
from reliability.target import Target

LABEL = "3 load with faults"


@check("load", order=3, label=LABEL)
async def check_load(target: Target) -> list[Row]:
    sizes = target.sizes
    row = Row(
        target.variant.id,
        LABEL,
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
