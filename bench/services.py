"""The services under test: the generated variants (rendered, installed, migrated and seeded) and
the hand-written baselines, each served by one uvicorn worker."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.answers import TEMPLATE_ROOT, Variant
from toolkit.environment import project_env, uv_binary
from toolkit.postgres import PostgresServer
from toolkit.processes import ServerProcess, http_request, run
from toolkit.render import render

REPO = TEMPLATE_ROOT
BENCH = REPO / "bench"
PACKAGE = "my_service"  # the template's default package name and CLI
CLI = "my-service"
ITEMS = 10_000
SQLITE_BASELINE = "fastapi+aiosqlite"
"""The baseline of the aiosqlite variants, run with the others when one of them is measured."""
BASELINES = ("starlette+asyncpg", "fastapi+asyncpg", SQLITE_BASELINE)
REFERENCE = "fastapi+sqlalchemy"
"""--orm-baseline: the straightforward FastAPI + SQLAlchemy ORM app, measured like a variant."""
SQLITE_FLOOR = "sqlalchemy floor (aiosqlite)"
"""--sqlite-floor: the least an ORM service on aiosqlite does, measured like a variant."""
REFERENCES = (REFERENCE, SQLITE_FLOOR)
BASELINE_MODULES = {
    "starlette+asyncpg": "bench.baselines.starlette_asyncpg:app",
    "fastapi+asyncpg": "bench.baselines.fastapi_asyncpg:app",
    SQLITE_BASELINE: "bench.baselines.fastapi_aiosqlite:app",
    REFERENCE: "bench.baselines.fastapi_sqlalchemy:app",
    SQLITE_FLOOR: "bench.baselines.fastapi_sqlalchemy_sqlite_floor:app",
}
PASSWORD = "bench-password-not-secret"
BASELINE_DATABASE = "bench_base"
SQLITE_BASELINE_FILE = "baseline.db"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A generated project's environment (nothing of ours leaks in), with bytecode caching on
    as on a developer's machine."""
    env = project_env(extra)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def check_run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 900) -> float:
    """Run a command to completion; its seconds. Raise with the output on failure."""
    return run(argv, cwd, env=env, timeout=timeout).check(" ".join(argv)).seconds


class Server(ServerProcess):
    """One uvicorn process (one worker unless --workers), its log in the work dir, and the Cookie
    header its authenticated requests carry."""

    def __init__(
        self, name: str, argv: list[str], cwd: Path, env: dict[str, str], log_path: Path
    ) -> None:
        super().__init__(name, argv, cwd, env, log_path)
        self.cookie = ""


@dataclass
class Prepared:
    """A variant ready to serve, and what preparing it cost."""

    variant: Variant
    endpoints: list[str]
    project: Path
    database_url: str
    secret_env: dict[str, str] = field(default_factory=dict)
    render_s: float = 0.0
    install_s: float = 0.0
    suite_s: float | None = None
    suite_ok: bool | None = None
    suite_summary: str = ""


def prepare_baselines(workdir: Path, python: str | None) -> Path:
    """A virtual environment with the baselines' requirements; returns its interpreter."""
    venv = workdir / "baselines-venv"
    uv = uv_binary()
    env = child_env()
    argv = [uv, "venv", "--quiet", "--clear", str(venv)]
    if python:
        argv += ["--python", python]
    check_run(argv, REPO, env)
    interpreter = venv / "bin" / "python"
    requirements = BENCH / "baselines" / "requirements.txt"
    check_run(
        [uv, "pip", "install", "--quiet", "--python", str(interpreter), "-r", str(requirements)],
        REPO,
        env,
    )
    return interpreter


def dbtool(admin_python: Path, *args: str) -> None:
    """`python -m bench.dbtool ARGS` with the baselines' interpreter (it has asyncpg)."""
    check_run([str(admin_python), "-m", "bench.dbtool", *args], REPO, child_env())


def prepare_baseline_database(admin_python: Path, server: PostgresServer, token: str) -> str:
    """The baselines' database: schema, items and a session for `token`; returns its URL."""
    dbtool(admin_python, "createdb", server.url(), BASELINE_DATABASE)
    url = server.url("postgresql", BASELINE_DATABASE)
    dbtool(admin_python, "baseline", url, str(ITEMS), token)
    return url


def prepare_sqlite_baseline_database(admin_python: Path, workdir: Path, token: str) -> Path:
    """The SQLite baseline's file: schema, items and a session for `token`; returns its path."""
    path = workdir / SQLITE_BASELINE_FILE
    dbtool(admin_python, "sqlite", str(path), str(ITEMS), token)
    return path


def pinned(argv: list[str], cpus: str | None) -> list[str]:
    """`argv` under `taskset -c CPUS` (every thread and child on those cores), or as it is."""
    return ["taskset", "-c", cpus, *argv] if cpus else argv


