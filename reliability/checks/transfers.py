"""Transfers: concurrent transfers in both directions between the same accounts, over every
server process, keep every balance exact and never answer 5xx (nor deadlock into a 409)."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter

import httpx

from reliability import client as http
from reliability.checks import check
from reliability.checks._common import log_check
from reliability.checks._judge import rest_checks
from reliability.client import describe, is_problem, new_client
from reliability.report import Row
from reliability.target import Target

LABEL = "10 transfers"
START = 100
"""Every account's balance before the transfers, in minor units."""
LARGEST = 60
"""Amounts are 1 to LARGEST: near an empty balance some transfers are refused as overdrafts."""


@check("transfers", order=10, label=LABEL, applies=lambda variant: variant.has_orders)
async def check_transfers(target: Target) -> list[Row]:
    processes = 2 if target.variant.is_postgres else 1
    users = target.sizes.users
    transfers = target.sizes.oversell_orders * 4
    row = Row(
        target.variant.id,
        LABEL,
        f"{transfers} simultaneous transfers of 1-{LARGEST} in both directions between "
        f"{users} accounts of {START}, over {processes} server process(es)",
    )
    database = target.new_database("transfers")
    try:
        with target.servers(database, count=processes) as servers:
            async with contextlib.AsyncExitStack() as stack:
                clients = [
                    await stack.enter_async_context(new_client(s.url, connections=transfers))
                    for s in servers
                ]
                # one session per user and server process
                sessions = [await http.new_users(clients[0], "payer", users)]
                for client in clients[1:]:
                    sessions.append([await http.log_in(client, s.email) for s in sessions[0]])
                database.rows(f"UPDATE accounts SET balance = {START}")
                ids = []
                for user in sessions[0]:
                    me = await clients[0].get("/accounts/me", headers=user.headers())
                    if me.status_code != 200:
                        raise AssertionError(f"GET /accounts/me: {describe(me)}")
                    ids.append(me.json()["id"])

                rng = random.Random(11)
                plan = []
                for _ in range(transfers // 2):
                    sender, recipient = rng.sample(range(users), 2)
                    amount = rng.randint(1, LARGEST)
                    plan += [(sender, recipient, amount), (recipient, sender, amount)]
                rng.shuffle(plan)

                async def transfer(sender: int, recipient: int, amount: int) -> httpx.Response:
                    server = rng.randrange(len(servers))
                    body = {
                        "from_account_id": ids[sender],
                        "to_account_id": ids[recipient],
                        "amount": amount,
                    }
                    return await clients[server].post(
                        "/transfers", json=body, headers=sessions[server][sender].headers()
                    )

                responses = await asyncio.gather(*(transfer(*step) for step in plan))

            statuses = Counter(r.status_code for r in responses)
            refused = [r for r in responses if r.status_code == 409]
            row.expect(
                set(statuses) <= {200, 409} and all(is_problem(r, 409) for r in refused),
                f"only 200 and 409 problem details ({statuses[200]} moved, "
                f"{statuses[409]} refused as overdrafts)",
                f"statuses: {dict(statuses)}; e.g. "
                f"{[describe(r) for r in responses if r.status_code not in (200, 409)][:2]}",
            )
            lost_races = [r for r in refused if "retry-after" in r.headers]
            row.expect(
                not lost_races,
                "no transfer lost a race (no deadlock, no serialization failure)",
                f"{len(lost_races)} answered 409 with Retry-After: {describe(lost_races[0])}"
                if lost_races
                else "",
            )
            expected = [START] * users
            for (sender, recipient, amount), response in zip(plan, responses, strict=True):
                if response.status_code == 200:
                    expected[sender] -= amount
                    expected[recipient] += amount
            stored = [
                int(balance)
                for (balance,) in database.rows("SELECT balance FROM accounts ORDER BY id")
            ]
            order = sorted(range(users), key=lambda n: ids[n])
            row.expect(
                stored == [expected[n] for n in order] and min(stored) >= 0,
                f"every balance = {START} + received - sent by the 200s, none below 0; "
                f"total {sum(stored)} = {START * users}",
                f"balances {stored}, expected {[expected[n] for n in order]} "
                f"(total {sum(stored)}, should be {START * users})",
            )
            await rest_checks(row, database, servers)
            log_check(row, servers)
    finally:
        database.drop()
    return [row]
