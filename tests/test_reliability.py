"""Self-tests of the reliability suite's plan (the suite itself runs with `python -m reliability`,
see reliability/README.md): its variants follow copier.yml and cover every choice."""

from __future__ import annotations

import pytest

from reliability.checks import registry
from reliability.cli import QUICK_VARIANTS, full_variants, main
from toolkit.answers import Variant, choices


@pytest.mark.parametrize("plan", ["quick", "full"])
def test_every_driver_strategy_and_user_session_style_is_covered(plan: str) -> None:
    variants = QUICK_VARIANTS if plan == "quick" else full_variants()
    assert {v.driver for v in variants} == set(choices("database_driver"))
    assert {v.strategy for v in variants} == set(choices("session_strategy"))
    assert {v.user_sessions for v in variants} >= {"database", "cookie"}


def test_full_plan_has_every_driver_and_strategy_with_database_sessions() -> None:
    pairs = {(v.driver, v.strategy) for v in full_variants() if v.user_sessions == "database"}
    assert pairs == {
        (d, s) for d in choices("database_driver") for s in choices("session_strategy")
    }


def test_each_check_runs_somewhere_in_the_quick_plan() -> None:
    for check in registry().values():
        assert any(check.applies(v) for v in QUICK_VARIANTS), check.name


def test_the_registry_finds_every_check_module_in_order() -> None:
    checks = registry()
    assert list(checks) == [
        "pool",
        "outage",
        "load",
        "sqlite-writers",
        "oversell",
        "pgbouncer",
        "scale-out",
        "bad-input",
        "login-throttle",
        "transfers",
        "replicas",
    ]
    assert [c.order for c in checks.values()] == sorted(c.order for c in checks.values())


def test_variant_ids_parse_back() -> None:
    for variant in [*full_variants(), Variant("psycopg", "explicit", "none", False)]:
        assert Variant.parse(variant.id) == variant


def test_list_prints_the_plan_and_runs_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quick", "--list"]) == 0
    out = capsys.readouterr().out
    for variant in QUICK_VARIANTS:
        assert variant.id in out
