"""Bad input: hostile requests get 4xx problem details, never a 5xx, and change nothing."""

from __future__ import annotations

import asyncio
import sqlite3

import httpx

from reliability import client as http
from reliability.checks import check
from reliability.checks._bad_requests import TABLES, bad_requests
from reliability.checks._common import log_check
from reliability.client import describe, is_problem, new_client
from reliability.databases import Database
from reliability.report import Row
from reliability.target import Target

LABEL = "8 bad input"


@check("bad-input", order=8, label=LABEL)
async def check_bad_input(target: Target) -> list[Row]:
    row = Row(target.variant.id, LABEL, "")
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
