"""copier.yml's questions, their choices and defaults, and the variants built from them."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import yaml

TEMPLATE_ROOT = Path(__file__).resolve().parents[1]
COPIER_YML = TEMPLATE_ROOT / "copier.yml"

# The questions whose every combination gets a full install-and-test run.
MATRIX_QUESTIONS = ("database_driver", "session_strategy", "user_sessions")

# SQLAlchemy URL scheme per database_driver. A new driver choice in copier.yml must be added here
# (tests/test_harness.py checks that).
DRIVER_URL_SCHEME: dict[str, str] = {
    "aiosqlite": "sqlite+aiosqlite",
    "asyncpg": "postgresql+asyncpg",
    "psycopg": "postgresql+psycopg",
}


@cache
def copier_config() -> dict[str, Any]:
    with COPIER_YML.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    assert isinstance(data, dict), f"{COPIER_YML} is not a mapping"
    return data


def questions() -> dict[str, dict[str, Any]]:
    """The questions (settings starting with `_` left out)."""
    return {
        name: spec
        for name, spec in copier_config().items()
        if not name.startswith("_") and isinstance(spec, dict)
    }


def choices(question: str) -> list[Any]:
    """The values (not the labels) a choice question accepts, in copier.yml order."""
    spec = questions()[question]
    raw = spec.get("choices")
    assert raw, f"copier.yml question {question!r} has no choices"
    items: Iterable[Any] = raw.values() if isinstance(raw, dict) else raw
    values: list[Any] = []
    for item in items:
        # `label: {value: x, validator: ...}` (copier ≥ 9.3) or a plain value / [label, value] pair
        if isinstance(item, dict):
            values.append(item["value"])
        elif isinstance(item, list):
            values.append(item[-1])
        else:
            values.append(item)
    return values


def default(question: str) -> Any:
    return questions()[question].get("default")


def bool_questions() -> list[str]:
    return [name for name, spec in questions().items() if spec.get("type") == "bool"]


# ----------------------------------------------------------------------------- variants


@dataclass(frozen=True)
class Variant:
    """One set of answers to the questions that shape a project. `ci` and `docker` default to a
    bare project (no workflow, no Dockerfile); the test suite passes copier.yml's defaults."""

    driver: str
    strategy: str
    user_sessions: str
    with_examples: bool = True
    ci: str = "none"
    docker: bool = False
    python_version: str = "3.11"
    telemetry: str = "none"

    @property
    def id(self) -> str:
        """`driver-strategy-user_sessions`, `-no-examples` appended for a skeleton."""
        suffix = "" if self.with_examples else "-no-examples"
        return f"{self.driver}-{self.strategy}-{self.user_sessions}{suffix}"

    @property
    def long_id(self) -> str:
        """`id` with the Python version, CI and Docker answers (test ids of the full checks)."""
        extras = [
            f"py{self.python_version}",
            f"ci-{self.ci}",
            "docker" if self.docker else "",
            "otel" if self.telemetry == "opentelemetry" else "",
        ]
        return "-".join([self.id, *filter(None, extras)])

    @property
    def label(self) -> str:
        """`driver/strategy/user_sessions` (`+otel` with telemetry), as tables print it."""
        otel = "+otel" if self.telemetry != "none" else ""
        return f"{self.driver}/{self.strategy}/{self.user_sessions}{otel}"

    @property
    def url_scheme(self) -> str:
        return DRIVER_URL_SCHEME[self.driver]

    @property
    def is_postgres(self) -> bool:
        return self.url_scheme.startswith("postgresql")

    @property
    def has_users(self) -> bool:
        return self.user_sessions != "none"

    @property
    def has_orders(self) -> bool:
        return self.has_users and self.with_examples

    @property
    def answers(self) -> dict[str, Any]:
        return {
            "database_driver": self.driver,
            "session_strategy": self.strategy,
            "user_sessions": self.user_sessions,
            "with_examples": self.with_examples,
            "ci": self.ci,
            "docker": self.docker,
            "python_version": self.python_version,
            "telemetry": self.telemetry,
        }

    @classmethod
    def parse(cls, text: str) -> Variant:
        """The inverse of `id`: `driver-strategy-user_sessions[-no-examples]`."""
        parts = text.split("-")
        examples = True
        if parts[-2:] == ["no", "examples"]:
            parts, examples = parts[:-2], False
        if len(parts) != 3:
            raise ValueError(f"variant {text!r} is not driver-strategy-user_sessions")
        return cls(parts[0], parts[1], parts[2], examples)

    def is_known(self) -> bool:
        """Every answer is one of copier.yml's choices."""
        return all(
            value in choices(question)
            for question, value in zip(
                MATRIX_QUESTIONS, (self.driver, self.strategy, self.user_sessions), strict=True
            )
        )


