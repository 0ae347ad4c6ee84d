"""Scale-out: two server processes on one PostgreSQL share users' sessions."""

from __future__ import annotations

import asyncio

import httpx

from reliability import client as http
from reliability.checks import check
from reliability.checks._common import log_check
from reliability.client import UserSession, describe, is_problem, new_client
from reliability.report import Row
from reliability.target import Target

LABEL = "7 scale-out"


@check(
    "scale-out",
    order=7,
    label=LABEL,
    applies=lambda variant: variant.is_postgres and variant.has_users,
)
async def check_scale_out(target: Target) -> list[Row]:
    style = target.variant.user_sessions
    row = Row(
        target.variant.id,
        LABEL,
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
