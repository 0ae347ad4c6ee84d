"""copier.yml: defaults, validators, the answers file, determinism."""

from __future__ import annotations

import filecmp
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import plumbum
import pytest
import yaml
from pytest_copie.plugin import Copie

from toolkit.answers import choices, default, questions
from toolkit.render import iter_files, template_is_dirty

ANSWERS_FILE = ".copier-answers.yml"
SECRET_KEY = re.compile(r"secret|password|passwd|token|private|api_?key|credential", re.I)

# The defaults that the rest of the suite (and users) rely on.
EXPECTED_DEFAULTS = {
    "project_name": "My Service",
    "project_slug": "my-service",
    "package_name": "my_service",
    "python_version": "3.11",
    "database_driver": "aiosqlite",
    "session_strategy": "transaction",
    "with_examples": True,
    "ci": "github",
    "docker": True,
    "telemetry": "none",
}


def read_answers(project: Path) -> dict[str, Any]:
    data = yaml.safe_load((project / ANSWERS_FILE).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def copy(copie: Copie, answers: Mapping[str, Any] | None = None) -> Path:
    """The project rendered from the answers (the copy tasks run); fails if the copy did."""
    result = copie.copy(extra_answers=dict(answers or {}))
    assert result.exit_code == 0, f"copy failed: {result.exception!r}"
    assert result.project_dir is not None
    return result.project_dir


def refused(copie: Copie, answers: Mapping[str, Any]) -> BaseException:
    """The error of a copy that must fail, once checked that it rendered nothing."""
    result = copie.copy(extra_answers=dict(answers))
    assert result.exit_code != 0, f"copy with {dict(answers)} succeeded"
    assert result.exception is not None
    rendered = [str(p) for p in Path(copie.test_dir).rglob("*") if not p.is_dir()]
    assert not rendered, f"rendered despite a bad answer: {rendered}"
    return result.exception


def test_defaults_render_and_answers_file(copie: Copie) -> None:
    project = copy(copie)
    answers = read_answers(project)
    for key, value in EXPECTED_DEFAULTS.items():
        assert answers.get(key) == value, f"{key}: {answers.get(key)!r} != {value!r}"
    # Every asked question is recorded (so `copier update` can replay it) ...
    asked = {name for name, spec in questions().items() if spec.get("when") is not False}
    assert asked <= set(answers), f"missing from {ANSWERS_FILE}: {sorted(asked - set(answers))}"
    # ... and nothing computed (`when: false`) or secret is.
    computed = {name for name, spec in questions().items() if spec.get("when") is False}
    assert not computed & set(answers), f"computed values stored: {sorted(computed & set(answers))}"
    assert answers["_src_path"], "answers file lacks _src_path (copier update needs it)"
    assert answers.get("_commit"), "answers file lacks _commit (copier update needs it)"
    assert (project / "src" / answers["package_name"]).is_dir()


@pytest.mark.parametrize(
    "answers",
    [{}, {"database_driver": "asyncpg", "user_sessions": "cookie"}],
    ids=["defaults", "asyncpg-cookie"],
)
def test_answers_file_holds_no_secret(copie: Copie, answers: dict[str, Any]) -> None:
    """With the post-copy tasks: the generated .env gets the secrets, the answers file none, and
    .env is git-ignored."""
    project = copy(copie, answers)
    text = (project / ANSWERS_FILE).read_text(encoding="utf-8")
    secret_keys = [key for key in read_answers(project) if SECRET_KEY.search(key)]
    assert not secret_keys, f"secret-looking keys in {ANSWERS_FILE}: {secret_keys}"
    env_file = project / ".env"
    assert env_file.is_file(), "the copy tasks wrote no .env"
    for line in env_file.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        value = value.strip().strip("'\"")
        if sep and SECRET_KEY.search(key) and len(value) >= 16:
            assert value not in text, f"{key} from .env is in {ANSWERS_FILE}"
    assert (project / ".git").is_dir(), "the copy tasks ran no git init"
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=project, check=False)
    assert ignored.returncode == 0, ".env is not git-ignored in the generated project"


