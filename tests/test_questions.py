"""copier.yml: defaults, validators, the answers file, determinism."""

from __future__ import annotations

import filecmp
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from toolkit.answers import choices, default, questions
from toolkit.render import iter_files, render, template_is_dirty

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
}


def read_answers(project: Path) -> dict[str, Any]:
    data = yaml.safe_load((project / ANSWERS_FILE).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_defaults_render_and_answers_file(tmp_path: Path) -> None:
    project = render(tmp_path / "p")
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


def test_answers_file_holds_no_secret(tmp_path: Path) -> None:
    """Also with the post-copy tasks: the generated .env gets the secrets, the answers file
    none, and .env is git-ignored."""
    project = render(tmp_path / "p", skip_tasks=False)
    text = (project / ANSWERS_FILE).read_text(encoding="utf-8")
    secret_keys = [key for key in read_answers(project) if SECRET_KEY.search(key)]
    assert not secret_keys, f"secret-looking keys in {ANSWERS_FILE}: {secret_keys}"
    env_file = project / ".env"
    if env_file.exists():
        for line in env_file.read_text(encoding="utf-8").splitlines():
            key, sep, value = line.partition("=")
            value = value.strip().strip("'\"")
            if sep and SECRET_KEY.search(key) and len(value) >= 16:
                assert value not in text, f"{key} from .env is in {ANSWERS_FILE}"
        if (project / ".git").is_dir():
            ignored = subprocess.run(
                ["git", "check-ignore", "-q", ".env"], cwd=project, check=False
            ).returncode
            assert ignored == 0, ".env is not git-ignored in the generated project"


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
def test_validator_refuses(tmp_path: Path, question: str, value: str, message: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        render(tmp_path / "p", {question: value})
    text = str(excinfo.value)
    assert question in text, f"message does not name the question: {text!r}"
    assert re.search(message, text, re.I), f"message does not say what is wrong: {text!r}"
    assert not (tmp_path / "p" / "pyproject.toml").exists(), "rendered despite a bad answer"


@pytest.mark.parametrize(
    "question", ["database_driver", "session_strategy", "user_sessions", "ci", "python_version"]
)
def test_unknown_choice_refused(tmp_path: Path, question: str) -> None:
    with pytest.raises(ValueError, match=question):
        render(tmp_path / "p", {question: "no-such-choice"})


GOOD_NAMES = {
    "project_name": "Acme Billing API v2",
    "project_slug": "acme-billing-2",
    "package_name": "acme_billing",
    "author_email": "dev.team+svc@example.co.uk",
}


def test_good_custom_names_accepted(tmp_path: Path) -> None:
    project = render(tmp_path / "p", GOOD_NAMES)
    answers = read_answers(project)
    for key, value in GOOD_NAMES.items():
        assert answers[key] == value
    assert (project / "src" / "acme_billing").is_dir()


def test_slug_and_package_follow_project_name(tmp_path: Path) -> None:
    answers = read_answers(render(tmp_path / "p", {"project_name": "Zebra Orders 2"}))
    assert answers["project_slug"] == "zebra-orders-2"
    assert answers["package_name"] == "zebra_orders_2"


def _tree(root: Path) -> dict[str, Path]:
    return {
        str(p.relative_to(root)): p
        for p in iter_files(root, skip_dirs=(".git",))
        if p.name != ".env"
    }


def test_rendering_is_deterministic(tmp_path: Path) -> None:
    answers = {
        "project_name": "Determinism Check",
        "database_driver": choices("database_driver")[-1],
    }
    first = _tree(render(tmp_path / "a", answers, skip_tasks=False))
    second = _tree(render(tmp_path / "b", answers, skip_tasks=False))
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
