"""What must hold after a load: the answers, the connections at rest, the rows stored."""

from __future__ import annotations

from collections import defaultdict

from reliability import client as http
from reliability.checks._common import settle
from reliability.checks._load_plan import LoadPlan
from reliability.databases import Database, PgDatabase, SqliteDatabase
from reliability.report import Row
from reliability.server import Server
from reliability.target import POOL_SIZE


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
