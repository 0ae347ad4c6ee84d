"""`uv run python -m bench.instructions`: CPU instructions per request, counted by callgrind.

Requests/s on a shared machine move with everything else running on it; the number of
instructions a server executes per request does not (to a few per cent). Each service runs under
`valgrind --tool=callgrind` with instrumentation off until it is warm; then the counters are
zeroed, wrk sends requests for --duration seconds, the counters are dumped, and the total is
divided by the requests the server logged in between. Only user-space instructions of the server
process count: the kernel's work and PostgreSQL's are not in the figure.

Targets: the chosen variants, and the references that split a variant's cost into its layers —
FastAPI + asyncpg (`fastapi_asyncpg`), plus one yield dependency (`fastapi_dependency`, GET
only), plus an SQLAlchemy AsyncSession with the least ORM work for the route
(`fastapi_sqlalchemy_floor`: `session.get`; for POST a transaction and one flushed INSERT) —
and the straightforward ORM app (`fastapi_sqlalchemy`), for GET /items/{id} and POST /items;
on SQLite, FastAPI + raw aiosqlite (`fastapi_aiosqlite`) and the SQLAlchemy + aiosqlite floor
(`fastapi_sqlalchemy_sqlite_floor`). aiosqlite runs every call in a thread of its own: callgrind
counts the instructions of every thread, and runs one thread at a time.
"""

from __future__ import annotations

import argparse
import glob
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.load import ENDPOINTS, run_wrk
from bench.options import endpoints_for, parse_args
from bench.services import (
    Server,
    baseline_server,
    log,
    log_in,
    prepare_baseline_database,
    prepare_baselines,
    prepare_sqlite_baseline_database,
    prepare_variant,
    variant_server,
)
from toolkit.postgres import postgres


@dataclass(frozen=True)
class Reference:
    module: str
    endpoints: tuple[str, ...]
    driver: str = "asyncpg"
    """BENCH_SQLALCHEMY_DRIVER of the SQLAlchemy references; "aiosqlite": a SQLite reference."""


REFERENCES = {
    "fastapi+asyncpg": Reference("bench.baselines.fastapi_asyncpg:app", ("get", "post")),
    "+ yield dependency": Reference("bench.baselines.fastapi_dependency:app", ("get",)),
    "+ SQLAlchemy floor": Reference(
        "bench.baselines.fastapi_sqlalchemy_floor:app", ("get", "post")
    ),
    "+ SQLAlchemy floor (psycopg)": Reference(
        "bench.baselines.fastapi_sqlalchemy_floor:app", ("get", "post"), driver="psycopg"
    ),
    "straightforward FastAPI + SQLAlchemy": Reference(
        "bench.baselines.fastapi_sqlalchemy:app", ("get", "post")
    ),
    "fastapi+aiosqlite": Reference(
        "bench.baselines.fastapi_aiosqlite:app", ("get", "post"), driver="aiosqlite"
    ),
    "+ SQLAlchemy floor (aiosqlite)": Reference(
        "bench.baselines.fastapi_sqlalchemy_sqlite_floor:app", ("get", "post"), driver="aiosqlite"
    ),
}


def callgrind(server: Server, *arguments: str) -> None:
    subprocess.run(
        ["callgrind_control", *arguments, str(server.pid)], capture_output=True, check=False
    )


def logged_requests(server: Server) -> int:
    """Access lines in the log: uvicorn's (the baselines) or the generated service's JSON ones."""
    text = server.log_path.read_text(errors="replace")
    return text.count(' HTTP/1.1" ') + text.count('"duration_ms": ')


def measure(
    server: Server, endpoint: str, connections: int, duration: float, workdir: Path, out: Path
) -> tuple[float, int]:
    """(instructions per request, requests)."""
    spec = ENDPOINTS[endpoint]
    run_wrk(server, spec, connections, 8, 1, workdir, 30)  # warm-up, uninstrumented
    time.sleep(1)
    callgrind(server, "--instr=on")
    callgrind(server, "--zero")
    before = logged_requests(server)
    run_wrk(server, spec, connections, duration, 1, workdir, 30)
    time.sleep(2)  # requests still in flight finish inside the window
    callgrind(server, "--dump")
    callgrind(server, "--instr=off")
    requests = logged_requests(server) - before
    dumps = sorted(glob.glob(f"{out}.*"), key=os.path.getmtime)
    total = 0
    if dumps:
        for line in Path(dumps[-1]).read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                total = int(line.split()[1])
                break
    for dump in dumps:
        Path(dump).unlink()
    return (total / requests if requests else 0.0), requests


