"""copier.yml's questions, their choices and defaults, and the variants built from them."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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

    @property
    def id(self) -> str:
        """`driver-strategy-user_sessions`, `-no-examples` appended for a skeleton."""
        suffix = "" if self.with_examples else "-no-examples"
        return f"{self.driver}-{self.strategy}-{self.user_sessions}{suffix}"

    @property
    def label(self) -> str:
        """`driver/strategy/user_sessions`, as tables print it."""
        return f"{self.driver}/{self.strategy}/{self.user_sessions}"

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


def suite_variants() -> list[Variant]:
    """The variants whose generated project is installed and fully checked (test_variants.py):

    * every database_driver × session_strategy × user_sessions, with examples (copier.yml's
      defaults for ci/docker);
    * every database_driver × session_strategy without examples, as a bare skeleton
      (ci=none, docker=false); user_sessions rotates (Latin square) so that every
      user_sessions value meets every driver and every strategy without examples.
    """
    ci, docker = default("ci"), default("docker")
    variants = [
        Variant(
            combo["database_driver"],
            combo["session_strategy"],
            combo["user_sessions"],
            ci=ci,
            docker=docker,
        )
        for combo in matrix_combinations()
    ]
    user_sessions = choices("user_sessions")
    for i, driver in enumerate(choices("database_driver")):
        for j, strategy in enumerate(choices("session_strategy")):
            us = user_sessions[(i + j) % len(user_sessions)]
            variants.append(Variant(driver, strategy, us, with_examples=False))
    return variants


def render_variants() -> list[dict[str, Any]]:
    """Answers for the render-only tests: every matrix combination × with_examples, with the
    (ci, docker) pairs rotating so that each pair appears with every driver."""
    ci_docker = list(itertools.product(choices("ci"), [True, False]))
    out = []
    for n, (combo, examples) in enumerate(itertools.product(matrix_combinations(), [True, False])):
        ci, docker = ci_docker[n % len(ci_docker)]
        out.append({**combo, "with_examples": examples, "ci": ci, "docker": docker})
    return out


def answers_id(answers: Mapping[str, Any]) -> str:
    parts = [str(answers[q]) for q in MATRIX_QUESTIONS if q in answers]
    if "with_examples" in answers:
        parts.append("examples" if answers["with_examples"] else "no-examples")
    if "ci" in answers:
        parts.append(f"ci-{answers['ci']}")
    if "docker" in answers:
        parts.append("docker" if answers["docker"] else "no-docker")
    return "-".join(parts)
