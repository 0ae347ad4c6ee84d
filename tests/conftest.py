"""Fixtures and reporting for the template's own tests."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from pytest_copie.plugin import Copie

from toolkit.answers import answers_id
from toolkit.postgres import PostgresServer, PostgresUnavailable, environment_url, postgres

_VARIANT_TIMINGS: list[tuple[str, str, str]] = []  # (test id, outcome, timings)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server on which databases may be created: TEST_POSTGRES_URL, else a throwaway
    cluster started from the local binaries (one per xdist worker), else a failure that names
    both ways. Never a skip."""
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(postgres(environment_url())).server
        except PostgresUnavailable as exc:
            pytest.fail(str(exc), pytrace=False)
        yield server


@pytest.fixture(scope="session")
def rendered(copie_session: Copie) -> Callable[[Mapping[str, Any]], Path]:
    """One render per variant per session (per xdist worker), copy tasks included (git init, .env,
    uv lock), shared by the tests that only read it: a test that changes the tree copies it."""
    cache: dict[tuple[tuple[str, Any], ...], Path] = {}

    def get(answers: Mapping[str, Any]) -> Path:
        key = tuple(sorted(answers.items()))
        if key not in cache:
            result = copie_session.copy(extra_answers=dict(answers))
            if result.exit_code != 0:
                pytest.fail(
                    f"render of {answers_id(answers)} failed: {result.exception!r}", pytrace=False
                )
            cache[key] = result.project_dir
        return cache[key]

    return get


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests on shared renders run variant by variant (in the places they held): xdist hands
    out consecutive tests, so one worker mostly gets all the tests of a variant and renders it
    once, instead of both workers rendering every variant."""
    positions = [
        i for i, item in enumerate(items) if "rendered" in getattr(item, "fixturenames", ())
    ]

    def variant(item: pytest.Item) -> str:
        callspec = getattr(item, "callspec", None)
        answers = callspec.params.get("answers") if callspec else None
        return answers_id(answers) if isinstance(answers, Mapping) else ""

    ordered = sorted((items[i] for i in positions), key=variant)
    for position, item in zip(positions, ordered, strict=True):
        items[position] = item


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_START] = time.monotonic()


_START = pytest.StashKey[float]()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call":
        return
    for name, value in report.user_properties:
        if name == "variant_timings":
            _VARIANT_TIMINGS.append(
                (report.nodeid.split("[", 1)[-1].rstrip("]"), report.outcome, str(value))
            )


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if _VARIANT_TIMINGS:
        terminalreporter.section("generated project checks (per variant)")
        width = max(len(v[0]) for v in _VARIANT_TIMINGS)
        for variant, outcome, timings in sorted(_VARIANT_TIMINGS):
            terminalreporter.write_line(f"{variant:<{width}}  {outcome:<7}  {timings}")
    elapsed = time.monotonic() - config.stash[_START]
    minutes, seconds = divmod(round(elapsed), 60)
    started_at = os.environ.get("TEMPLATE_TESTS_STARTED_AT", "")
    if started_at.isdigit():
        total = round(time.time()) - int(started_at)
        terminalreporter.write_line(
            f"total since .ci/run started (install included): {total // 60}m{total % 60:02d}s"
        )
    terminalreporter.write_line(
        f"template test suite wall time: {minutes}m{seconds:02d}s ({elapsed:.1f}s)"
    )