def prepare_variant(
    variant: Variant,
    endpoints: list[str],
    workdir: Path,
    server: PostgresServer,
    admin_python: Path,
    *,
    python: str | None,
    suite: bool,
) -> Prepared:
    """Render (timed), `uv sync` (timed), create and migrate the database, seed ITEMS items
    through the project's models; with `suite`, run the generated test suite (timed)."""
    project = workdir / variant_key(variant)
    shutil.rmtree(project, ignore_errors=True)
    start = time.perf_counter()
    render(project, variant.answers, skip_tasks=True)
    render_s = time.perf_counter() - start

    env = child_env({"UV_PYTHON": python} if python else None)
    install_s = check_run([uv_binary(), "sync", "--quiet", "--compile-bytecode"], project, env)

    if variant.is_postgres:
        name = f"bench_{variant_key(variant).replace('-', '_')}"
        dbtool(admin_python, "createdb", server.url(), name)
        database_url = server.url(variant.url_scheme, name)
        test_url = server.url(variant.url_scheme)
    else:
        database_url = f"{variant.url_scheme}:///{project / 'bench.db'}"
        test_url = ""
    secret_env = secret_keys_env() if variant.user_sessions == "cookie" else {}
    prepared = Prepared(variant, endpoints, project, database_url, secret_env, render_s, install_s)

    run_env = child_env({"DATABASE_URL": database_url, "ENVIRONMENT": "production", **secret_env})
    bindir = project / ".venv" / "bin"
    check_run([str(bindir / CLI), "db", "upgrade"], project, run_env)
    check_run(
        [str(bindir / "python"), str(BENCH / "seed.py"), PACKAGE, str(ITEMS)], project, run_env
    )

    if suite:
        suite_env = child_env({"TEST_DATABASE_URL": test_url} if test_url else None)
        start = time.perf_counter()
        proc = subprocess.run(
            [uv_binary(), "run", "pytest", "-q", "-p", "no:cacheprovider"],
            cwd=project,
            env=suite_env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        prepared.suite_s = time.perf_counter() - start
        prepared.suite_ok = proc.returncode == 0
        lines = proc.stdout.strip().splitlines()
        prepared.suite_summary = lines[-1] if lines else proc.stderr.strip()[-200:]
        if not prepared.suite_ok:
            log(f"{variant.label}: generated suite FAILED:\n{proc.stdout[-3000:]}")
    return prepared


def secret_keys_env() -> dict[str, str]:
    return {"SESSION_SECRET_KEYS": json.dumps([secrets.token_urlsafe(32) for _ in range(2)])}


def variant_key(variant: Variant) -> str:
    """The variant's id, telemetry included: its directory, database and log names."""
    return variant.id + ("-otel" if variant.telemetry != "none" else "")


def variant_server(
    prepared: Prepared,
    workdir: Path,
    server_env: Mapping[str, str],
    *,
    workers: int = 1,
    cpus: str | None = None,
) -> Server:
    """`<slug> serve` of a prepared variant (start it with `.start("/health/ready")`)."""
    variant = prepared.variant
    # Telemetry is measured as recorded, not as exported: no collector runs beside the benchmark.
    no_export = {f"OTEL_{signal}_EXPORTER": "none" for signal in ("TRACES", "METRICS", "LOGS")}
    env = child_env(
        {
            "DATABASE_URL": prepared.database_url,
            "ENVIRONMENT": "production",
            **prepared.secret_env,
            **(no_export if variant.telemetry != "none" else {}),
            **server_env,
        }
    )
    argv = [str(prepared.project / ".venv" / "bin" / CLI), "serve"]
    if workers > 1:
        argv += ["--workers", str(workers)]
    log = workdir / f"{variant_key(variant)}.log"
    return Server(variant.label, pinned(argv, cpus), prepared.project, env, log)


REPLICA_READS = " +replica"
"""Appended to a variant's label: the same variant, its reads on a streaming replica."""
REPLICA_ENDPOINTS = ("get", "list")


def replica_server(
    prepared: Prepared, workdir: Path, server_env: Mapping[str, str], replica: PostgresServer
) -> Server:
    """The variant with DATABASE_REPLICA_URLS naming its database on `replica`."""
    database = prepared.database_url.rsplit("/", 1)[1]
    settings = {
        "DATABASE_REPLICA_URLS": json.dumps([replica.url(prepared.variant.url_scheme, database)]),
        "DATABASE_REPLICA_SECRET_KEYS": json.dumps([secrets.token_urlsafe(32)]),
        **server_env,
    }
    env = variant_server(prepared, workdir, settings).env
    argv = [str(prepared.project / ".venv" / "bin" / CLI), "serve"]
    log_path = workdir / f"{variant_key(prepared.variant)}-replica.log"
    return Server(prepared.variant.label + REPLICA_READS, argv, prepared.project, env, log_path)


def baseline_server(
    name: str,
    module: str,
    admin_python: Path,
    log_path: Path,
    env: Mapping[str, str],
    *,
    workers: int = 1,
    cpus: str | None = None,
) -> Server:
    """`python -m uvicorn MODULE` with the baselines' interpreter (ready once /items/1 answers)."""
    argv = [str(admin_python), "-m", "uvicorn", module]
    if workers > 1:
        argv += ["--workers", str(workers)]
    return Server(name, pinned(argv, cpus), REPO, child_env(env), log_path)


def log_in(server: Server) -> str:
    """Register a user and log in; return the Cookie header value."""
    registration = {"email": "bench@example.com", "password": PASSWORD, "display_name": "Bench"}
    status, _, body = http_request(server.port, "POST", "/auth/register", registration)
    if status not in (201, 409):
        raise RuntimeError(f"{server.name}: register answered {status}: {body[:300]!r}")
    credentials = {"email": registration["email"], "password": PASSWORD}
    status, headers, body = http_request(server.port, "POST", "/auth/login", credentials)
    if status != 200:
        raise RuntimeError(f"{server.name}: login answered {status}: {body[:300]!r}")
    cookie = headers.get("set-cookie", "").split(";", 1)[0]
    status, _, body = http_request(server.port, "GET", "/auth/me", headers={"Cookie": cookie})
    if status != 200:
        raise RuntimeError(f"{server.name}: /auth/me answered {status}: {body[:300]!r}")
    return cookie
