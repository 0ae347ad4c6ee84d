"""The benchmark: prepare the variants and the baselines, run the interleaved load, print the table.

Steps, in order:
1. a PostgreSQL server (a throwaway cluster from the binaries on the machine, or --database-url);
2. the baselines' environment (uv, resolved now, so it gets the releases the projects get);
3. for every variant: render (timed), `uv sync`, database created and migrated with the
   project's own CLI, 10 000 items seeded through its models, its generated suite (timed);
4. every server started (one uvicorn worker each unless --workers, as `<slug> serve` runs it;
   the FastAPI + aiosqlite baseline when an aiosqlite variant is measured), a user registered
   and logged in where /auth/me is measured;
5. per endpoint and concurrency, one block of wrk runs in which the baselines run before the
   first variant, after every --baseline-every variants and after the last: each variant's
   ratios use the baseline runs either side of it, so that drift in the machine's load
   (other processes on a shared machine) is compensated;
6. the table (Markdown), the performance targets checked, results.json in the work dir;
7. with --matrix, the template's own full variant run (`pytest -m variant -n 2`), timed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path

from bench.load import ENDPOINTS, OPEN_SECONDS, Run, run_block
from bench.options import Options, endpoints_for, parse_args
from bench.report import machine_description, report, versions
from bench.services import (
    BASELINE_MODULES,
    BASELINES,
    ITEMS,
    REFERENCE,
    REPLICA_ENDPOINTS,
    REPLICA_READS,
    REPO,
    SQLITE_BASELINE,
    SQLITE_FLOOR,
    Prepared,
    Server,
    baseline_server,
    log,
    log_in,
    prepare_baseline_database,
    prepare_baselines,
    prepare_sqlite_baseline_database,
    prepare_variant,
    replica_server,
    variant_server,
)
from toolkit.cluster import ThrowawayReplica, find_bindir
from toolkit.environment import uv_binary
from toolkit.postgres import ENV_URL, Postgres, PostgresServer, PostgresUnavailable, postgres


def run_matrix(server: PostgresServer) -> tuple[float, str]:
    env = os.environ | {ENV_URL: server.url()}
    argv = [
        uv_binary(),
        "run",
        "pytest",
        "-m",
        "variant",
        "-n",
        "2",
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    log("full matrix: " + " ".join(argv))
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    lines = proc.stdout.strip().splitlines()
    return seconds, lines[-1] if lines else f"exit {proc.returncode}"


@contextlib.contextmanager
def serve_on_replica(
    pg: Postgres,
    prepared: list[Prepared],
    workdir: Path,
    options: Options,
    servers: dict[str, Server],
) -> Iterator[None]:
    """A streaming replica of the cluster (no apply delay), and each PostgreSQL variant served
    once more with its reads there (`<label> +replica`); the replica stopped afterwards."""
    bindir = find_bindir()
    if bindir is None:
        raise PostgresUnavailable("--replica needs the PostgreSQL binaries (pg_basebackup)")
    replica = ThrowawayReplica(bindir, pg.server.url(), apply_delay_ms=0)
    port = replica.start()
    try:
        server = PostgresServer("127.0.0.1", port, pg.server.user, pg.server.password)
        standby = Postgres(server, replica)
        for p in prepared:
            if not p.variant.is_postgres:
                continue
            database = p.database_url.rsplit("/", 1)[1]
            deadline = time.monotonic() + 60
            while standby.scalar("SELECT to_regclass('items') IS NOT NULL", database) != "t":
                if time.monotonic() > deadline:
                    raise PostgresUnavailable(f"{database} did not reach the replica in 60 s")
                time.sleep(0.2)
            served = servers[p.variant.label + REPLICA_READS] = replica_server(
                p, workdir, options.server_env, server
            )
            served.start("/health/ready")
        yield
    finally:
        for label in [name for name in servers if name.endswith(REPLICA_READS)]:
            servers.pop(label).stop()
        replica.stop()


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_args(argv)
    if shutil.which("wrk") is None:
        sys.exit(
            "wrk is not installed (Debian/Ubuntu: apt-get install wrk; macOS: brew install wrk)"
        )
    started = time.perf_counter()
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="cfs-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    servers: dict[str, Server] = {}
    runs: list[Run] = []
    prepared: list[Prepared] = []
    needed_servers = len(options.variants) + len(BASELINES) + 1
    pool = int(options.server_env.get("DATABASE_POOL_SIZE", 10)) + int(
        options.server_env.get("DATABASE_MAX_OVERFLOW", 10)
    )
    try:
        with contextlib.ExitStack() as stack:
            pg = stack.enter_context(
                postgres(options.database_url, max_connections=max(200, needed_servers * pool + 20))
            )
            server = pg.server
            log(f"PostgreSQL: {server}; work directory {workdir}")
            admin_python = prepare_baselines(workdir, options.python)
            token = secrets.token_urlsafe(32)
            baseline_url = prepare_baseline_database(admin_python, server, token)
            sqlite_path = prepare_sqlite_baseline_database(admin_python, workdir, token)
            for variant in options.variants:
                log(f"preparing {variant.label}")
                p = prepare_variant(
                    variant,
                    endpoints_for(variant, options),
                    workdir,
                    server,
                    admin_python,
                    python=options.python,
                    suite=options.suite,
                )
                prepared.append(p)
                log(
                    f"{variant.label}: render {p.render_s:.2f}s, uv sync {p.install_s:.1f}s, "
                    f"suite {p.suite_s or 0:.1f}s ({p.suite_summary})"
                )

            on_sqlite = options.sqlite_floor or any(not v.is_postgres for v in options.variants)
            references = [
                *([REFERENCE] if options.orm_baseline else []),
                *([SQLITE_FLOOR] if options.sqlite_floor else []),
            ]
            for name in [*BASELINES, *references]:
                if name == SQLITE_BASELINE and not on_sqlite:
                    continue
                env = {
                    "BENCH_DATABASE_URL": baseline_url,
                    "BENCH_SQLITE_PATH": str(sqlite_path),
                    **options.server_env,
                }
                log_path = workdir / f"{name.replace(' ', '-')}.log"
                servers[name] = baseline_server(
                    name,
                    BASELINE_MODULES[name],
                    admin_python,
                    log_path,
                    env,
                    workers=options.workers,
                    cpus=options.server_cpus,
                )
                servers[name].start("/items/1")
                servers[name].cookie = f"session={token}"
            for p in prepared:
                served = servers[p.variant.label] = variant_server(
                    p,
                    workdir,
                    options.server_env,
                    workers=options.workers,
                    cpus=options.server_cpus,
                )
                served.start("/health/ready")
                if "me" in p.endpoints:
                    served.cookie = log_in(served)
            if options.replica:
                stack.enter_context(serve_on_replica(pg, prepared, workdir, options, servers))

            loads = [(e, options.connections) for e in ENDPOINTS]
            loads += [(e, options.high_connections) for e in options.high_endpoints]
            for endpoint_key, connections in loads:
                participants = [
                    label
                    for p in prepared
                    if endpoint_key in p.endpoints
                    for label in (p.variant.label, p.variant.label + REPLICA_READS)
                    if label in servers
                    and (label == p.variant.label or endpoint_key in REPLICA_ENDPOINTS)
                ]
                if not participants:
                    continue
                participants[:0] = [
                    r for r in references if endpoint_key in ("get", "post") or r == REFERENCE
                ]
                run_block(
                    ENDPOINTS[endpoint_key],
                    connections,
                    servers,
                    participants,
                    options,
                    workdir,
                    runs,
                )

            for s in servers.values():
                s.stop()
            header = [
                f"Benchmark of {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z} on "
                f"{machine_description()}.",
                f"PostgreSQL: {server.origin} server; {ITEMS:,} items seeded; "
                + (
                    "one uvicorn worker"
                    if options.workers == 1
                    else f"{options.workers} uvicorn workers"
                )
                + " (uvloop, httptools) per service"
                + (f", pinned to cores {options.server_cpus}" if options.server_cpus else "")
                + (f", wrk to cores {options.wrk_cpus}" if options.wrk_cpus else "")
                + f"; wrk -t{options.threads} --timeout "
                f"{options.timeout:g}s, "
                f"{options.duration:g} s runs after {options.warmup:g} s warm-up, on connections "
                f"opened {OPEN_SECONDS:g} s before; baselines re-run "
                f"every {options.baseline_every} variants, ratios against the runs either side.",
                "Baselines: "
                + versions(
                    admin_python,
                    ["fastapi", "starlette", "uvicorn", "asyncpg", "aiosqlite", "pydantic"],
                ),
            ]
            if prepared:
                header.append(
                    "Generated projects: "
                    + versions(
                        prepared[0].project / ".venv" / "bin" / "python",
                        [
                            "fastapi",
                            "sqlalchemy",
                            "asyncpg",
                            "psycopg",
                            "aiosqlite",
                            "uvicorn",
                            "pydantic",
                        ],
                    )
                )
            matrix = run_matrix(server) if options.matrix else None
            text = report(
                runs, prepared, header, matrix, time.perf_counter() - started, options.connections
            )
            print(text)
            if options.output:
                options.output.write_text(text + "\n")
            (workdir / "results.json").write_text(
                json.dumps(
                    {
                        "runs": [asdict(r) for r in runs],
                        "variants": [
                            {
                                **asdict(p),
                                "variant": p.variant.label,
                                "project": str(p.project),
                                "secret_env": sorted(p.secret_env),  # names only
                            }
                            for p in prepared
                        ],
                        "matrix_s": matrix[0] if matrix else None,
                    },
                    indent=2,
                )
            )
    except PostgresUnavailable as exc:
        sys.exit(f"{exc}\nOr pass --database-url.")
    finally:
        for s in servers.values():
            s.stop()
        if options.keep or options.workdir:
            log(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
