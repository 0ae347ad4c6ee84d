"""A PostgreSQL server for the generated projects' test suites.

Either the server named by ``TEST_POSTGRES_URL`` (any role that may ``CREATE DATABASE``), or a
throwaway cluster started from the PostgreSQL binaries on this machine (``initdb`` + ``pg_ctl``,
trust authentication, loopback only, durability off) and removed afterwards. ``initdb`` and
``postgres`` refuse to run as root, so as root the cluster runs as an unprivileged OS user
(``postgres`` by default, ``TEST_POSTGRES_OS_USER`` to change it) that owns its data directory.
"""

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
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

ENV_URL = "TEST_POSTGRES_URL"
ENV_BINDIR = "TEST_POSTGRES_BINDIR"
ENV_OS_USER = "TEST_POSTGRES_OS_USER"

HOW_TO_GET_A_SERVER = (
    "The PostgreSQL variants need a real PostgreSQL server. Either\n"
    f"  * set {ENV_URL}=postgresql://USER[:PASSWORD]@HOST:PORT/postgres to a server on which that "
    "role may CREATE DATABASE, or\n"
    "  * install the PostgreSQL server binaries (initdb, pg_ctl, postgres; e.g. "
    "`apt-get install postgresql`, `brew install postgresql`) so that the tests can start a "
    f"throwaway cluster (found through `pg_config --bindir`, PATH, /usr/lib/postgresql/*/bin, "
    f"or {ENV_BINDIR})."
)


class PostgresUnavailable(RuntimeError):
    """No server can be had; the message says why and how to get one."""


@dataclass(frozen=True)
class PostgresServer:
    """Where a PostgreSQL server listens. ``url()`` builds SQLAlchemy/libpq URLs for it."""

    host: str
    port: int
    user: str
    password: str | None = None
    database: str = "postgres"
    query: str = ""
    origin: str = "external"  # "external" (TEST_POSTGRES_URL) or "throwaway"

    def url(self, scheme: str = "postgresql", database: str | None = None) -> str:
        """``scheme://user[:password]@host:port/database``, scheme e.g. ``postgresql+asyncpg``."""
        auth = quote(self.user, safe="")
        if self.password is not None:
            auth += ":" + quote(self.password, safe="")
        host = f"[{self.host}]" if ":" in self.host else self.host
        url = f"{scheme}://{auth}@{host}:{self.port}/{quote(database or self.database, safe='')}"
        return f"{url}?{self.query}" if self.query else url

    def __str__(self) -> str:  # never print a password
        shown = (
            self if self.password is None else PostgresServer(**{**vars(self), "password": "***"})
        )
        return f"{shown.url()} ({self.origin})"


def parse_server_url(url: str) -> PostgresServer:
    """Accept ``postgresql://``, ``postgres://`` and ``postgresql+<driver>://`` URLs."""
    parts = urlsplit(url.strip())
    if not re.fullmatch(r"postgres(ql)?(\+\w+)?", parts.scheme):
        raise PostgresUnavailable(
            f"{ENV_URL} must be a postgresql:// URL, got scheme {parts.scheme!r}.\n"
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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class ThrowawayCluster:
    """initdb + pg_ctl start in a temporary directory; ``stop()`` removes everything."""

    def __init__(self, bindir: Path, *, max_connections: int = 200) -> None:
        self.bindir = bindir
        self.max_connections = max_connections
        self.base = Path(tempfile.mkdtemp(prefix="cfs-pg-"))
        self.data = self.base / "data"
        self.sockets = self.base / "sockets"
        self.log = self.base / "postgres.log"
        self.sockets.mkdir()
        self.run_as: str | None = None
        if os.geteuid() == 0:
            self.run_as = os.environ.get(ENV_OS_USER, "postgres")
            try:
                shutil.chown(self.base, user=self.run_as, group=None)
                shutil.chown(self.sockets, user=self.run_as, group=None)
            except (LookupError, PermissionError) as exc:
                self._remove()
                raise PostgresUnavailable(
                    f"Running as root: initdb/postgres refuse root, and the OS user "
                    f"{self.run_as!r} to run them as is not usable ({exc}); create it or set "
                    f"{ENV_OS_USER}.\n" + HOW_TO_GET_A_SERVER
                ) from exc
        self.port: int | None = None

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, object] = {}
        if self.run_as is not None:
            # Same effect as `runuser -u postgres --`: drop to the unprivileged user.
            kwargs.update(user=self.run_as, group=_primary_group(self.run_as), extra_groups=[])
        return subprocess.run(
            list(args),
            cwd=self.base,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
            **kwargs,  # type: ignore[call-overload]
        )

    def start(self) -> PostgresServer:
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
            raise PostgresUnavailable(f"initdb failed:\n{proc.stdout}\n" + HOW_TO_GET_A_SERVER)
        last_error = ""
        for _attempt in range(5):  # another process may grab the free port before postgres does
            port = _free_port()
            options = " ".join(
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
                options,
                "start",
            )
            if proc.returncode == 0 and self._wait_ready(port):
                self.port = port
                return PostgresServer(
                    host="127.0.0.1", port=port, user="postgres", origin="throwaway"
                )
            last_error = f"{proc.stdout}\n--- server log ---\n{_tail(self.log)}"
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        self._remove()
        raise PostgresUnavailable(f"pg_ctl start failed:\n{last_error}\n" + HOW_TO_GET_A_SERVER)

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
            self._run(
                str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"
            )
        self._remove()

    def _remove(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


def _primary_group(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_gid


@contextlib.contextmanager
def postgres_server():  # type: ignore[no-untyped-def]
    """Yield a PostgresServer: TEST_POSTGRES_URL, else a throwaway cluster; else raise
    PostgresUnavailable naming both ways."""
    url = os.environ.get(ENV_URL, "").strip()
    if url:
        yield parse_server_url(url)
        return
    bindir = find_bindir()
    if bindir is None:
        raise PostgresUnavailable(
            f"{ENV_URL} is not set and no PostgreSQL server binaries were found.\n"
            + HOW_TO_GET_A_SERVER
        )
    cluster = ThrowawayCluster(bindir)
    server = cluster.start()
    try:
        yield server
    finally:
        cluster.stop()


def find_psql() -> str | None:
    bindir = find_bindir()
    if bindir is not None and (bindir / "psql").is_file():
        return str(bindir / "psql")
    return shutil.which("psql")