def test_all_choice_questions_have_valid_defaults() -> None:
    for name, spec in questions().items():
        if spec.get("choices") and spec.get("when") is not False:
            assert default(name) in choices(name), f"{name}: default {default(name)!r} not a choice"


# (question, bad value, regex the validator's message must match, case-insensitive)
BAD_ANSWERS = [
    ("package_name", "import", r"keyword|reserved|standard.library"),
    ("package_name", "fastapi", r"imports|reserved|standard.library|shadow"),
    ("package_name", "test", r"standard.library|reserved|keyword"),
    ("package_name", "1abc", r"identifier|start|letter"),
    ("package_name", "My-Pkg", r"identifier|lowercase"),
    ("project_slug", "my service", r"space|lowercase|hyphen"),
    ("project_slug", "My-Slug", r"lowercase"),
    ("project_slug", "9abc", r"start|letter"),
    ("author_email", "bad@", r"e-?mail"),
    ("author_email", "no-at-sign", r"e-?mail"),
    ("project_name", "", r"1 to 60|empty|characters"),
    ("project_name", "x" * 61, r"60"),
]


@pytest.mark.parametrize(
    ("question", "value", "message"),
    BAD_ANSWERS,
    ids=[f"{q}={v[:12] or 'empty'}" for q, v, _ in BAD_ANSWERS],
)
def test_validator_refuses(copie: Copie, question: str, value: str, message: str) -> None:
    error = refused(copie, {question: value})
    assert isinstance(error, ValueError), f"not a validation error: {error!r}"
    text = str(error)
    assert question in text, f"message does not name the question: {text!r}"
    assert re.search(message, text, re.I), f"message does not say what is wrong: {text!r}"


@pytest.mark.parametrize(
    "question",
    ["database_driver", "session_strategy", "user_sessions", "ci", "python_version", "telemetry"],
)
def test_unknown_choice_refused(copie: Copie, question: str) -> None:
    error = refused(copie, {question: "no-such-choice"})
    assert isinstance(error, ValueError), f"not a validation error: {error!r}"
    assert re.search(question, str(error)), f"message does not name the question: {error}"


GOOD_NAMES = {
    "project_name": "Acme Billing API v2",
    "project_slug": "acme-billing-2",
    "package_name": "acme_billing",
    "author_email": "dev.team+svc@example.co.uk",
}


def test_good_custom_names_accepted(copie: Copie) -> None:
    project = copy(copie, GOOD_NAMES)
    answers = read_answers(project)
    for key, value in GOOD_NAMES.items():
        assert answers[key] == value
    assert (project / "src" / "acme_billing").is_dir()


def test_slug_and_package_follow_project_name(copie: Copie) -> None:
    answers = read_answers(copy(copie, {"project_name": "Zebra Orders 2"}))
    assert answers["project_slug"] == "zebra-orders-2"
    assert answers["package_name"] == "zebra_orders_2"


def _tree(root: Path) -> dict[str, Path]:
    return {
        str(p.relative_to(root)): p
        for p in iter_files(root, skip_dirs=(".git",))
        if p.name != ".env"
    }


def test_rendering_is_deterministic(copie: Copie) -> None:
    answers = {
        "project_name": "Determinism Check",
        "database_driver": choices("database_driver")[-1],
    }
    first = _tree(copy(copie, answers))
    second = _tree(copy(copie, answers))
    assert first.keys() == second.keys(), f"different file sets: {first.keys() ^ second.keys()}"
    differing = []
    for rel, path in first.items():
        if filecmp.cmp(path, second[rel], shallow=False):
            continue
        if rel == ANSWERS_FILE and template_is_dirty():
            # Uncommitted template changes are committed by copier in a temporary clone, so
            # `_commit` names a commit whose hash depends on the clock. Everything else must match.
            strip = re.compile(r"^_commit:.*$", re.M)
            if strip.sub("", path.read_text()) == strip.sub("", second[rel].read_text()):
                continue
        differing.append(rel)
    assert not differing, f"renders of the same answers differ in: {differing}"


