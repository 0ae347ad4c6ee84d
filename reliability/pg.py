"""PostgreSQL for the reliability suite: a server (throwaway cluster or TEST_POSTGRES_URL), psql
queries, an outage switch (stop/start the throwaway cluster) and a PgBouncer in front of it."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.postgres import (
    ENV_URL,
    HOW_TO_GET_A_SERVER,
    PostgresServer,
    PostgresUnavailable,
    ThrowawayCluster,
    find_bindir,
    find_psql,
    parse_server_url,
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def drop_privileges(user: str | None) -> dict[str, object]:
    """subprocess keyword arguments that run a child as `user` (when we are root)."""
    if user is None or os.geteuid() != 0:
        return {}
    import pwd

    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


class Cluster(ThrowawayCluster):
    """tests.postgres's throwaway cluster, plus stopping and restarting it on the same port (the
    outage check) with the options ThrowawayCluster.start() used."""

    def _options(self) -> str:
        assert self.port is not None
        return " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-p {self.port}",
                f"-k {shlex.quote(str(self.sockets))}",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=200",
            ]
        )

    def stop_server(self) -> None:
        proc = self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"
        )
        if proc.returncode != 0:
            raise RuntimeError(f"pg_ctl stop failed:\n{proc.stdout}")

    def start_server(self) -> None:
        proc = self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "60",
            "-o",
            self._options(),
            "start",
        )
        if proc.returncode != 0 or not self._wait_ready(self.port or 0):
            raise RuntimeError(f"pg_ctl start failed:\n{proc.stdout}")


class Postgres:
    """The server the PostgreSQL variants run against."""

    def __init__(self, server: PostgresServer, cluster: Cluster | None) -> None:
        self.server = server
        self.cluster = cluster
        psql = find_psql()
        if psql is None:
            raise PostgresUnavailable("psql not found (needed to inspect pg_stat_activity).")
        self.psql = psql

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
                "-X",
                "-q",
                "-A",
                "-t",
                "-F",
                "\t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                self.server.host,
                "-p",
                str(self.server.port),
                "-U",
                self.server.user,
                "-d",
                database,
                "-c",
                sql,
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

    def create_database(self, name: str) -> None:
        self.query(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.query(f'CREATE DATABASE "{name}"')

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
def postgres() -> Iterator[Postgres]:
    """TEST_POSTGRES_URL (no outage check possible), else a throwaway cluster this suite owns."""
    url = os.environ.get(ENV_URL, "").strip()
    if url:
        yield Postgres(parse_server_url(url), None)
        return
    bindir = find_bindir()
    if bindir is None:
        raise PostgresUnavailable(
            f"{ENV_URL} is not set and no PostgreSQL server binaries were found.\n"
            + HOW_TO_GET_A_SERVER
        )
    cluster = Cluster(bindir)
    server = cluster.start()
    try:
        yield Postgres(server, cluster)
    finally:
        cluster.stop()


# ----------------------------------------------------------------------------- PgBouncer

PGBOUNCER_OS_USER = os.environ.get("TEST_POSTGRES_OS_USER", "postgres")


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
        self.run_as = PGBOUNCER_OS_USER if os.geteuid() == 0 else None

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
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.base, ignore_errors=True)
