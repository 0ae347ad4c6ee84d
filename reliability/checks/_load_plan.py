"""A load: seed data and a shuffled mix of requests (reads, writes, intended failures)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from reliability import client as http
from reliability.checks._common import MISSING_ID
from reliability.client import Op, UserSession
from reliability.target import Target


class LoadPlan:
    """Seed data and a shuffled mix of requests: reads, writes, intended failures."""

    def __init__(self, target: Target, requests: int, seed: int) -> None:
        self.target = target
        self.requests = requests
        self.rng = random.Random(seed)
        self.items: dict[str, dict[str, Any]] = {}
        self.scratch: dict[str, Any] = {}
        self.declining: dict[str, Any] | None = None
        self.users: list[UserSession] = []
        self.initial_stock: dict[int, int] = {}

    async def seed(self, client: httpx.AsyncClient, users: int) -> None:
        for n in range(8):
            item = await http.create_item(client, f"seed-{n}", price_cents=200 + 2 * n, stock=1000)
            self.items[item["name"]] = item
            self.initial_stock[item["id"]] = 1000
        self.scratch = await http.create_item(client, "scratch", price_cents=10, stock=0)
        self.initial_stock[self.scratch["id"]] = 0
        if self.target.variant.has_orders:
            # odd price: the served payment gateway declines every charge of it
            self.declining = await http.create_item(client, "declined", price_cents=301, stock=1000)
            self.initial_stock[self.declining["id"]] = 1000
            self.users = await http.new_users(client, "load", users)

    def ops(self) -> list[Op]:
        rng = self.rng
        seeds = list(self.items.values())
        weights: dict[str, int] = {
            "list": 14,
            "get": 10,
            "get-missing": 3,
            "create": 15,
            "create-duplicate": 6,
            "rename-duplicate": 4,
            "update": 5,
            "invalid": 3,
            "ready": 1,
        }
        if self.target.variant.has_orders:
            weights |= {
                "order": 20,
                "order-declined": 6,
                "order-missing-item": 2,
                "order-no-csrf": 2,
                "orders-list": 4,
                "me": 4,
            }
        kinds = rng.choices(list(weights), list(weights.values()), k=self.requests)
        names = itertools.count()
        ops: list[Op] = []
        for kind in kinds:
            item = rng.choice(seeds)
            user = rng.choice(self.users) if self.users else None
            if kind == "list":
                params = {"limit": rng.randint(1, 50), "offset": rng.randint(0, 20)}
                ops.append(Op(kind, get("/items", params=params), frozenset({200})))
            elif kind == "get":
                ops.append(Op(kind, get(f"/items/{item['id']}"), frozenset({200})))
            elif kind == "get-missing":
                ops.append(Op(kind, get(f"/items/{MISSING_ID}"), frozenset({404})))
            elif kind == "create":
                name = f"load-{next(names)}"
                body = {"name": name, "price_cents": 2 * rng.randint(1, 500), "stock": 0}
                ops.append(
                    Op(kind, send("POST", "/items", json=body), frozenset({201}), {"name": name})
                )
            elif kind == "create-duplicate":
                body = {"name": item["name"], "price_cents": 100}
                ops.append(Op(kind, send("POST", "/items", json=body), frozenset({409})))
            elif kind == "rename-duplicate":
                other = rng.choice([s for s in seeds if s["id"] != item["id"]])
                body = {"name": other["name"]}
                ops.append(
                    Op(kind, send("PATCH", f"/items/{item['id']}", json=body), frozenset({409}))
                )
            elif kind == "update":
                body = {"price_cents": 2 * rng.randint(1, 500)}
                ops.append(
                    Op(
                        kind,
                        send("PATCH", f"/items/{self.scratch['id']}", json=body),
                        frozenset({200}),
                    )
                )
            elif kind == "invalid":
                body = {"name": "", "price_cents": -1}
                ops.append(Op(kind, send("POST", "/items", json=body), frozenset({422})))
            elif kind == "ready":
                ops.append(Op(kind, get("/health/ready"), frozenset({200})))
            elif kind == "order":
                assert user is not None
                quantity = rng.randint(1, 3)
                body = {"item_id": item["id"], "quantity": quantity}
                ops.append(
                    Op(
                        kind,
                        send("POST", "/orders", json=body, headers=user.headers()),
                        frozenset({201, 409}),
                        {"item_id": item["id"], "quantity": quantity},
                    )
                )
            elif kind == "order-declined":
                assert user is not None and self.declining is not None
                body = {"item_id": self.declining["id"], "quantity": 1}
                ops.append(
                    Op(
                        kind,
                        send("POST", "/orders", json=body, headers=user.headers()),
                        frozenset({402}),
                    )
                )
            elif kind == "order-missing-item":
                assert user is not None
                body = {"item_id": MISSING_ID, "quantity": 1}
                ops.append(
                    Op(
                        kind,
                        send("POST", "/orders", json=body, headers=user.headers()),
                        frozenset({404}),
                    )
                )
            elif kind == "order-no-csrf":
                assert user is not None
                body = {"item_id": item["id"], "quantity": 1}
                ops.append(
                    Op(
                        kind,
                        send("POST", "/orders", json=body, headers=user.headers(csrf=False)),
                        frozenset({403}),
                    )
                )
            elif kind == "orders-list":
                assert user is not None
                ops.append(Op(kind, get("/orders", headers=user.headers()), frozenset({200})))
            elif kind == "me":
                assert user is not None
                ops.append(Op(kind, get("/auth/me", headers=user.headers()), frozenset({200})))
        return ops


def get(url: str, **kwargs: Any) -> Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]:
    return lambda client: client.get(url, **kwargs)


def send(
    method: str, url: str, **kwargs: Any
) -> Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]:
    return lambda client: client.request(method, url, **kwargs)
