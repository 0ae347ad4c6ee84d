"""A lock held from outside the service, so that a request needing it waits."""

from __future__ import annotations

import sqlite3
import subprocess
import threading
import time

from reliability.databases import Database, PgDatabase, SqliteDatabase


class HeldLock:
    """Hold the items table (PostgreSQL: ACCESS EXCLUSIVE lock) or SQLite's write lock from
    outside the service for `seconds`, so that a request needing it keeps its pooled
    connection while it waits."""

    def __init__(self, database: Database, seconds: float) -> None:
        self.database = database
        self.seconds = seconds
        self._process: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None
        self._locked = threading.Event()
        self.locked_at = 0.0  # time.monotonic() when the lock was taken (SQLite)

    def __enter__(self) -> HeldLock:
        if isinstance(self.database, PgDatabase):
            pg = self.database.pg
            self._process = subprocess.Popen(
                [
                    pg.psql,
                    "-X",
                    "-q",
                    "-h",
                    pg.server.host,
                    "-p",
                    str(pg.server.port),
                    "-U",
                    pg.server.user,
                    "-d",
                    self.database.name,
                    "-c",
                    "BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE; "
                    f"SELECT pg_sleep({self.seconds}); COMMIT;",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                granted = pg.scalar(
                    "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                    "WHERE c.relname = 'items' AND l.mode = 'AccessExclusiveLock' AND l.granted",
                    self.database.name,
                )
                if granted == "1":
                    break
                time.sleep(0.05)
        else:
            assert isinstance(self.database, SqliteDatabase)
            path = self.database.path

            def hold() -> None:
                connection = sqlite3.connect(path, timeout=10, isolation_level=None)
                try:
                    connection.execute("BEGIN IMMEDIATE")
                    self.locked_at = time.monotonic()
                    self._locked.set()
                    time.sleep(self.seconds)
                    connection.execute("ROLLBACK")
                finally:
                    connection.close()

            self._thread = threading.Thread(target=hold, daemon=True)
            self._thread.start()
            self._locked.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.wait(timeout=self.seconds + 30)
        if self._thread is not None:
            self._thread.join(self.seconds + 30)
        if isinstance(self.database, SqliteDatabase):
            self.database.give_to_server_user()
