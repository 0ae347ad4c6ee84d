"""The Python interpreters generated projects are checked with, one per `python_version` choice.

Found in this order: TEST_PYTHONS (space-separated interpreter paths; each is asked its version),
`pythonX.Y` on PATH, pyenv's versions (`$(pyenv root)/versions/X.Y.*`). A version found nowhere is
an error that says how to provide it, never a skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache
from pathlib import Path

from toolkit.environment import base_python


class PythonMissing(RuntimeError):
    pass


def _version_of(interpreter: str) -> str | None:
    try:
        out = subprocess.run(
            [interpreter, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.strip()


def _pyenv_root() -> Path | None:
    if root := os.environ.get("PYENV_ROOT"):
        return Path(root)
    if pyenv := shutil.which("pyenv"):
        out = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            return Path(out.stdout.strip())
    default = Path.home() / ".pyenv"
    return default if default.is_dir() else None


def _candidates(version: str) -> list[str]:
    found = [path for path in os.environ.get("TEST_PYTHONS", "").split() if path]
    found.append(base_python())  # the interpreter running the tests, outside its venv
    if on_path := shutil.which(f"python{version}"):
        found.append(on_path)
    if (root := _pyenv_root()) is not None:
        for prefix in sorted((root / "versions").glob(f"{version}.*"), reverse=True):
            found.append(str(prefix / "bin" / f"python{version}"))
    return found


@cache
def interpreter(version: str) -> str:
    """An interpreter of Python `version` (\"3.12\"), or PythonMissing saying how to provide one."""
    for candidate in _candidates(version):
        if _version_of(candidate) == version:
            return candidate
    msg = (
        f"no Python {version} found for the variants that choose python_version={version}: "
        f"put python{version} on PATH, install it with pyenv (pyenv install {version}), or name "
        f"its interpreter in TEST_PYTHONS (space-separated paths, e.g. "
        f"TEST_PYTHONS=/opt/python{version}/bin/python{version})"
    )
    raise PythonMissing(msg)
