"""Helpers for tests/test_update.py: a throwaway git copy of the template that can be released
under version tags, and projects rendered from it, committed, edited and updated as a user would."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import copier
import yaml

from toolkit.answers import TEMPLATE_ROOT

ANSWERS_FILE = ".copier-answers.yml"
RELEASE_ARCHIVES = Path(__file__).parent / "data"

# The tests' own git commands (copier sets its own identity for its internal commits): CI may have
# no git identity at all, and a developer's global config (signing, hooks) must not leak in.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Template Tests",
    "GIT_AUTHOR_EMAIL": "template-tests@example.com",
    "GIT_COMMITTER_NAME": "Template Tests",
    "GIT_COMMITTER_EMAIL": "template-tests@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}

# What git writes for an unresolved conflict (copier update's inline conflicts included).
CONFLICT_MARKER = re.compile(rb"^(<{7}|={7}|>{7})(\s|$)", re.MULTILINE)


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode:
        raise AssertionError(
            f"git {' '.join(args)} failed in {cwd} (exit {result.returncode}):\n"
            f"{result.stdout}{result.stderr}"
        )
    return result.stdout


def init_repo(path: Path) -> None:
    git(path, "init", "--quiet", "--initial-branch=main")


def commit_all(path: Path, message: str) -> None:
    git(path, "add", "--all")
    git(path, "commit", "--quiet", "--no-verify", "--allow-empty", "-m", message)


# ----------------------------------------------------------------------------- the template


def copy_working_tree(dst: Path) -> None:
    """The template repository's files as in its working tree into `dst`."""
    listed = git(
        TEMPLATE_ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"
    ).split("\0")
    for rel in filter(None, listed):
        src = TEMPLATE_ROOT / rel
        if not src.is_file():  # deleted in the working tree but still in the index
            continue
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)


class TemplateRepo:
    """A git repository holding a copy of the template, released with `vX.Y.Z` tags."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def from_working_tree(cls, dst: Path) -> TemplateRepo:
        """Copy the template's working tree (uncommitted and untracked changes included; .git and
        git-ignored files such as .venv and caches left out) into a fresh repository."""
        dst.mkdir(parents=True)
        copy_working_tree(dst)
        init_repo(dst)
        commit_all(dst, "Template as in the working tree")
        return cls(dst)

    @classmethod
    def from_release_archive(cls, dst: Path, version: str) -> TemplateRepo:
        """A fresh repository whose first commit, tagged `v<version>`, is that release as
        tests/data/release-<version>.tar.gz holds it (`git archive v<version> copier.yml template
        scripts`): tests of updates from a real release need neither the tag nor the history in
        the clone they run in."""
        dst.mkdir(parents=True)
        with tarfile.open(RELEASE_ARCHIVES / f"release-{version}.tar.gz") as archive:
            archive.extractall(dst, filter="data")
        init_repo(dst)
        repo = cls(dst)
        repo.release(version)
        return repo

    def advance_to_working_tree(self) -> None:
        """Commit the template's working tree on top of what the repository holds."""
        for child in self.root.iterdir():
            if child.name == ".git":
                continue
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
        copy_working_tree(self.root)
        commit_all(self.root, "Template as in the working tree")

    @property
    def url(self) -> str:
        return str(self.root)

    def path(self, rel: str) -> Path:
        return self.root / rel

    def replace(self, rel: str, old: str, new: str) -> None:
        """Replace the one occurrence of `old` in a template file."""
        path = self.path(rel)
        text = path.read_text(encoding="utf-8")
        count = text.count(old)
        assert count == 1, f"{rel}: expected {old!r} once, found it {count} times"
        path.write_text(text.replace(old, new), encoding="utf-8")

    def append(self, rel: str, text: str) -> None:
        path = self.path(rel)
        assert path.is_file(), f"{rel} is not in the template (renamed?)"
        with path.open("a", encoding="utf-8") as fh:
            fh.write(text)

    def edit_config(self, change: Callable[[dict[str, Any]], None]) -> None:
        """Change copier.yml through its parsed form (comments are lost; the copy is throwaway)."""
        path = self.path("copier.yml")
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        change(config)
        path.write_text(
            yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=1000),
            encoding="utf-8",
        )

    def release(self, version: str) -> str:
        """Commit everything and tag it `v<version>`; returns the tag."""
        tag = f"v{version}"
        commit_all(self.root, f"Release {tag}")
        git(self.root, "tag", tag)
        return tag


# ----------------------------------------------------------------------------- projects


def copy_project(
    template: TemplateRepo,
    dst: Path,
    ref: str,
    answers: Mapping[str, Any] | None = None,
    *,
    source: str | None = None,
) -> Path:
    """`copier copy` at `ref` (no tasks: no network, no uv), then `git init` and commit, as the
    copy-time tasks and the user would. `source` names the template another way than its
    absolute path (a repository URL such as `git+file:///...`)."""
    copier.run_copy(
        source or template.url,
        dst,
        data=dict(answers or {}),
        defaults=True,
        unsafe=True,
        skip_tasks=True,
        quiet=True,
        vcs_ref=ref,
    )
    init_repo(dst)
    commit_all(dst, f"Project rendered from the template at {ref}")
    return dst


def render_fresh(
    template: TemplateRepo, dst: Path, ref: str, answers: Mapping[str, Any] | None = None
) -> Path:
    copier.run_copy(
        template.url,
        dst,
        data=dict(answers or {}),
        defaults=True,
        unsafe=True,
        skip_tasks=True,
        quiet=True,
        vcs_ref=ref,
    )
    return dst


def update_project(
    project: Path,
    ref: str,
    answers: Mapping[str, Any] | None = None,
    *,
    skip_tasks: bool = True,
) -> None:
    """`copier update --trust --defaults --vcs-ref <ref> [--data ...]`: the project's recorded
    answers, with `answers` changed."""
    copier.run_update(
        project,
        data=dict(answers or {}),
        defaults=True,
        overwrite=True,
        unsafe=True,
        skip_tasks=skip_tasks,
        quiet=True,
        vcs_ref=ref,
    )


def read_answers(project: Path) -> dict[str, Any]:
    data = yaml.safe_load((project / ANSWERS_FILE).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def tree(root: Path) -> dict[str, bytes]:
    """Every file under root (relative POSIX path → bytes), .git left out."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(root).parts
    }


def tree_differences(actual: Mapping[str, bytes], expected: Mapping[str, bytes]) -> list[str]:
    """Human-readable differences between two trees (empty when equal)."""
    problems = [f"unexpected file: {rel}" for rel in sorted(actual.keys() - expected.keys())]
    problems += [f"missing file: {rel}" for rel in sorted(expected.keys() - actual.keys())]
    for rel in sorted(actual.keys() & expected.keys()):
        if actual[rel] != expected[rel]:
            problems.append(f"content differs: {rel}\n{_short_diff(expected[rel], actual[rel])}")
    return problems


def _short_diff(expected: bytes, actual: bytes, limit: int = 40) -> str:
    import difflib

    lines = list(
        difflib.unified_diff(
            expected.decode(errors="replace").splitlines(),
            actual.decode(errors="replace").splitlines(),
            "expected",
            "actual",
            lineterm="",
        )
    )
    return "\n".join(lines[:limit] + (["..."] if len(lines) > limit else []))


def files_with_conflict_markers(root: Path) -> list[str]:
    return [rel for rel, data in tree(root).items() if CONFLICT_MARKER.search(data)]


def unmerged_paths(project: Path) -> list[str]:
    return git(project, "diff", "--name-only", "--diff-filter=U").split()
