"""The malformed, oversized, mistyped and hostile requests of the bad-input check."""

from __future__ import annotations

from typing import Any

from reliability.client import COOKIE, UserSession
from reliability.target import Target


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
            ("me: garbage cookie", "GET", "/auth/me", {"headers": {"Cookie": f"{COOKIE}=garbage"}}),
            (
                "me: 4 KB cookie",
                "GET",
                "/auth/me",
                {"headers": {"Cookie": f"{COOKIE}=" + "a" * 4000}},
            ),
            (
                "me: SQL in cookie",
                "GET",
                "/auth/me",
                {"headers": {"Cookie": f"{COOKIE}=x'%20OR%20'1'='1"}},
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
