"""Every variant renders cleanly: no leftover Jinja, the right files, ruff-clean."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from pytest_copie.plugin import Copie

from toolkit.answers import TEMPLATE_ROOT, answers_id, render_variants
from toolkit.render import iter_files

Answers = Mapping[str, Any]


def always(_: Answers) -> bool:
    return True


def has_users(answers: Answers) -> bool:
    return answers["user_sessions"] != "none"


def has_orders(answers: Answers) -> bool:
    return has_users(answers) and bool(answers["with_examples"])


# Which files a rendered project has, and when. `{package}` is the package_name.
# (path, present-when); a path is required iff its predicate holds, and absent otherwise.
EXPECTED_FILES: list[tuple[str, Callable[[Answers], bool]]] = [
    ("pyproject.toml", always),
    ("scripts/init_env.py", always),
    (".copier-answers.yml", always),
    (".gitignore", always),
    (".pre-commit-config.yaml", always),
    ("README.md", always),
    (".env.example", always),
    ("alembic.ini", always),
    ("migrations/env.py", always),
    ("migrations/versions/0001_initial.py", always),
    (
        "migrations/versions/0002_user_session_user_agent.py",
        lambda a: a["user_sessions"] == "database",
    ),
    ("migrations/versions/0003_login_throttles.py", has_users),
    ("migrations/versions/0004_account_balance.py", has_orders),
    ("src/{package}/__init__.py", always),
    ("src/{package}/main.py", always),
    ("src/{package}/settings.py", always),
    ("src/{package}/errors.py", always),
    ("src/{package}/cli.py", always),
    ("src/{package}/health.py", always),
    ("src/{package}/routers.py", always),
    ("src/{package}/models.py", always),
    ("src/{package}/http_methods.py", always),
    ("src/{package}/openapi.py", always),
    ("src/{package}/text.py", always),
    ("src/{package}/logs.py", always),
    ("src/{package}/telemetry.py", lambda a: a.get("telemetry") == "opentelemetry"),
    ("src/{package}/db/__init__.py", always),
    ("src/{package}/db/base.py", always),
    ("src/{package}/db/database.py", always),
    ("src/{package}/db/pool.py", always),
    ("src/{package}/db/queue.py", always),
    ("src/{package}/db/reads.py", always),
    ("src/{package}/db/engine.py", always),
    ("src/{package}/db/transactions.py", always),
    ("src/{package}/db/strategy.py", always),
    ("src/{package}/db/retries.py", always),
    ("src/{package}/db/driver.py", lambda a: a["database_driver"] != "aiosqlite"),
    ("src/{package}/db/replicas.py", lambda a: a["database_driver"] != "aiosqlite"),
    ("src/{package}/db/routing.py", lambda a: a["database_driver"] != "aiosqlite"),
    ("src/{package}/read_after.py", lambda a: a["database_driver"] != "aiosqlite"),
    ("src/{package}/items/__init__.py", lambda a: bool(a["with_examples"])),
    ("src/{package}/items/models.py", lambda a: bool(a["with_examples"])),
    ("src/{package}/items/schemas.py", lambda a: bool(a["with_examples"])),
    ("src/{package}/items/router.py", lambda a: bool(a["with_examples"])),
    ("src/{package}/auth/__init__.py", has_users),
    ("src/{package}/auth/models.py", has_users),
    ("src/{package}/auth/schemas.py", has_users),
    ("src/{package}/auth/router.py", has_users),
    ("src/{package}/auth/dependencies.py", has_users),
    ("src/{package}/auth/passwords.py", has_users),
    ("src/{package}/auth/cookies.py", has_users),
    ("src/{package}/auth/user_sessions.py", has_users),
    ("src/{package}/auth/store.py", has_users),
    ("src/{package}/auth/throttling.py", has_users),
    ("src/{package}/auth/login_throttle.py", has_users),
    ("src/{package}/auth/stored_session.py", lambda a: a["user_sessions"] == "database"),
    ("src/{package}/auth/cli.py", has_users),
    ("src/{package}/auth/sessions.py", lambda a: a["user_sessions"] == "database"),
    ("src/{package}/orders/__init__.py", has_orders),
    ("src/{package}/orders/models.py", has_orders),
    ("src/{package}/orders/schemas.py", has_orders),
    ("src/{package}/orders/router.py", has_orders),
    ("src/{package}/orders/payments.py", has_orders),
    ("src/{package}/transfers/__init__.py", has_orders),
    ("src/{package}/transfers/schemas.py", has_orders),
    ("src/{package}/transfers/router.py", has_orders),
    ("src/{package}/transfers/cli.py", has_orders),
    ("tests/conftest.py", always),
    ("tests/support/app.py", always),
    ("tests/support/probe.py", always),
    ("tests/support/databases.py", always),
    ("tests/support/migrate.py", always),
    ("tests/support/server.py", always),
    ("tests/support/production.py", always),
    ("tests/support/telemetry.py", lambda a: a.get("telemetry") == "opentelemetry"),
    ("tests/support/users.py", has_users),
    ("tests/support/session_data.py", has_users),
    ("tests/support/payments.py", has_orders),
    ("tests/support/replica.py", lambda a: a["database_driver"] != "aiosqlite"),
    ("tests/test_health.py", always),
    ("tests/test_cli.py", always),
    ("tests/test_server.py", always),
    ("tests/test_contract.py", always),
    ("tests/test_openapi.py", always),
    ("tests/test_logs.py", always),
    ("tests/test_telemetry.py", lambda a: a.get("telemetry") == "opentelemetry"),
    ("tests/db/test_transactions.py", always),
    ("tests/db/test_connection_queue.py", always),
    ("tests/db/test_reads.py", always),
    ("tests/db/test_migrations.py", always),
    ("tests/db/test_retries.py", always),
    ("tests/db/test_sqlite_writers.py", lambda a: a["database_driver"] == "aiosqlite"),
    ("tests/db/test_sqlite_file.py", lambda a: a["database_driver"] == "aiosqlite"),
    ("tests/db/test_pgbouncer.py", lambda a: a["database_driver"] == "asyncpg"),
    ("tests/db/test_replicas.py", lambda a: a["database_driver"] != "aiosqlite"),
    ("tests/db/test_explicit_strategy.py", lambda a: a["session_strategy"] == "explicit"),
    ("tests/db/test_middleware_strategy.py", lambda a: a["session_strategy"] == "middleware"),
    ("tests/db/test_unflushed_changes.py", lambda a: a["session_strategy"] != "explicit"),
    ("tests/items/test_items.py", lambda a: bool(a["with_examples"])),
    ("tests/items/test_concurrent_edits.py", lambda a: bool(a["with_examples"])),
    ("tests/auth/test_auth.py", has_users),
    ("tests/auth/test_atomicity.py", has_users),
    ("tests/auth/test_password.py", has_users),
    ("tests/auth/test_session_data.py", has_users),
    ("tests/auth/test_throttling.py", has_users),
    ("tests/auth/test_log_secrets.py", has_users),
    ("tests/auth/test_database_store.py", lambda a: a["user_sessions"] == "database"),
    ("tests/auth/test_session_list.py", lambda a: a["user_sessions"] == "database"),
    ("tests/auth/test_cookie_store.py", lambda a: a["user_sessions"] == "cookie"),
    ("tests/orders/conftest.py", has_orders),
    ("tests/orders/test_orders.py", has_orders),
    ("tests/transfers/test_transfers.py", has_orders),
    ("tests/transfers/test_concurrent_transfers.py", has_orders),
    ("tests/transfers/test_deposit.py", has_orders),
    ("Dockerfile", lambda a: bool(a["docker"])),
    (".dockerignore", lambda a: bool(a["docker"])),
    ("compose.yaml", lambda a: bool(a["docker"])),
    (".github/workflows/ci.yml", lambda a: a["ci"] == "github"),
]
# Never rendered: secrets live in the untracked .env that the post-copy task writes.
NEVER_RENDERED = [".env"]
PLACEHOLDER = re.compile(r"change-me-[a-z0-9-]+")
FRESH_SECRET = "[A-Za-z0-9_-]{43}"  # secrets.token_urlsafe(32), as scripts/init_env.py writes

JINJA_LEFTOVER = re.compile(r"\{\{|\{%|%\}")
GITHUB_EXPRESSION = re.compile(r"\$\{\{.*?\}\}")

VARIANTS = render_variants()


def _package(project: Path) -> str:
    import yaml

    data = yaml.safe_load((project / ".copier-answers.yml").read_text())
    return str(data["package_name"])


@pytest.mark.parametrize("answers", VARIANTS, ids=answers_id)
def test_no_leftover_jinja(rendered: Callable[[Answers], Path], answers: Answers) -> None:
    project = rendered(answers)
    problems = []
    for path in iter_files(project):
        rel = path.relative_to(project)
        if path.name.endswith(".jinja"):
            problems.append(f"{rel}: .jinja suffix left")
        if JINJA_LEFTOVER.search(str(rel)):
            problems.append(f"{rel}: Jinja in the file name")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        if rel.parts[0] == ".github":
            text = GITHUB_EXPRESSION.sub("", text)
        for lineno, line in enumerate(text.splitlines(), 1):
            if JINJA_LEFTOVER.search(line):
                problems.append(f"{rel}:{lineno}: {line.strip()}")
    assert not problems, "leftover Jinja:\n" + "\n".join(problems)


def _env_problems(project: Path) -> list[str]:
    """The copy tasks ran, so .env must be scripts/init_env.py's output: .env.example with every
    placeholder replaced by a fresh secret. init_env.py leaves an existing .env as it is, so a .env
    rendered by the template would stay and not match."""
    env = project / ".env"
    if not env.is_file():
        return [".env: not written by the copy task (scripts/init_env.py)"]
    parts = PLACEHOLDER.split((project / ".env.example").read_text(encoding="utf-8"))
    expected = FRESH_SECRET.join(re.escape(part) for part in parts)
    if not re.fullmatch(expected, env.read_text(encoding="utf-8")):
        return [".env: not .env.example with fresh secrets (rendered by the template?)"]
    return []


def test_template_has_no_never_rendered_file() -> None:
    """No template file renders to a NEVER_RENDERED name, whatever the answers (file-name
    conditions and the .jinja suffix dropped)."""
    found = []
    for path in (TEMPLATE_ROOT / "template").rglob("*"):
        name = re.sub(r"\{%.*?%\}", "", path.name).removesuffix(".jinja")
        if name in NEVER_RENDERED:
            found.append(str(path.relative_to(TEMPLATE_ROOT)))
    assert not found, f"rendered by the template (must come from a post-copy task): {found}"


@pytest.mark.parametrize("answers", VARIANTS, ids=answers_id)
def test_files_present_as_chosen(rendered: Callable[[Answers], Path], answers: Answers) -> None:
    project = rendered(answers)
    package = _package(project)
    problems = []
    for pattern, when in EXPECTED_FILES:
        rel = pattern.format(package=package)
        expected = when(answers)
        if (project / rel).is_file() != expected:
            problems.append(f"{rel}: expected {'present' if expected else 'absent'}")
    problems.extend(_env_problems(project))
    for path in iter_files(project):
        if path.stat().st_size == 0 and path.name != "__init__.py" and path.name != "py.typed":
            problems.append(f"{path.relative_to(project)}: empty file")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("answers", VARIANTS, ids=answers_id)
def test_no_python_file_beyond_the_expected_ones(
    rendered: Callable[[Answers], Path], answers: Answers
) -> None:
    """Every module of src/, tests/ and scripts/ is listed above: a new one must say when it
    renders."""
    project = rendered(answers)
    package = _package(project)
    listed = {pattern.format(package=package) for pattern, _ in EXPECTED_FILES}
    unlisted = [
        str(path.relative_to(project))
        for top in ("src", "tests", "scripts")
        for path in (project / top).rglob("*.py")
        if str(path.relative_to(project)) not in listed and path.name != "__init__.py"
    ]
    assert not unlisted, "rendered but not in EXPECTED_FILES:\n" + "\n".join(sorted(unlisted))


@pytest.mark.parametrize("answers", VARIANTS, ids=answers_id)
def test_ruff_clean(rendered: Callable[[Answers], Path], answers: Answers) -> None:
    """ruff with the generated project's own configuration (cwd = the project)."""
    project = rendered(answers)
    for args in (["format", "--check", "--diff"], ["check", "--no-fix", "--output-format=concise"]):
        proc = subprocess.run(
            [sys.executable, "-m", "ruff", *args, "--no-cache", "."],
            cwd=project,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if proc.returncode != 0:
            pytest.fail(
                f"ruff {' '.join(args)} in {project}:\n{proc.stdout}{proc.stderr}", pytrace=False
            )


def test_custom_names_leave_no_default_name(copie: Copie) -> None:
    """A non-default name reaches every file (.env and uv.lock from the copy tasks included):
    nothing still says my_service / my-service."""
    result = copie.copy(
        extra_answers={
            "project_name": "Zebra Orders",
            "with_examples": True,
            "ci": "github",
            "docker": True,
        }
    )
    assert result.exit_code == 0, result.exception
    project = result.project_dir
    assert (project / "src" / "zebra_orders").is_dir()
    leftovers = []
    for path in iter_files(project):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for needle in ("my_service", "my-service", "My Service"):
            if needle in text or needle in str(path.relative_to(project)):
                leftovers.append(f"{path.relative_to(project)}: {needle}")
    assert not leftovers, "default names left in a custom-named project:\n" + "\n".join(leftovers)
