"""A PgBouncer in transaction-pooling mode in front of the suite's PostgreSQL server."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from toolkit.cluster import OS_USER
from toolkit.postgres import Postgres, PostgresServer
from toolkit.processes import drop_privileges, free_port, tail


def find_pgbouncer() -> str | None:
    return shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if Path(p).is_file()), None
    )


def install_pgbouncer() -> str:
    """The pgbouncer binary; as root on Debian/Ubuntu, apt-get installs it when missing."""
    found = find_pgbouncer()
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RuntimeError(
            "pgbouncer is not installed (Debian/Ubuntu: apt-get install pgbouncer; macOS: brew "
            "install pgbouncer); the PgBouncer check needs it."
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "pgbouncer"]
    log = ""
    for attempt in range(12):  # another apt-get may hold the dpkg lock for a while
        proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        log = proc.stdout + proc.stderr
        if proc.returncode == 0:
            break
        if "Unable to locate package" in log and attempt == 0:
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env, check=False)
            continue
        time.sleep(10)
    found = find_pgbouncer()
    if not found:
        raise RuntimeError(f"apt-get install pgbouncer failed:\n{log[-2000:]}")
    return found


class PgBouncer:
    """A PgBouncer in transaction-pooling mode in front of `pg`, with few server connections so
    that a client's consecutive transactions really land on different server connections."""

    def __init__(self, pg: Postgres, binary: str, *, pool_size: int = 4) -> None:
        self.pg = pg
        self.binary = binary
        self.pool_size = pool_size
        self.base = Path(tempfile.mkdtemp(prefix="rel-pgbouncer-"))
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.run_as = OS_USER if os.geteuid() == 0 else None

    @property
    def log(self) -> Path:
        return self.base / "pgbouncer.log"

    def start(self) -> None:
        server = self.pg.server
        auth = self.base / "userlist.txt"
        auth.write_text(f'"{server.user}" "{server.password or ""}"\n')
        config = self.base / "pgbouncer.ini"
        config.write_text(
            "\n".join(
                [
                    "[databases]",
                    f"* = host={server.host} port={server.port}",
                    "[pgbouncer]",
                    "listen_addr = 127.0.0.1",
                    f"listen_port = {self.port}",
                    f"unix_socket_dir = {self.base}",
                    "pool_mode = transaction",
                    "auth_type = trust" if server.password is None else "auth_type = plain",
                    f"auth_file = {auth}",
                    f"default_pool_size = {self.pool_size}",
                    "min_pool_size = 0",
                    "reserve_pool_size = 0",
                    "max_client_conn = 500",
                    "server_reset_query = DISCARD ALL",
                    "ignore_startup_parameters = extra_float_digits",
                    f"logfile = {self.log}",
                    "",
                ]
            )
        )
        if self.run_as:
            for path in (self.base, auth, config):
                shutil.chown(path, user=self.run_as)
        self.process = subprocess.Popen(
            [self.binary, str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            **drop_privileges(self.run_as),  # type: ignore[call-overload]
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited:\n{self.log_tail()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 1),
            ):
                return
            time.sleep(0.1)
        raise RuntimeError(f"pgbouncer did not listen within 20s:\n{self.log_tail()}")

    def url(self, scheme: str, database: str) -> str:
        return PostgresServer(
            host="127.0.0.1",
            port=self.port,
            user=self.pg.server.user,
            password=self.pg.server.password,
        ).url(scheme, database)

    def log_tail(self, lines: int = 30) -> str:
        return tail(self.log, lines)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.base, ignore_errors=True)
