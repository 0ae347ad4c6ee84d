"""A PostgreSQL server to create databases on: the one a URL names (TEST_POSTGRES_URL for the
tests and the reliability suite; any role that may CREATE DATABASE), or a throwaway cluster
started from the PostgreSQL binaries on this machine (toolkit.cluster). Queries go through psql."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cached_property
from urllib.parse import quote, unquote, urlsplit

from toolkit.cluster import ENV_BINDIR, PostgresUnavailable, ThrowawayCluster, find_bindir

__all__ = [
    "ENV_URL",
    "HOW_TO_GET_A_SERVER",
    "Postgres",
    "PostgresServer",
    "PostgresUnavailable",
    "environment_url",
    "find_psql",
    "parse_server_url",
    "postgres",
]

ENV_URL = "TEST_POSTGRES_URL"

HOW_TO_GET_A_SERVER = (
    "The PostgreSQL variants need a real PostgreSQL server. Either\n"
    f"  * set {ENV_URL}=postgresql://USER[:PASSWORD]@HOST:PORT/postgres to a server on which that "
    "role may CREATE DATABASE, or\n"
    "  * install the PostgreSQL server binaries (initdb, pg_ctl, postgres; e.g. "
    "`apt-get install postgresql`, `brew install postgresql`) so that a throwaway cluster can be "
    "started (found through `pg_config --bindir`, PATH, /usr/lib/postgresql/*/bin, "
    f"or {ENV_BINDIR})."
)


@dataclass(frozen=True)
class PostgresServer:
    """Where a PostgreSQL server listens. `url()` builds SQLAlchemy/libpq URLs for it."""

    host: str
    port: int
    user: str
    password: str | None = None
    database: str = "postgres"
    query: str = ""
    origin: str = "external"  # "external" (a URL we were given) or "throwaway"

    def url(self, scheme: str = "postgresql", database: str | None = None) -> str:
        """`scheme://user[:password]@host:port/database`, scheme e.g. `postgresql+asyncpg`."""
        auth = quote(self.user, safe="")
        if self.password is not None:
            auth += ":" + quote(self.password, safe="")
        host = f"[{self.host}]" if ":" in self.host else self.host
        url = f"{scheme}://{auth}@{host}:{self.port}/{quote(database or self.database, safe='')}"
        return f"{url}?{self.query}" if self.query else url

    def __str__(self) -> str:  # never print a password
        shown = self if self.password is None else replace(self, password="***")
        return f"{shown.url()} ({self.origin})"


def parse_server_url(url: str) -> PostgresServer:
    """Accept `postgresql://`, `postgres://` and `postgresql+<driver>://` URLs."""
    parts = urlsplit(url.strip())
    if not re.fullmatch(r"postgres(ql)?(\+\w+)?", parts.scheme):
        raise PostgresUnavailable(
            f"A PostgreSQL server URL must be a postgresql:// URL, got scheme {parts.scheme!r}.\n"
            + HOW_TO_GET_A_SERVER
        )
    return PostgresServer(
        host=parts.hostname or "localhost",
        port=parts.port or 5432,
        user=unquote(parts.username) if parts.username else "postgres",
        password=unquote(parts.password) if parts.password is not None else None,
        database=unquote(parts.path.lstrip("/")) or "postgres",
        query=parts.query,
        origin="external",
    )


def environment_url() -> str | None:
    """TEST_POSTGRES_URL, when set."""
    return os.environ.get(ENV_URL, "").strip() or None


def find_psql() -> str | None:
    bindir = find_bindir()
    if bindir is not None and (bindir / "psql").is_file():
        return str(bindir / "psql")
    return shutil.which("psql")


class Postgres:
    """A server, the throwaway cluster behind it (None: a server we were given, not ours to
    stop), and psql queries against it."""

    def __init__(self, server: PostgresServer, cluster: ThrowawayCluster | None) -> None:
        self.server = server
        self.cluster = cluster

    @cached_property
    def psql(self) -> str:
        found = find_psql()
        if found is None:
            raise PostgresUnavailable("psql not found (needed to query the server).")
        return found

    @property
    def can_stop(self) -> bool:
        return self.cluster is not None

    def url(self, scheme: str, database: str) -> str:
        return self.server.url(scheme, database)

    def query(self, sql: str, database: str = "postgres", timeout: float = 30) -> list[list[str]]:
        """Rows of `sql` (fields split on tabs) through psql."""
        env = {**os.environ, "PGCONNECT_TIMEOUT": "5"}
        if self.server.password is not None:
            env["PGPASSWORD"] = self.server.password
        proc = subprocess.run(
            [
                self.psql,
                *("-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1"),
                *("-h", self.server.host, "-p", str(self.server.port), "-U", self.server.user),
                *("-d", database, "-c", sql),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"psql failed ({sql!r}): {proc.stderr.strip()}")
        return [line.split("\t") for line in proc.stdout.splitlines() if line]

    def scalar(self, sql: str, database: str = "postgres") -> str:
        rows = self.query(sql, database)
        return rows[0][0] if rows else ""

    def create_database(self, name: str, template: str | None = None) -> None:
        self.query(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.query(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))

    def drop_database(self, name: str) -> None:
        with contextlib.suppress(Exception):
            self.query(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def backends(self, database: str) -> dict[str, int]:
        """Client connections to `database` by state (this query's own left out)."""
        rows = self.query(
            "SELECT coalesce(state, 'none'), count(*) FROM pg_stat_activity "
            f"WHERE datname = '{database}' AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend' GROUP BY 1"
        )
        return {state: int(count) for state, count in rows}


@contextlib.contextmanager
def postgres(url: str | None, *, max_connections: int = 200) -> Iterator[Postgres]:
    """The server `url` names, else a throwaway cluster (with `max_connections`) removed
    afterwards; else PostgresUnavailable naming both ways."""
    if url:
        yield Postgres(parse_server_url(url), None)
        return
    bindir = find_bindir()
    if bindir is None:
        raise PostgresUnavailable(
            "No PostgreSQL server URL was given and no PostgreSQL server binaries were found.\n"
            + HOW_TO_GET_A_SERVER
        )
    cluster = ThrowawayCluster(bindir, max_connections=max_connections, how_to=HOW_TO_GET_A_SERVER)
    port = cluster.start()
    try:
        yield Postgres(
            PostgresServer(host="127.0.0.1", port=port, user="postgres", origin="throwaway"),
            cluster,
        )
    finally:
        cluster.stop()
