"""The command line of `python -m bench`: its options, and which variants and endpoints they
select. The drivers, strategies and user-session styles are copier.yml's choices."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.load import ENDPOINTS
from toolkit.answers import Variant, choices

DRIVERS = choices("database_driver")
STRATEGIES = choices("session_strategy")
USER_SESSIONS = choices("user_sessions")
TELEMETRY = choices("telemetry")


@dataclass
class Options:
    variants: list[Variant]
    endpoints: list[str]
    cookie_endpoints: list[str]
    connections: int
    high_connections: int
    high_endpoints: list[str]
    duration: float
    warmup: float
    timeout: float
    threads: int
    baseline_every: int
    suite: bool
    matrix: bool
    orm_baseline: bool
    sqlite_floor: bool
    workers: int
    server_cpus: str | None
    wrk_cpus: str | None
    database_url: str | None
    workdir: Path | None
    keep: bool
    python: str | None
    server_env: dict[str, str]
    output: Path | None
    replica: bool = False


def parse_list(value: str, allowed: Sequence[str], what: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if items == ["all"]:
        return list(allowed)
    for item in items:
        if item not in allowed:
            raise argparse.ArgumentTypeError(f"unknown {what} {item!r}; choose from {allowed}")
    return items


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=(
            "Render generated services, seed them, serve each with one uvicorn worker and load "
            "them with wrk, interleaved with the baselines (Starlette + asyncpg, FastAPI + "
            "asyncpg, and FastAPI + aiosqlite for aiosqlite variants); print requests/s, "
            "p50/p99, errors, memory and ratios."
        ),
    )
    parser.add_argument("--drivers", default="all", help="comma list of: " + ",".join(DRIVERS))
    parser.add_argument(
        "--strategies", default="all", help="comma list of: " + ",".join(STRATEGIES)
    )
    parser.add_argument(
        "--user-sessions",
        default="database,cookie",
        help="comma list of: " + ",".join(USER_SESSIONS) + " (default database,cookie)",
    )
    parser.add_argument(
        "--telemetry",
        default="none",
        help="comma list of: " + ",".join(TELEMETRY) + " (default none); opentelemetry variants "
        "record spans and metrics but export nothing (OTEL_*_EXPORTER=none)",
    )
    parser.add_argument(
        "--endpoints",
        default="get,list,post,me",
        help="endpoints measured on variants: get,list,post,me (me needs user sessions)",
    )
    parser.add_argument(
        "--cookie-endpoints",
        default="me",
        help="endpoints measured on user_sessions=cookie variants (default me)",
    )
    parser.add_argument("-c", "--connections", type=int, default=32)
    parser.add_argument(
        "--high-connections",
        type=int,
        default=128,
        help="second, higher concurrency for --high-endpoints (0: none)",
    )
    parser.add_argument("--high-endpoints", default="get,post")
    parser.add_argument("-d", "--duration", type=float, default=10, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=2, help="seconds before each run")
    parser.add_argument("-t", "--threads", type=int, default=1, help="wrk threads")
    parser.add_argument(
        "--timeout",
        type=float,
        default=2,
        help="seconds after which wrk counts a request as an error (wrk's default: 2)",
    )
    parser.add_argument(
        "--baseline-every", type=int, default=3, help="re-run the baselines every N variants"
    )
    parser.add_argument("--no-suite", action="store_true", help="skip the generated suites")
    parser.add_argument(
        "--orm-baseline",
        action="store_true",
        help="also measure the straightforward FastAPI + SQLAlchemy ORM app (bench/baselines)",
    )
    parser.add_argument(
        "--sqlite-floor",
        action="store_true",
        help="also measure the SQLAlchemy + aiosqlite floor app (bench/baselines)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="uvicorn worker processes of every service, baselines included (default 1)",
    )
    parser.add_argument(
        "--server-cpus",
        help="pin every service to these cores (taskset -c, e.g. 0); default: unpinned",
    )
    parser.add_argument(
        "--wrk-cpus", help="pin wrk to these cores (taskset -c, e.g. 1); default: unpinned"
    )
    parser.add_argument(
        "--matrix",
        action="store_true",
        help="afterwards, time the template's full variant run (pytest -m variant -n 2)",
    )
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server (postgresql://user@host:port/postgres) on which databases may "
        "be created; default: a throwaway cluster from the binaries on the machine",
    )
    parser.add_argument("--workdir", type=Path, help="default: a temporary directory")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--python", help="interpreter for the projects (default: uv's choice)")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for every server, baselines included (e.g. DATABASE_POOL_SIZE=20)",
    )
    parser.add_argument("--output", type=Path, help="also write the report to this file")
    parser.add_argument(
        "--replica",
        action="store_true",
        help="also serve each PostgreSQL variant with its reads on a streaming replica of the "
        "cluster (DATABASE_REPLICA_URLS; the replica started from the PostgreSQL binaries) and "
        "measure its GET endpoints beside the same variant reading on the primary",
    )
    args = parser.parse_args(argv)

    variants: list[Variant] = []
    user_sessions = parse_list(args.user_sessions, USER_SESSIONS, "user_sessions")
    telemetry = parse_list(args.telemetry, TELEMETRY, "telemetry")
    for us in user_sessions:
        for driver in parse_list(args.drivers, DRIVERS, "driver"):
            for strategy in parse_list(args.strategies, STRATEGIES, "strategy"):
                for t in telemetry:  # examples, no CI, no Docker
                    variants.append(Variant(driver, strategy, us, telemetry=t))
    server_env = {}
    for item in args.server_env:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--server-env {item!r}: expected NAME=VALUE")
        server_env[name] = value
    return Options(
        variants=variants,
        endpoints=parse_list(args.endpoints, list(ENDPOINTS), "endpoint"),
        cookie_endpoints=parse_list(args.cookie_endpoints, list(ENDPOINTS), "endpoint"),
        connections=args.connections,
        high_connections=args.high_connections,
        high_endpoints=parse_list(args.high_endpoints, list(ENDPOINTS), "endpoint")
        if args.high_connections
        else [],
        duration=args.duration,
        warmup=args.warmup,
        timeout=args.timeout,
        threads=args.threads,
        baseline_every=max(1, args.baseline_every),
        suite=not args.no_suite,
        matrix=args.matrix,
        orm_baseline=args.orm_baseline,
        sqlite_floor=args.sqlite_floor,
        workers=max(1, args.workers),
        server_cpus=args.server_cpus,
        wrk_cpus=args.wrk_cpus,
        database_url=args.database_url,
        workdir=args.workdir,
        keep=args.keep,
        python=args.python,
        server_env=server_env,
        output=args.output,
        replica=args.replica,
    )


def endpoints_for(variant: Variant, options: Options) -> list[str]:
    wanted = options.cookie_endpoints if variant.user_sessions == "cookie" else options.endpoints
    return [e for e in wanted if not (ENDPOINTS[e].needs_user and variant.user_sessions == "none")]