def _without_python(monkeypatch: pytest.MonkeyPatch, bindir: Path) -> dict[str, str]:
    """Give this process and the copy's tasks an environment where uv finds only the Pythons of
    /usr/bin and /bin: no downloads, no UV_PYTHON, no virtual environment, no pyenv. Returns it."""
    uv = os.environ.get("UV") or shutil.which("uv")
    if not uv:
        pytest.fail("uv not found ($UV unset, no uv on PATH): run the tests with `uv run`")
    # A directory holding only uv: uv's own directory may hold Pythons (pyenv's bin/ does).
    bindir.mkdir()
    (bindir / "uv").symlink_to(Path(uv).resolve())
    changes: dict[str, str | None] = {
        "PATH": f"/usr/bin:/bin:{bindir}",
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_PYTHON": None,
        "VIRTUAL_ENV": None,
        "CONDA_PREFIX": None,
    }
    changes.update({key: None for key in os.environ if key.startswith("PYENV")})
    # copier runs its tasks with plumbum's `local.env`, a copy of os.environ taken when plumbum
    # was imported: os.environ alone would not reach them.
    for mapping in (os.environ, plumbum.local.env):
        for key, value in changes.items():
            if value is None:
                monkeypatch.delitem(mapping, key, raising=False)
            else:
                monkeypatch.setitem(mapping, key, value)
    return dict(os.environ)


def test_python_version_without_interpreter_keeps_the_copy(
    copie: Copie, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """python_version 3.13 where no Python 3.13 can be found: `uv lock` cannot run, yet the copy
    succeeds (a failing task would make copier delete the whole render) and says how to finish."""
    env = _without_python(monkeypatch, tmp_path / "bin")
    uv = subprocess.run(["uv", "--version"], env=env, capture_output=True, text=True, check=False)
    assert uv.returncode == 0, f"uv does not run in the test's environment: {uv.stderr}"
    find = subprocess.run(
        ["uv", "python", "find", "3.13"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if find.returncode == 0:
        pytest.fail(
            f"uv still finds a Python 3.13 ({find.stdout.strip()}) with PATH={env['PATH']} and "
            "downloads off (a uv-managed one?): this test needs a machine without it",
            pytrace=False,
        )
    capfd.readouterr()
    result = copie.copy(extra_answers={"python_version": "3.13"})
    err = capfd.readouterr().err
    # copie creates the destination directory itself, so copier would not delete it on a failed
    # task: the exit code is what tells.
    assert result.exit_code == 0, f"the copy failed: {result.exception!r}\n{err}"
    project = result.project_dir
    assert project is not None
    assert (project / "pyproject.toml").is_file()
    assert (project / "src").is_dir()
    assert not (project / "uv.lock").exists(), "uv.lock written without a Python 3.13"
    assert "uv lock" in err and "3.13" in err, f"stderr does not say how to finish:\n{err}"


@pytest.mark.parametrize(
    "answers",
    [
        {"docker": True},
        {"docker": False},
        {"database_driver": "asyncpg", "docker": True},
        {"database_driver": "psycopg", "docker": False},
    ],
    ids=["sqlite-docker", "sqlite-no-docker", "asyncpg-docker", "psycopg-no-docker"],
)
def test_message_after_copy(
    copie: Copie, capfd: pytest.CaptureFixture[str], answers: dict[str, Any]
) -> None:
    capfd.readouterr()
    project = copy(copie, answers)
    out = capfd.readouterr()
    message = out.out + out.err
    slug = read_answers(project)["project_slug"]
    for needle in (
        str(project),
        f"uv run {slug} db upgrade",
        f"uv run {slug} serve",
        "uv run pytest",
        "http://127.0.0.1:8000/docs",
    ):
        assert needle in message, f"the message after copy lacks {needle!r}:\n{message}"
    if answers["docker"]:
        assert "docker compose up --build" in message, message
    else:
        # No compose.yaml in this project: no `docker compose` command at all.
        assert "docker compose" not in message, message
