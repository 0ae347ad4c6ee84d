"""HTTP clients of the served projects: users and their sessions, problem details, and a load
runner that sends many requests at once, aborts some of them mid-flight, and records every
outcome."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx

PASSWORD = "correct horse battery staple"
COOKIE = "__Host-session"  # the servers run with ENVIRONMENT=production: a __Host- cookie


def new_client(base_url: str, *, connections: int = 100, timeout: float = 30) -> httpx.AsyncClient:
    """A client that never stores cookies: every request carries exactly the cookie we give it
    (the servers run with ENVIRONMENT=production, so their cookies are Secure and a cookie jar
    would not send them over plain HTTP)."""
    jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    return httpx.AsyncClient(
        base_url=base_url,
        cookies=httpx.Cookies(jar),
        timeout=timeout,
        # uvicorn closes idle keep-alive connections after 5s; reusing one just then races the
        # close (a ReadError no real failure caused): let ours expire first.
        limits=httpx.Limits(
            max_connections=connections, max_keepalive_connections=connections, keepalive_expiry=2
        ),
    )


def session_cookie(response: httpx.Response) -> str | None:
    """The session cookie's value in Set-Cookie ("" when the response deletes it)."""
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name.strip() == COOKIE:
            value = rest.split(";", 1)[0].strip().strip('"')
            if "max-age=0" in header.lower().replace(" ", ""):
                return ""
            return value
    return None


def is_problem(response: httpx.Response, status: int | None = None) -> bool:
    """An RFC 9457 problem details answer (with the given status)."""
    if status is not None and response.status_code != status:
        return False
    if not response.headers.get("content-type", "").startswith("application/problem+json"):
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("status") == response.status_code and "title" in body


def describe(response: httpx.Response, limit: int = 160) -> str:
    text = response.text.replace("\n", " ")
    return f"{response.status_code} {text[:limit]}"


@dataclass
class UserSession:
    email: str
    cookie: str
    csrf: str

    def headers(self, *, csrf: bool = True) -> dict[str, str]:
        headers = {"Cookie": f"{COOKIE}={self.cookie}"}
        if csrf:
            headers["X-CSRF-Token"] = self.csrf
        return headers


async def register(client: httpx.AsyncClient, email: str) -> None:
    response = await client.post(
        "/auth/register",
        json={"email": email, "password": PASSWORD, "display_name": email.split("@")[0]},
    )
    if response.status_code != 201:
        raise AssertionError(f"register {email}: {describe(response)}")


async def log_in(client: httpx.AsyncClient, email: str) -> UserSession:
    response = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    cookie = session_cookie(response)
    if response.status_code != 200 or not cookie:
        raise AssertionError(f"login {email}: {describe(response)}")
    return UserSession(email, cookie, response.json()["csrf_token"])


async def new_users(client: httpx.AsyncClient, prefix: str, count: int) -> list[UserSession]:
    emails = [f"{prefix}{n}@example.com" for n in range(count)]
    for email in emails:  # argon2 at full cost: one after another keeps the machine responsive
        await register(client, email)
    return [await log_in(client, email) for email in emails]


async def create_item(
    client: httpx.AsyncClient, name: str, *, price_cents: int = 100, stock: int = 0
) -> dict[str, Any]:
    response = await client.post(
        "/items", json={"name": name, "price_cents": price_cents, "stock": stock}
    )
    if response.status_code != 201:
        raise AssertionError(f"create item {name}: {describe(response)}")
    item: dict[str, Any] = response.json()
    return item


# ----------------------------------------------------------------------------- load


@dataclass
class Outcome:
    kind: str
    status: int | None  # None: aborted by us, or a transport error
    seconds: float
    aborted: bool = False
    error: str = ""
    problem: bool = False
    body: Any = None
    info: dict[str, Any] = field(default_factory=dict)
    expected: frozenset[int] = frozenset()


@dataclass
class Op:
    """One request of a load: `send` performs it; `expected` are the statuses it may get."""

    kind: str
    send: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]
    expected: frozenset[int]
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class LoadResult:
    outcomes: list[Outcome]
    seconds: float

    def by_kind(self, kind: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.kind == kind]

    @property
    def aborted(self) -> int:
        return sum(o.aborted for o in self.outcomes)

    def server_errors(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status is not None and o.status >= 500]

    def transport_errors(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status is None and not o.aborted]

    def unexpected(self) -> list[Outcome]:
        """Completed requests whose status their operation did not allow."""
        return [o for o in self.outcomes if o.status is not None and o.status not in o.expected]

    def statuses(self) -> Counter[int]:
        return Counter(o.status for o in self.outcomes if o.status is not None)

    def summary(self) -> str:
        counts = ", ".join(f"{s}×{n}" for s, n in sorted(self.statuses().items()))
        total = len(self.outcomes)
        return f"{total} requests in {self.seconds:.1f}s ({counts}; aborted {self.aborted})"


async def run_load(
    client: httpx.AsyncClient,
    ops: Iterable[Op],
    *,
    concurrency: int,
    abort_share: float = 0.0,
    seed: int = 5,
) -> LoadResult:
    """Send `ops` with `concurrency` requests in flight; a share of them is cancelled after a
    random few milliseconds (the connection is closed mid-request, as a client that gives up)."""
    rng = random.Random(seed)
    queue: asyncio.Queue[tuple[Op, float | None]] = asyncio.Queue()
    for op in ops:
        abort_after = rng.uniform(0.001, 0.04) if rng.random() < abort_share else None
        queue.put_nowait((op, abort_after))
    outcomes: list[Outcome] = []

    async def one(op: Op, abort_after: float | None) -> Outcome:
        started = time.monotonic()
        try:
            if abort_after is None:
                response = await op.send(client)
            else:
                response = await asyncio.wait_for(op.send(client), abort_after)
        except TimeoutError:
            return Outcome(
                op.kind,
                None,
                time.monotonic() - started,
                aborted=True,
                info=op.info,
                expected=op.expected,
            )
        except httpx.HTTPError as exc:
            return Outcome(
                op.kind,
                None,
                time.monotonic() - started,
                error=repr(exc),
                info=op.info,
                expected=op.expected,
            )
        try:
            body = response.json()
        except ValueError:
            body = response.text[:300]
        return Outcome(
            op.kind,
            response.status_code,
            time.monotonic() - started,
            problem=is_problem(response),
            body=body,
            info=op.info,
            expected=op.expected,
        )

    async def worker() -> None:
        while True:
            try:
                op, abort_after = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            outcomes.append(await one(op, abort_after))

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return LoadResult(outcomes, time.monotonic() - started)
