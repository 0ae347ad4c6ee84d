"""The database of one check: PostgreSQL (a database on the suite's server) or a SQLite file.

Both answer the same questions straight from the database, never through the service: row
counts, whether any connection is left inside a transaction, and how many connections the
service holds; both can be taken away (an outage) and given back.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from reliability.server import Server
from toolkit.postgres import Postgres


class Database(Protocol):
    url: str
    run_as: str | None  # the OS user the servers must run as (SQLite files they own)

    def rows(self, sql: str) -> list[tuple[str, ...]]: ...
    def count(self, table: str) -> int: ...
    def in_transaction(self, servers: list[Server]) -> int:
        """Connections of the service left inside a transaction (or holding SQLite's lock)."""
        ...

    def connections(self, servers: list[Server]) -> int:
        """Connections the service holds to the database."""
        ...

    def outage_ways(self) -> list[str]: ...
    def take_away(self, way: str) -> str:
        """Make the database unavailable to the service in `way`; returns what was done."""
        ...

    def give_back(self) -> None: ...
    def drop(self) -> None: ...


class PgDatabase:
    def __init__(self, pg: Postgres, name: str, url: str) -> None:
        self.pg = pg
        self.name = name
        self.url = url
        self.run_as: str | None = None
        self._stopped = False

    @classmethod
    def clone(cls, pg: Postgres, template: str, name: str, scheme: str) -> PgDatabase:
        pg.create_database(name, template=template)
        return cls(pg, name, pg.url(scheme, name))

    def rows(self, sql: str) -> list[tuple[str, ...]]:
        return [tuple(row) for row in self.pg.query(sql, self.name)]

    def count(self, table: str) -> int:
        return int(self.pg.scalar(f"SELECT count(*) FROM {table}", self.name))

    def in_transaction(self, servers: list[Server]) -> int:
        states = self.pg.backends(self.name)
        return sum(n for state, n in states.items() if state.startswith("idle in transaction"))

    def busy(self) -> int:
        states = self.pg.backends(self.name)
        return sum(n for state, n in states.items() if state != "idle")

    def connections(self, servers: list[Server]) -> int:
        return sum(self.pg.backends(self.name).values())

    def outage_ways(self) -> list[str]:
        return ["stop"] if self.pg.cluster is not None else []

    def take_away(self, way: str) -> str:
        assert way == "stop" and self.pg.cluster is not None
        self.pg.cluster.stop_server()
        self._stopped = True
        return "PostgreSQL server stopped (pg_ctl stop -m fast)"

    def give_back(self) -> None:
        if self._stopped and self.pg.cluster is not None:
            self.pg.cluster.start_server()
            self._stopped = False

    def drop(self) -> None:
        self.pg.drop_database(self.name)


class SqliteDatabase:
    """A SQLite file in a directory of its own. As root, the directory belongs to an unprivileged
    user and the servers run as that user: only then can the file be made unreadable to them."""

    def __init__(self, path: Path, run_as: str | None) -> None:
        self.path = path
        self.run_as = run_as
        self.url = f"sqlite+aiosqlite:///{path}"
        self._given_back: Callable[[], None] | None = None

    @classmethod
    def clone(cls, template: Path, workdir: Path, name: str, run_as: str | None) -> SqliteDatabase:
        directory = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=workdir))
        path = directory / "app.db"
        shutil.copyfile(template, path)
        database = cls(path, run_as)
        database.give_to_server_user()
        return database

    def give_to_server_user(self) -> None:
        if self.run_as is None:
            return
        for path in [self.path.parent, *self.path.parent.iterdir()]:
            shutil.chown(path, user=self.run_as)

    @contextlib.contextmanager
    def _connect(self, timeout: float = 5.0):  # type: ignore[no-untyped-def]
        connection = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        try:
            yield connection
        finally:
            connection.close()
            # files SQLite may have created as us (root) must stay usable by the servers
            self.give_to_server_user()

    def rows(self, sql: str) -> list[tuple[str, ...]]:
        with self._connect() as connection:
            return [tuple(str(v) for v in row) for row in connection.execute(sql).fetchall()]

    def count(self, table: str) -> int:
        return int(self.rows(f"SELECT count(*) FROM {table}")[0][0])

    def in_transaction(self, servers: list[Server]) -> int:
        """1 when another connection holds the write lock (a writer left in its transaction)."""
        with self._connect(timeout=0) as connection:
            try:
                connection.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:
                return 1
            connection.execute("ROLLBACK")
            return 0

    def connections(self, servers: list[Server]) -> int:
        """Open connections, counted by their -wal file descriptors: SQLite keeps the main file's
        descriptor of a closed connection open (for reuse) while the process holds locks on it,
        so those overcount; each open connection in WAL mode holds exactly one -wal descriptor."""
        wal = self.path.with_name(self.path.name + "-wal")
        return sum(server.open_files(wal) for server in servers)

    def outage_ways(self) -> list[str]:
        # chmod stops no root process: only when the servers run as another user, or we are not
        # root at all, can the file be made unreadable to them.
        unreadable = os.geteuid() != 0 or self.run_as is not None
        return ["moved", "unreadable"] if unreadable else ["moved"]

    def take_away(self, way: str) -> str:
        directory = self.path.parent
        if way == "moved":
            directory.rename(self._away)

            def move_back() -> None:
                self._away.rename(directory)

            self._given_back = move_back
            return "SQLite database directory moved away"
        assert way == "unreadable"
        saved = {p: stat.S_IMODE(p.stat().st_mode) for p in [*directory.iterdir(), directory]}
        for path in saved:
            os.chmod(path, 0)

        def restore() -> None:
            for path, mode in reversed(list(saved.items())):
                with contextlib.suppress(FileNotFoundError):
                    os.chmod(path, mode)

        self._given_back = restore
        return "SQLite file and its directory made unreadable (chmod 000) to the server's user"

    @property
    def _away(self) -> Path:
        return self.path.parent.with_name(self.path.parent.name + ".away")

    def give_back(self) -> None:
        if self._given_back is not None:
            self._given_back()
            self._given_back = None

    def drop(self) -> None:
        self.give_back()
        shutil.rmtree(self.path.parent, ignore_errors=True)
