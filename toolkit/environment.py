"""The environment a generated project's commands run in: nothing of ours leaks in."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Mapping

# Variables that must not leak from the template's own runs into a generated project's.
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
    "PYTHONDONTWRITEBYTECODE",
}
_DROP_PREFIXES = ("PYTEST_", "DATABASE_", "TEST_DATABASE_", "COV_CORE_", "SESSION_")


# A generated project's commands start many Python processes (pytest, servers, the CLI, hooks),
# each importing the same libraries: they share compiled modules through one cache outside the
# rendered trees, even where PYTHONDONTWRITEBYTECODE is set (as in many CI images), which would
# make every process compile every module again.
PYCACHE_PREFIX = os.path.join(
    tempfile.gettempdir(), f"copier-fastapi-sessions-pycache-{os.getuid()}"
)


def uv_binary() -> str:
    """`uv run` exports its own path as $UV; else uv from PATH."""
    return os.environ.get("UV") or shutil.which("uv") or "uv"


def base_python() -> str:
    """The interpreter running us (outside its venv): generated projects use it too."""
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
    env.setdefault("PYTHONPYCACHEPREFIX", PYCACHE_PREFIX)
    env.update(extra or {})
    return env
