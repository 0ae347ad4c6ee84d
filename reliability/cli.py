"""Command line of the reliability suite (see reliability/__init__.py)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from reliability.checks import Check, registry
from reliability.project import Project, unprivileged_python
from reliability.report import FAIL, Row, format_rows, matrix, summary
from reliability.target import SQLITE_OS_USER, Sizes, Target
from toolkit.answers import Variant, choices
from toolkit.postgres import Postgres, PostgresUnavailable, environment_url, postgres

DRIVERS = choices("database_driver")
STRATEGIES = choices("session_strategy")
USER_SESSIONS = choices("user_sessions")

QUICK_VARIANTS = [
    Variant("aiosqlite", "middleware", "database"),
    Variant("asyncpg", "transaction", "database"),
    Variant("psycopg", "explicit", "cookie"),
]


def full_variants() -> list[Variant]:
    """Every driver × strategy with the first user-session style (server-side sessions); each
    driver once more with every other style (signed cookies, no users), strategies rotating."""
    first, *others = USER_SESSIONS
    variants = [Variant(d, s, first) for d in DRIVERS for s in STRATEGIES]
    for i, driver in enumerate(DRIVERS):
        for k, user_sessions in enumerate(others, start=1):
            variants.append(Variant(driver, STRATEGIES[(i + k) % len(STRATEGIES)], user_sessions))
    return variants


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m reliability",
        description="Render variants of the template, serve them with uvicorn against real "
        "databases, drive them over loopback HTTP, and print what held.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="CI size: 3 variants (every driver, strategy and user-session style once), "
        "smaller loads",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="DRIVER-STRATEGY-USERS",
        help="run this variant (repeatable), e.g. asyncpg-middleware-database",
    )
    parser.add_argument("--driver", action="append", choices=DRIVERS, help="only these drivers")
    parser.add_argument(
        "--strategy", action="append", choices=STRATEGIES, help="only these strategies"
    )
    parser.add_argument(
        "--user-sessions", action="append", choices=USER_SESSIONS, help="only these styles"
    )
    parser.add_argument(
        "--check",
        action="append",
        choices=list(registry()),
        help="only these checks (repeatable; default all)",
    )
    parser.add_argument(
        "--deadline",
        type=float,
        default=None,
        metavar="MINUTES",
        help="stop starting checks after this long (default 10 quick, 60 full)",
    )
    parser.add_argument(
        "--check-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="time limit of one check (default 180 quick, 420 full)",
    )
    parser.add_argument("--workdir", type=Path, help="where to render (default: a temp dir)")
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory (logs) even on success"
    )
    parser.add_argument("--list", action="store_true", help="print the plan and exit")
    return parser.parse_args(argv)


def select_variants(args: argparse.Namespace) -> list[Variant]:
    if args.variant:
        variants = [Variant.parse(v) for v in args.variant]
    else:
        variants = list(QUICK_VARIANTS if args.quick else full_variants())
    if args.driver:
        variants = [v for v in variants if v.driver in args.driver]
    if args.strategy:
        variants = [v for v in variants if v.strategy in args.strategy]
    if args.user_sessions:
        variants = [v for v in variants if v.user_sessions in args.user_sessions]
    for variant in variants:
        if not variant.is_known():
            raise SystemExit(f"unknown variant {variant.id}")
    return variants


class Stop(Exception):
    """SIGTERM: unwind so that servers, PgBouncer and the cluster are stopped."""


def _on_sigterm(_signum: int, _frame: object) -> None:
    raise Stop


async def run_target(
    target: Target, checks: list[Check], rows: list[Row], deadline: float, check_timeout: float
) -> None:
    variant = target.variant.id
    for check in checks:
        if not check.applies(target.variant):
            continue
        if time.monotonic() > deadline:
            rows.append(
                Row(variant, check.label, "not run", failed=["the suite's deadline passed"])
            )
            continue
        started = time.monotonic()
        print(f"  … {variant}: {check.name}", flush=True)
        try:
            new_rows = await asyncio.wait_for(check.run(target), check_timeout)
        except TimeoutError:
            new_rows = [
                Row(variant, check.label, "", failed=[f"timed out after {check_timeout:.0f}s"])
            ]
        except Exception as exc:
            detail = "".join(traceback.format_exception_only(exc)).strip()
            print(traceback.format_exc(), file=sys.stderr)
            new_rows = [Row(variant, check.label, "", failed=[f"crashed: {detail[:600]}"])]
        took = time.monotonic() - started
        for row in new_rows:
            row.seconds = row.seconds or took
            print(f"    {row.result} {row.check} ({took:.0f}s)", flush=True)
            for failure in row.failed:
                print(f"      ✗ {failure}", flush=True)
        rows.extend(new_rows)


def prepare(variants: list[Variant], workdir: Path) -> dict[Variant, Project | str]:
    """Render and install every variant (two at a time); a failure is kept as its message."""

    def one(variant: Variant) -> Project | str:
        project = Project(variant, workdir / variant.id / "project")
        started = time.monotonic()
        python = None
        if not variant.is_postgres and os.geteuid() == 0:
            python = unprivileged_python(SQLITE_OS_USER)
            project.run_as = SQLITE_OS_USER if python else None
        try:
            project.prepare(python)
        except Exception as exc:
            return f"render/install failed: {exc}"
        print(f"  prepared {variant.id} in {time.monotonic() - started:.0f}s", flush=True)
        return project

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(variants, pool.map(one, variants), strict=True))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    variants = select_variants(args)
    checks = [registry()[name] for name in args.check or registry()]
    sizes = Sizes.quick() if args.quick else Sizes.full()
    deadline_minutes = args.deadline or (10 if args.quick else 60)
    check_timeout = args.check_timeout or (180 if args.quick else 420)
    if args.list or not variants:
        print(f"mode: {'quick' if args.quick else 'full'}; sizes: {sizes}")
        for variant in variants:
            print(f"  {variant.id}: {', '.join(c.name for c in checks if c.applies(variant))}")
        return 0 if variants else 2

    started = time.monotonic()
    deadline = started + deadline_minutes * 60
    signal.signal(signal.SIGTERM, _on_sigterm)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="reliability-"))
    workdir.mkdir(parents=True, exist_ok=True)
    os.chmod(workdir, 0o755)
    print(
        f"reliability suite ({'quick' if args.quick else 'full'}): {len(variants)} variants, "
        f"checks {', '.join(c.name for c in checks)}; work directory {workdir}",
        flush=True,
    )
    rows: list[Row] = []
    try:
        with contextlib.ExitStack() as stack:
            pg: Postgres | None = None
            if any(v.is_postgres for v in variants):
                try:
                    pg = stack.enter_context(postgres(environment_url()))
                except PostgresUnavailable as exc:
                    print(f"PostgreSQL unavailable:\n{exc}", file=sys.stderr)
                    return 2
                print(f"PostgreSQL: {pg.server}", flush=True)
            projects = prepare(variants, workdir)
            for variant in variants:
                project = projects[variant]
                if isinstance(project, str):
                    rows.append(Row(variant.id, "render/install", "", failed=[project[-1500:]]))
                    continue
                target = Target(project, pg, workdir / variant.id, sizes)
                print(f"{variant.id}:", flush=True)
                try:
                    target.migrate_template()
                except Exception as exc:
                    rows.append(Row(variant.id, "migrate", "", failed=[str(exc)[-1500:]]))
                    continue
                try:
                    asyncio.run(run_target(target, checks, rows, deadline, check_timeout))
                finally:
                    target.cleanup()
    except (KeyboardInterrupt, Stop):
        print("interrupted; servers and databases were stopped", file=sys.stderr)
        rows.append(Row("-", "interrupted", "", failed=["the run was interrupted"]))
    elapsed = time.monotonic() - started
    print()
    print(format_rows(rows))
    print(matrix(rows))
    print()
    failed = any(row.result == FAIL for row in rows)
    print(
        f"reliability suite: {summary(rows)} in {elapsed // 60:.0f}m{elapsed % 60:02.0f}s "
        f"({'quick' if args.quick else 'full'} mode)"
    )
    if failed or args.keep:
        print(f"work directory (server logs under */logs): {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed or not rows else 0
