"""Shared helpers for the template's own tests: copier.yml, the variant matrix, rendering, and
running the generated project's commands."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import copier
import yaml

TEMPLATE_ROOT = Path(__file__).resolve().parents[1]
COPIER_YML = TEMPLATE_ROOT / "copier.yml"

# The questions whose every combination gets a full install-and-test run (PRODUCT.md §9).
MATRIX_QUESTIONS = ("database_driver", "session_strategy", "user_sessions")

# SQLAlchemy URL scheme per database_driver; None = embedded SQLite (the project uses a temp file).
# A new driver choice in copier.yml must be added here (test_harness.py checks that).
DRIVER_URL_SCHEME: dict[str, str | None] = {
    "aiosqlite": None,
    "asyncpg": "postgresql+asyncpg",
    "psycopg": "postgresql+psycopg",
}

# Per-command time limits (seconds) for the generated project's checks; scale with
# TEMPLATE_TEST_TIMEOUT_FACTOR on a slow machine.
TIMEOUT_FACTOR = float(os.environ.get("TEMPLATE_TEST_TIMEOUT_FACTOR", "1"))


# ----------------------------------------------------------------------------- copier.yml


@cache
def copier_config() -> dict[str, Any]:
    with COPIER_YML.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    assert isinstance(data, dict), f"{COPIER_YML} is not a mapping"
    return data


def questions() -> dict[str, dict[str, Any]]:
    """The asked questions (settings starting with `_` left out)."""
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
    values: list[Any] = []
    if isinstance(raw, dict):
        items: Iterable[Any] = raw.values()
    else:
        items = raw
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
    answers: Mapping[str, Any]

    @property
    def id(self) -> str:
        core = "-".join(str(self.answers[q]) for q in MATRIX_QUESTIONS)
        suffix = "examples" if self.answers.get("with_examples", True) else "no-examples"
        return f"{core}-{suffix}"

    @property
    def driver(self) -> str:
        return str(self.answers["database_driver"])


def matrix_combinations() -> list[dict[str, Any]]:
    """Every combination of the MATRIX_QUESTIONS choices, from copier.yml."""
    axes = [choices(q) for q in MATRIX_QUESTIONS]
    return [dict(zip(MATRIX_QUESTIONS, combo, strict=True)) for combo in itertools.product(*axes)]


def suite_variants() -> list[Variant]:
    """The variants whose generated project is installed and fully checked (test_variants.py):

    * every database_driver × session_strategy × user_sessions, with examples (defaults for
      ci/docker);
    * every database_driver × session_strategy without examples, as a bare skeleton
      (ci=none, docker=false); user_sessions rotates (Latin square) so that every
      user_sessions value meets every driver and every strategy without examples.
    """
    variants = [Variant({**combo, "with_examples": True}) for combo in matrix_combinations()]
    drivers = choices("database_driver")
    strategies = choices("session_strategy")
    user_sessions = choices("user_sessions")
    for i, driver in enumerate(drivers):
        for j, strategy in enumerate(strategies):
            variants.append(
                Variant(
                    {
                        "database_driver": driver,
                        "session_strategy": strategy,
                        "user_sessions": user_sessions[(i + j) % len(user_sessions)],
                        "with_examples": False,
                        "ci": "none",
                        "docker": False,
                    }
                )
            )
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


# ----------------------------------------------------------------------------- rendering


def template_is_dirty() -> bool:
    out = subprocess.run(
        ["git", "status", "--porcelain"],
        cwd=TEMPLATE_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return bool(out.strip())


def render(
    dst: Path,
    answers: Mapping[str, Any] | None = None,
    *,
    skip_tasks: bool = True,
    src: Path = TEMPLATE_ROOT,
) -> Path:
    """Render the template's working tree (uncommitted and untracked changes included) into dst.

    vcs_ref="HEAD" matters: with the default (None) copier renders the latest *tag*, not the
    working tree. For a dirty local repository copier clones HEAD, commits the working tree on
    top of it in the clone (git's author/committer set by copier itself, so no git identity is
    needed), warns DirtyLocalWarning, and renders that. Files ignored by .gitignore are left out.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", copier.errors.DirtyLocalWarning)
        copier.run_copy(
            str(src),
            str(dst),
            data=dict(answers or {}),
            defaults=True,
            unsafe=True,
            skip_tasks=skip_tasks,
            quiet=True,
            vcs_ref="HEAD",
        )
    return dst


def iter_files(root: Path, *, skip_dirs: Sequence[str] = (".git",)) -> Iterable[Path]:
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts and rel.parts[0] in skip_dirs:
            continue
        if path.is_file():
            yield path


# ----------------------------------------------------------------------------- commands

# Variables that must not leak from the template's own test run into a generated project's.
_DROP_EXACT = {
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "UV_PROJECT_ENVIRONMENT",
    "UV_FROZEN",
    "UV_LOCKED",
    "UV_NO_SYNC",
    "UV_ACTIVE",
    "UV_RUN_RECURSION_DEPTH",
    "UV",
    "CONDA_PREFIX",
    "FORCE_COLOR",
    "PY_COLORS",
    "ENVIRONMENT",
    "DATABASE_URL",
    "TEST_DATABASE_URL",
    "MYPYPATH",
}
_DROP_PREFIXES = ("PYTEST_", "DATABASE_", "TEST_DATABASE_", "COV_CORE_", "SESSION_")


def uv_binary() -> str:
    """`uv run` exports its own path as $UV; else uv from PATH."""
    return os.environ.get("UV") or shutil.which("uv") or "uv"


def base_python() -> str:
    """The interpreter running these tests (outside its venv): generated projects use it too."""
    return str(getattr(sys, "_base_executable", None) or sys.executable)


def project_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _DROP_EXACT and not key.startswith(_DROP_PREFIXES)
    }
    env["UV_PYTHON_DOWNLOADS"] = "never"  # uv cannot (and should not) download Pythons here
    env.setdefault("UV_PYTHON", base_python())
    env["UV_NO_PROGRESS"] = "1"
    env["NO_COLOR"] = "1"
    env.update(extra or {})
    return env


@dataclass
class CommandResult:
    args: Sequence[str]
    cwd: Path
    returncode: int | None  # None: timed out
    output: str
    seconds: float
    timeout: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def command(self) -> str:
        return " ".join(self.args)

    def describe(self, tail: int = 80) -> str:
        status = (
            f"timed out after {self.timeout:.0f}s"
            if self.returncode is None
            else f"exit {self.returncode}"
        )
        lines = self.output.rstrip().splitlines()
        shown = lines[-tail:]
        cut = (
            f"[... {len(lines) - len(shown)} earlier lines cut ...]\n"
            if len(shown) < len(lines)
            else ""
        )
        return (
            f"$ {self.command}   (cwd {self.cwd}; {status}; {self.seconds:.1f}s)\n"
            f"{cut}" + "\n".join(shown)
        )


def run(
    args: Sequence[str],
    cwd: Path,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> CommandResult:
    """Run a command, output (stdout+stderr) captured; on timeout kill its whole process group.
    A leading "uv" runs the uv that runs these tests."""
    timeout *= TIMEOUT_FACTOR
    argv = [uv_binary(), *args[1:]] if args[0] == "uv" else list(args)
    start = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=timeout)
        returncode: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        output, _ = proc.communicate()
        returncode = None
    return CommandResult(args, cwd, returncode, output or "", time.monotonic() - start, timeout)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue
