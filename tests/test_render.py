"""Every variant renders cleanly: no leftover Jinja, the right files, ruff-clean."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from toolkit.answers import answers_id, render_variants
from toolkit.render import iter_files, render

Answers = Mapping[str, Any]


def always(_: Answers) -> bool:
    return True


# Which files a rendered project has, and when. `{package}` is the package_name.
# (path, present-when); a path is required iff its predicate holds, and absent otherwise.
EXPECTED_FILES: list[tuple[str, Callable[[Answers], bool]]] = [
    ("pyproject.toml", always),
    (".copier-answers.yml", always),
    (".gitignore", always),
    (".pre-commit-config.yaml", always),
    ("README.md", always),
    (".env.example", always),
    ("alembic.ini", always),
    ("migrations/env.py", always),
    ("src/{package}/__init__.py", always),
    ("src/{package}/main.py", always),
    ("src/{package}/settings.py", always),
    ("src/{package}/db.py", always),
    ("src/{package}/errors.py", always),
    ("src/{package}/cli.py", always),
    ("tests/conftest.py", always),
    ("Dockerfile", lambda a: bool(a["docker"])),
    ("compose.yaml", lambda a: bool(a["docker"])),
    (".github/workflows/ci.yml", lambda a: a["ci"] == "github"),
    ("src/{package}/api/items.py", lambda a: bool(a["with_examples"])),
    ("tests/test_items.py", lambda a: bool(a["with_examples"])),
]
# Never rendered: secrets live in the untracked .env that the post-copy task writes.
NEVER_RENDERED = [".env"]

JINJA_LEFTOVER = re.compile(r"\{\{|\{%|%\}")
GITHUB_EXPRESSION = re.compile(r"\$\{\{.*?\}\}")

VARIANTS = render_variants()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Answers], Path]:
    """Render each variant once per module (per xdist worker) and reuse the tree."""
    cache: dict[str, Path] = {}

    def get(answers: Answers) -> Path:
        key = answers_id(answers)
        if key not in cache:
            cache[key] = render(tmp_path_factory.mktemp(key), answers)
        return cache[key]

    return get


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
    for rel in NEVER_RENDERED:
        if (project / rel).exists():
            problems.append(f"{rel}: rendered by the template (must come from a post-copy task)")
    for path in iter_files(project):
        if path.stat().st_size == 0 and path.name != "__init__.py" and path.name != "py.typed":
            problems.append(f"{path.relative_to(project)}: empty file")
    assert not problems, "\n".join(problems)


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


def test_custom_names_leave_no_default_name(tmp_path: Path) -> None:
    """A non-default name reaches every file: nothing still says my_service / my-service."""
    project = render(
        tmp_path / "p",
        {"project_name": "Zebra Orders", "with_examples": True, "ci": "github", "docker": True},
    )
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