def matrix_combinations() -> list[dict[str, Any]]:
    """Every combination of the MATRIX_QUESTIONS choices, from copier.yml."""
    axes = [choices(q) for q in MATRIX_QUESTIONS]
    return [dict(zip(MATRIX_QUESTIONS, combo, strict=True)) for combo in itertools.product(*axes)]


# The answers that the full checks vary besides MATRIX_QUESTIONS and with_examples: every pair of
# values over all questions appears in at least one fully checked variant (tests/test_harness.py).
# Listed cheapest first: when several values cover as many new pairs, the first wins.
PAIRED_QUESTIONS = ("python_version", "ci", "docker", "telemetry")


def answer_values(question: str) -> list[Any]:
    """The values a question can take: its choices, or False/True for a bool question."""
    if questions()[question].get("type") == "bool":
        return [False, True]
    return choices(question)


def varied_questions() -> list[str]:
    """Every asked question with a closed set of values (choices or bool), in copier.yml order."""
    return [
        name
        for name, spec in questions().items()
        if spec.get("when") is not False and (spec.get("choices") or spec.get("type") == "bool")
    ]


def uncovered_pairs(rows: Iterable[Mapping[str, Any]]) -> set[tuple[str, Any, str, Any]]:
    """The (question, value, question, value) pairs over varied_questions() that no row holds."""
    names = varied_questions()
    wanted = {
        (a, x, b, y)
        for a, b in itertools.combinations(names, 2)
        for x in answer_values(a)
        for y in answer_values(b)
    }
    for row in rows:
        wanted -= {(a, row.get(a), b, row.get(b)) for a, b in itertools.combinations(names, 2)}
    return wanted


def suite_variants() -> list[Variant]:
    """The variants whose generated project is installed and fully checked (test_variants.py):

    * every database_driver × session_strategy × user_sessions, with examples;
    * every database_driver × session_strategy without examples, as a bare skeleton;
      user_sessions rotates (Latin square) so that every user_sessions value meets every driver
      and every strategy without examples;
    * python_version, ci, docker and telemetry given to them greedily, in order, so that every
      pair of answer values over all questions appears at least once (with the cheapest values
      where a pair no longer needs them).
    """
    base = [
        Variant(c["database_driver"], c["session_strategy"], c["user_sessions"])
        for c in matrix_combinations()
    ]
    user_sessions = choices("user_sessions")
    for i, driver in enumerate(choices("database_driver")):
        for j, strategy in enumerate(choices("session_strategy")):
            us = user_sessions[(i + j) % len(user_sessions)]
            base.append(Variant(driver, strategy, us, with_examples=False))
    options = sorted(
        (
            dict(zip(PAIRED_QUESTIONS, values, strict=True))
            for values in itertools.product(*(answer_values(q) for q in PAIRED_QUESTIONS))
        ),
        key=lambda option: sum(_cost(q, v) for q, v in option.items()),
    )
    variants: list[Variant] = []
    missing = uncovered_pairs([])
    for variant in base:
        # The option that leaves the fewest pairs uncovered; the cheapest among equals.
        best = min(
            options, key=lambda o: len(missing & uncovered_pairs([{**variant.answers, **o}]))
        )
        chosen = replace(variant, **best)
        variants.append(chosen)
        missing &= uncovered_pairs([chosen.answers])
    return variants


def _cost(question: str, value: Any) -> int:
    """What a value adds to a full check: Docker its image emulation, another Python a cold
    cache, telemetry its packages, CI nothing (its workflow runs the same checks)."""
    if question == "docker":
        return 2 * int(bool(value))
    if question in ("python_version", "telemetry"):
        return int(value != default(question))
    return 0


def render_variants() -> list[dict[str, Any]]:
    """Answers for the render-only tests: every matrix combination × with_examples, with the
    (ci, docker) pairs rotating so that each pair appears with every driver, and telemetry
    alternating."""
    ci_docker = list(itertools.product(choices("ci"), [True, False]))
    telemetry = choices("telemetry")
    out = []
    for n, (combo, examples) in enumerate(itertools.product(matrix_combinations(), [True, False])):
        ci, docker = ci_docker[n % len(ci_docker)]
        out.append(
            {
                **combo,
                "with_examples": examples,
                "ci": ci,
                "docker": docker,
                "telemetry": telemetry[(n // 2) % len(telemetry)],
            }
        )
    return out


def answers_id(answers: Mapping[str, Any]) -> str:
    parts = [str(answers[q]) for q in MATRIX_QUESTIONS if q in answers]
    if "with_examples" in answers:
        parts.append("examples" if answers["with_examples"] else "no-examples")
    if "ci" in answers:
        parts.append(f"ci-{answers['ci']}")
    if "docker" in answers:
        parts.append("docker" if answers["docker"] else "no-docker")
    if answers.get("telemetry", "none") != "none":
        parts.append(str(answers["telemetry"]))
    return "-".join(parts)
