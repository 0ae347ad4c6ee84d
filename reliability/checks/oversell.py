"""No oversell: concurrent orders never sell more than the stock; totals stay exact."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict

import httpx

from reliability import client as http
from reliability.checks import check
from reliability.checks._common import log_check
from reliability.checks._judge import rest_checks
from reliability.client import new_client
from reliability.report import Row
from reliability.target import Target

LABEL = "5 no oversell"


@check("oversell", order=5, label=LABEL, applies=lambda variant: variant.has_orders)
async def check_invariants(target: Target) -> list[Row]:
    orders = target.sizes.oversell_orders
    row = Row(
        target.variant.id,
        LABEL,
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
