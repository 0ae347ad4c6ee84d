"""Login throttling: simultaneous wrong guesses over every server process check no more
passwords than the limit, the counts live in the database, and a throttled account waits."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time

import httpx

from reliability import client as http
from reliability.checks import check
from reliability.checks._common import log_check
from reliability.client import describe, is_problem, new_client
from reliability.report import Row
from reliability.target import Target

LABEL = "9 login throttling"
LIMIT = 5
GUESSES = 50
EMAIL = "throttled@example.com"
TIMING_EMAIL = "timed@example.com"
TIMING_TRIES = LIMIT - 1  # wrong logins for the registered address, under its limit
TIMING_RATIO = 1.5


@check("login-throttle", order=9, label=LABEL, applies=lambda variant: variant.has_users)
async def check_login_throttle(target: Target) -> list[Row]:
    processes = 2 if target.variant.is_postgres else 1
    row = Row(
        target.variant.id,
        LABEL,
        f"{GUESSES} simultaneous wrong logins for one account over {processes} server "
        f"process(es) with LOGIN_MAX_FAILURES={LIMIT}, then the right password; wrong "
        "logins for a registered and for unknown addresses, timed",
    )
    database = target.new_database("throttle")
    try:
        with target.servers(database, count=processes, login_max_failures=str(LIMIT)) as servers:
            async with contextlib.AsyncExitStack() as stack:
                clients = [
                    await stack.enter_async_context(new_client(s.url, connections=GUESSES))
                    for s in servers
                ]
                await http.register(clients[0], EMAIL)
                wrong = {"email": EMAIL, "password": "not the password"}
                responses = await asyncio.gather(
                    *(
                        clients[n % len(clients)].post("/auth/login", json=wrong)
                        for n in range(GUESSES)
                    )
                )
                statuses = [r.status_code for r in responses]
                row.expect(
                    statuses.count(401) == LIMIT and statuses.count(429) == GUESSES - LIMIT,
                    f"exactly {LIMIT} passwords checked (401), {GUESSES - LIMIT} throttled (429)",
                    f"statuses: { {s: statuses.count(s) for s in set(statuses)} }",
                )
                row.expect(
                    all(
                        is_problem(r, 429) and int(r.headers.get("retry-after", "0")) > 0
                        for r in responses
                        if r.status_code == 429
                    ),
                    "every 429 is problem details with Retry-After",
                    "a 429 without problem details or Retry-After",
                )
                right = await clients[-1].post(
                    "/auth/login", json={"email": EMAIL, "password": http.PASSWORD}
                )
                row.expect(
                    is_problem(right, 429),
                    "the right password waits for the cool-off too (429)",
                    f"the right password got {describe(right)}",
                )
                stored = database.rows(
                    f"SELECT failures FROM login_throttles WHERE key = 'account:{EMAIL}'"
                )
                row.expect(
                    stored == [(str(LIMIT),)],
                    f"the database holds the account's {LIMIT} counted failures",
                    f"login_throttles row: {stored}",
                )
                await expect_unknown_addresses_cost_like_known_ones(row, clients[0])
            log_check(row, servers)
    finally:
        database.drop()
    return [row]


async def expect_unknown_addresses_cost_like_known_ones(
    row: Row, client: httpx.AsyncClient
) -> None:
    """Wrong logins for a registered address and for unknown ones, one at a time and
    interleaved: the server's real password hashing dominates both, so their medians agree."""
    await http.register(client, TIMING_EMAIL)
    known: list[float] = []
    unknown: list[float] = []
    for n in range(TIMING_TRIES):
        for email, times in ((TIMING_EMAIL, known), (f"nobody{n}@example.com", unknown)):
            started = time.perf_counter()
            response = await client.post(
                "/auth/login", json={"email": email, "password": "not the password"}
            )
            times.append(time.perf_counter() - started)
            if response.status_code != 401:
                row.expect(False, "", f"timing login for {email}: {describe(response)}")
                return
    ratio = statistics.median(unknown) / statistics.median(known)
    row.expect(
        1 / TIMING_RATIO <= ratio <= TIMING_RATIO,
        f"an unknown address takes as long as a known one: median "
        f"{statistics.median(unknown) * 1000:.0f} ms vs {statistics.median(known) * 1000:.0f} ms",
        f"unknown {statistics.median(unknown) * 1000:.0f} ms vs known "
        f"{statistics.median(known) * 1000:.0f} ms (ratio {ratio:.2f})",
    )
