"""Rendering the template's working tree (uncommitted and untracked changes included)."""

from __future__ import annotations

import subprocess
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import copier
from plumbum import local

from toolkit.answers import TEMPLATE_ROOT


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
    task_env: Mapping[str, str | None] | None = None,
) -> Path:
    """Render the template's working tree (uncommitted and untracked changes included) into dst.

    vcs_ref="HEAD" matters: with the default (None) copier renders the latest *tag*, not the
    working tree. For a dirty local repository copier clones HEAD, commits the working tree on
    top of it in the clone (git's author/committer set by copier itself, so no git identity is
    needed), warns DirtyLocalWarning, and renders that. Files ignored by .gitignore are left out.

    `task_env` changes the copy tasks' environment (None unsets a variable). copier runs its tasks
    with plumbum's `local.env`, a copy of os.environ taken when plumbum was imported: changes to
    os.environ made later (monkeypatch.setenv) never reach the tasks.
    """
    with warnings.catch_warnings(), local.env():
        for key, value in (task_env or {}).items():
            if value is None:
                local.env.pop(key, None)
            else:
                local.env[key] = value
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