def under_callgrind(server: Server, out: Path) -> Server:
    server.argv = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        "--instr-atstart=no",
        *server.argv,
    ]
    return server


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument("--drivers", default="asyncpg")
    parser.add_argument("--strategies", default="all")
    parser.add_argument("--user-sessions", default="database")
    parser.add_argument("--telemetry", default="none", help="none,opentelemetry")
    parser.add_argument("--endpoints", default="get", help="get,list,post,me")
    parser.add_argument("-c", "--connections", type=int, default=8)
    parser.add_argument("-d", "--duration", type=float, default=30)
    parser.add_argument("--no-references", action="store_true")
    parser.add_argument(
        "--references",
        default="all",
        choices=["all", "postgresql", "sqlite"],
        help="which references to count (default all)",
    )
    parser.add_argument("--database-url")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args(argv)
    for tool in ("valgrind", "callgrind_control", "wrk"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (Debian: apt-get install valgrind wrk)")
    options = parse_args(
        [
            "--drivers",
            args.drivers,
            "--strategies",
            args.strategies,
            "--user-sessions",
            args.user_sessions,
            "--telemetry",
            args.telemetry,
            "--endpoints",
            args.endpoints,
            "--cookie-endpoints",
            args.endpoints,
            "--no-suite",
            *(["--database-url", args.database_url] if args.database_url else []),
        ]
    )
    endpoints = options.endpoints
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cfs-instructions-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results: list[tuple[str, str, float, int]] = []
    servers: list[Server] = []
    try:
        with postgres(options.database_url) as pg:
            python = prepare_baselines(workdir, None)
            token = secrets.token_urlsafe(32)
            base_url = prepare_baseline_database(python, pg.server, token)
            sqlite_path = prepare_sqlite_baseline_database(python, workdir, token)
            targets: list[tuple[str, Server, list[str]]] = []
            if not args.no_references:
                for label, reference in REFERENCES.items():
                    on_sqlite = reference.driver == "aiosqlite"
                    if args.references != "all" and on_sqlite != (args.references == "sqlite"):
                        continue
                    env = {
                        "BENCH_DATABASE_URL": base_url,
                        "BENCH_SQLITE_PATH": str(sqlite_path),
                        "BENCH_SQLALCHEMY_DRIVER": reference.driver,
                        "DATABASE_POOL_SIZE": "20",
                        "DATABASE_MAX_OVERFLOW": "0",
                    }
                    log_path = workdir / f"ref-{len(targets)}.log"
                    server = baseline_server(label, reference.module, python, log_path, env)
                    targets.append((label, server, list(reference.endpoints)))
            for variant in options.variants:
                endpoints_here = endpoints_for(variant, options)
                prepared = prepare_variant(
                    variant,
                    endpoints_here,
                    workdir,
                    pg.server,
                    python,
                    python=None,
                    suite=False,
                )
                targets.append(
                    (variant.label, variant_server(prepared, workdir, {}), endpoints_here)
                )
            for n, (label, server, wanted) in enumerate(targets):
                out = workdir / f"callgrind.{n}.out"
                under_callgrind(server, out)
                servers.append(server)
                log(f"{label}: starting under callgrind (slow)")
                server.start("/items/1" if label in REFERENCES else "/health/live", timeout=900)
                if "me" in wanted:
                    server.cookie = log_in(server)
                for endpoint in wanted:
                    if endpoint not in endpoints:
                        continue
                    per_request, requests = measure(
                        server, endpoint, args.connections, args.duration, workdir, out
                    )
                    log(f"{label} {endpoint}: {per_request / 1e6:.2f} M instructions/request")
                    results.append((label, endpoint, per_request, requests))
                server.stop()
    finally:
        for server in servers:
            server.stop()
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print("| service | endpoint | instructions per request | requests counted |")
    print("|---|---|--:|--:|")
    for label, endpoint, per_request, requests in results:
        print(f"| {label} | {ENDPOINTS[endpoint].label} | {per_request / 1e6:.2f} M | {requests} |")


if __name__ == "__main__":
    main()
