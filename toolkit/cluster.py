"""A throwaway PostgreSQL cluster: initdb + pg_ctl in a temporary directory, trust
authentication, loopback only, durability off, removed by stop(). initdb and postgres refuse to run
as root, so as root the cluster runs as an unprivileged OS user (`postgres` by default,
TEST_POSTGRES_OS_USER to change it) that owns its data directory."""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from toolkit.processes import drop_privileges, free_port, tail

ENV_BINDIR = "TEST_POSTGRES_BINDIR"
ENV_OS_USER = "TEST_POSTGRES_OS_USER"
OS_USER = os.environ.get(ENV_OS_USER, "postgres")


class PostgresUnavailable(RuntimeError):
    """No server can be had; the message says why and how to get one."""


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path)) or (0,)


def find_bindir() -> Path | None:
    """The directory holding initdb and pg_ctl: explicit, pg_config, PATH, then the newest
    /usr/lib/postgresql/*/bin (Debian/Ubuntu keep the server binaries off PATH)."""
    candidates: list[str] = []
    if os.environ.get(ENV_BINDIR):
        candidates.append(os.environ[ENV_BINDIR])
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=30, check=True
            ).stdout.strip()
            candidates.append(out)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(initdb).parent))
    for pattern in (
        "/usr/lib/postgresql/*/bin",
        "/usr/pgsql-*/bin",
        "/usr/local/pgsql/bin",
        "/opt/homebrew/opt/postgresql*/bin",
        "/usr/local/opt/postgresql*/bin",
    ):
        candidates.extend(sorted(glob.glob(pattern), key=_version_key, reverse=True))
    for candidate in candidates:
        path = Path(candidate)
        if all((path / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return path
    return None


class ThrowawayCluster:
    """initdb + pg_ctl start in a temporary directory; `stop()` removes everything. In between,
    `stop_server()` and `start_server()` take the server away and give it back on the same port."""

    def __init__(self, bindir: Path, *, max_connections: int = 200, how_to: str = "") -> None:
        self.bindir = bindir
        self.max_connections = max_connections
        self.how_to = how_to  # appended to every PostgresUnavailable message
        self.base = Path(tempfile.mkdtemp(prefix="cfs-pg-"))
        self.data = self.base / "data"
        self.sockets = self.base / "sockets"
        self.log = self.base / "postgres.log"
        self.sockets.mkdir()
        self.run_as: str | None = None
        if os.geteuid() == 0:
            self.run_as = OS_USER
            try:
                shutil.chown(self.base, user=self.run_as, group=None)
                shutil.chown(self.sockets, user=self.run_as, group=None)
            except (LookupError, PermissionError) as exc:
                self._remove()
                raise PostgresUnavailable(
                    f"Running as root: initdb/postgres refuse root, and the OS user "
                    f"{self.run_as!r} to run them as is not usable ({exc}); create it or set "
                    f"{ENV_OS_USER}.\n" + self.how_to
                ) from exc
        self.port: int | None = None

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args),
            cwd=self.base,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
            **drop_privileges(self.run_as),  # type: ignore[call-overload]
        )

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), *args)

    def _options(self, port: int) -> str:
        return " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-p {port}",
                f"-k {shlex.quote(str(self.sockets))}",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                f"-c max_connections={self.max_connections:d}",
            ]
        )

    def _pg_ctl_start(self, port: int) -> subprocess.CompletedProcess[str]:
        return self._pg_ctl(
            "-l", str(self.log), "-w", "-t", "60", "-o", self._options(port), "start"
        )

    def start(self) -> int:
        """initdb and start; returns the port the server listens on (127.0.0.1)."""
        self._create_data_directory()
        return self._start_on_a_free_port()

    def _create_data_directory(self) -> None:
        proc = self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        if proc.returncode != 0:
            self._remove()
            raise PostgresUnavailable(f"initdb failed:\n{proc.stdout}\n" + self.how_to)

    def _start_on_a_free_port(self) -> int:
        last_error = ""
        for _attempt in range(5):  # another process may grab the free port before postgres does
            port = free_port()
            proc = self._pg_ctl_start(port)
            if proc.returncode == 0 and self._wait_ready(port):
                self.port = port
                return port
            last_error = f"{proc.stdout}\n--- server log ---\n{tail(self.log)}"
            self._pg_ctl("-m", "immediate", "stop")
        self._remove()
        raise PostgresUnavailable(f"pg_ctl start failed:\n{last_error}\n" + self.how_to)

    def stop_server(self) -> None:
        """Stop the server (pg_ctl stop -m fast), keeping the cluster for start_server()."""
        proc = self._pg_ctl("-m", "fast", "-w", "stop")
        if proc.returncode != 0:
            raise RuntimeError(f"pg_ctl stop failed:\n{proc.stdout}")

    def start_server(self) -> None:
        """Start the stopped server again, on the same port with the same options."""
        assert self.port is not None
        proc = self._pg_ctl_start(self.port)
        if proc.returncode != 0 or not self._wait_ready(self.port):
            raise RuntimeError(f"pg_ctl start failed:\n{proc.stdout}")

    def _wait_ready(self, port: int, timeout: float = 30) -> bool:
        isready = self.bindir / "pg_isready"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if isready.is_file():
                proc = subprocess.run(
                    [str(isready), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-q"],
                    check=False,
                    timeout=30,
                )
                if proc.returncode == 0:
                    return True
            else:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                    return True
            time.sleep(0.2)
        return False

    def stop(self) -> None:
        if self.data.exists():
            self._pg_ctl("-m", "immediate", "-w", "stop")
        self._remove()

    def _remove(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


class ThrowawayReplica(ThrowawayCluster):
    """A streaming replica of the server at `primary_url` (a role that may replicate):
    `pg_basebackup -R` into a temporary directory, replaying each transaction `apply_delay_ms`
    after its commit (`recovery_min_apply_delay`) so that it really lags. Stopped and removed
    like a ThrowawayCluster."""

    def __init__(
        self, bindir: Path, primary_url: str, *, apply_delay_ms: int, how_to: str = ""
    ) -> None:
        super().__init__(bindir, how_to=how_to)
        self.primary_url = primary_url
        self.apply_delay_ms = apply_delay_ms

    def _create_data_directory(self) -> None:
        proc = self._run(
            str(self.bindir / "pg_basebackup"),
            f"--dbname={self.primary_url}",
            f"--pgdata={self.data}",
            "--write-recovery-conf",
            "--checkpoint=fast",
            "--no-sync",
        )
        if proc.returncode != 0:
            self._remove()
            raise PostgresUnavailable(f"pg_basebackup failed:\n{proc.stdout}\n" + self.how_to)
        with (self.data / "postgresql.auto.conf").open("a", encoding="utf-8") as conf:
            conf.write(f"recovery_min_apply_delay = '{self.apply_delay_ms:d}ms'\n")
