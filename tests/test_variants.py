"""Every variant is rendered, installed with uv and passes its own full check suite:
`uv sync`, `uv run pytest`, `uv run mypy --strict src tests scripts`,
`uv run ruff check`, `uv run ruff format --check`. PostgreSQL variants run against a real server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from toolkit.answers import Variant, suite_variants
from toolkit.environment import project_env
from toolkit.postgres import PostgresServer
from toolkit.processes import run
from toolkit.render import render

# (label, command, timeout in seconds) — the generated project's contract, in order.
CHECKS: list[tuple[str, list[str], float]] = [
    ("pytest", ["uv", "run", "pytest", "-q", "-p", "no:cacheprovider"], 1200),
    ("mypy", ["uv", "run", "mypy", "--strict", "src", "tests", "scripts"], 900),
    ("ruff check", ["uv", "run", "ruff", "check"], 180),
    ("ruff format", ["uv", "run", "ruff", "format", "--check"], 180),
]
SYNC = ["uv", "sync"]
SYNC_TIMEOUT = 900

VARIANTS = suite_variants()


@pytest.fixture(scope="session")
def mypy_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """One mypy cache per xdist worker, shared by the variants it checks in turn: the third-party
    modules (SQLAlchemy, FastAPI, pydantic, ...) are then analysed once instead of once per
    variant (mypy revalidates every cached module by content hash, so a module that differs
    between variants is checked again). TEMPLATE_TEST_SHARED_MYPY_CACHE=0 gives every variant a
    cold cache, exactly as on a fresh clone."""
    if os.environ.get("TEMPLATE_TEST_SHARED_MYPY_CACHE", "1") == "0":
        return None
    return tmp_path_factory.mktemp("mypy-cache")


def database_env(variant: Variant, request: pytest.FixtureRequest) -> dict[str, str]:
    if not variant.is_postgres:
        return {}  # SQLite: the generated project uses its own temporary file
    server: PostgresServer = request.getfixturevalue("pg_server")
    url = server.url(variant.url_scheme)
    return {"TEST_DATABASE_URL": url, "DATABASE_URL": url}


@pytest.mark.variant
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.id)
def test_variant_passes_its_checks(
    variant: Variant,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    record_property: pytest.RecordProperty,
    mypy_cache_dir: Path | None,
) -> None:
    extra = database_env(variant, request)
    if mypy_cache_dir is not None:
        extra["MYPY_CACHE_DIR"] = str(mypy_cache_dir)
    env = project_env(extra)
    project = render(tmp_path / "project", variant.answers, skip_tasks=False)
    timings: list[str] = []

    sync = run(SYNC, project, env=env, timeout=SYNC_TIMEOUT)
    timings.append(f"sync {sync.seconds:.0f}s")
    if not sync.ok:
        record_property("variant_timings", " ".join(timings))
        pytest.fail(f"[{variant.id}] uv sync failed:\n{sync.describe()}", pytrace=False)

    failures = []
    for label, command, timeout in CHECKS:
        result = run(command, project, env=env, timeout=timeout)
        timings.append(f"{label} {result.seconds:.0f}s")
        if not result.ok:
            failures.append(result.describe())
    record_property("variant_timings", ", ".join(timings))
    if failures:
        pytest.fail(
            f"[{variant.id}] {len(failures)} check(s) failed in {project}:\n\n"
            + "\n\n".join(failures),
            pytrace=False,
        )
