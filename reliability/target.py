"""One variant under test: its project, a migrated template database to clone per check, and how
to start servers on a fresh copy of it."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from reliability.databases import Database, PgDatabase, SqliteDatabase
from reliability.project import Project
from reliability.server import Server
from toolkit.answers import Variant
from toolkit.postgres import Postgres

# Servers run as in production: secure cookies, full-cost password hashing, secrets required.
SESSION_SECRET_KEYS = f'["{secrets.token_urlsafe(48)}"]'
SQLITE_OS_USER = os.environ.get("RELIABILITY_OS_USER", "nobody")
POOL_SIZE = 10


@dataclass(frozen=True)
class Sizes:
    """How much each check does: `quick` fits CI, `full` is the thorough run."""

    load_requests: int
    load_concurrency: int
    abort_share: float
    pgbouncer_requests: int
    sqlite_writers: int
    oversell_orders: int
    users: int

    @classmethod
    def quick(cls) -> Sizes:
        return cls(800, 48, 0.1, 400, 50, 30, 4)

    @classmethod
    def full(cls) -> Sizes:
        return cls(3000, 96, 0.1, 1500, 50, 60, 6)


class Target:
    def __init__(self, project: Project, pg: Postgres | None, workdir: Path, sizes: Sizes) -> None:
        self.project = project
        self.variant: Variant = project.variant
        self.pg = pg
        self.workdir = workdir
        self.sizes = sizes
        self.run_as = (
            SQLITE_OS_USER if (os.geteuid() == 0 and not self.variant.is_postgres) else None
        )
        self._template_db: str | Path | None = None
        self._clones = 0

    def key(self) -> str:
        return self.variant.id.replace("-", "_")

    def migrate_template(self) -> None:
        """Apply the project's migrations once; every check clones the result."""
        if self.variant.is_postgres:
            assert self.pg is not None
            name = f"rel_{self.key()}_template"
            self.pg.create_database(name)
            self.project.migrate(self.env(self.pg.url(self.variant.url_scheme, name)))
            self._template_db = name
        else:
            directory = self.workdir / f"{self.key()}-template"
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / "app.db"
            self.project.migrate(self.env(f"sqlite+aiosqlite:///{path}"))
            # leave one self-contained file to copy (no -wal/-shm beside it)
            import sqlite3

            connection = sqlite3.connect(path, isolation_level=None)
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            connection.execute("PRAGMA journal_mode=DELETE")
            connection.close()
            self._template_db = path

    def new_database(self, check: str) -> Database:
        self._clones += 1
        name = f"rel_{self.key()}_{check.replace('-', '_')}_{self._clones}"
        if self.variant.is_postgres:
            assert self.pg is not None and isinstance(self._template_db, str)
            return PgDatabase.clone(self.pg, self._template_db, name, self.variant.url_scheme)
        assert isinstance(self._template_db, Path)
        return SqliteDatabase.clone(self._template_db, self.workdir, name, self.run_as)

    def env(self, database_url: str, **settings: str) -> dict[str, str]:
        """The servers' environment. The pool is sized explicitly (whatever the template's
        defaults): POOL_SIZE kept, as many again in overflow, so that a load uses the overflow
        and "back to rest" means it was closed again."""
        return self.project.env(
            {
                "ENVIRONMENT": "production",
                "DATABASE_URL": database_url,
                "SESSION_SECRET_KEYS": SESSION_SECRET_KEYS,
                "DATABASE_POOL_SIZE": str(POOL_SIZE),
                "DATABASE_MAX_OVERFLOW": str(POOL_SIZE),
                **{key.upper(): value for key, value in settings.items()},
            }
        )

    @contextlib.contextmanager
    def servers(
        self, database: Database, count: int = 1, *, url: str | None = None, **settings: str
    ) -> Iterator[list[Server]]:
        """`count` started servers of the project on `database` (or `url`), stopped afterwards."""
        env = self.env(url or database.url, **settings)
        started: list[Server] = []
        try:
            for n in range(count):
                server = Server(
                    self.project,
                    env,
                    name=f"{self.variant.id}-{n}",
                    run_as=database.run_as,
                    log_dir=self.workdir / "logs",
                )
                server.log_path.parent.mkdir(parents=True, exist_ok=True)
                started.append(server)
                server.start()
            yield started
        finally:
            for server in started:
                server.stop()

    def cleanup(self) -> None:
        if self.variant.is_postgres and self.pg is not None and isinstance(self._template_db, str):
            self.pg.drop_database(self._template_db)
        elif isinstance(self._template_db, Path):
            shutil.rmtree(self._template_db.parent, ignore_errors=True)
