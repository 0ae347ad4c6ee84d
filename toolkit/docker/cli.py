"""The `docker` command of the emulation: put `docker_on_path()` first on PATH."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from toolkit.docker import EmulationError
from toolkit.docker.compose import Compose

SHIM = """#!/bin/sh
# The local stand-in for the docker CLI (toolkit/docker/).
EMULATED_DOCKER_STATE='{state}' PYTHONPATH='{root}' exec '{python}' -m toolkit.docker "$@"
"""


@contextlib.contextmanager
def docker_on_path(state_dir: Path) -> Iterator[Path]:
    """A directory holding a `docker` command that runs this emulation (put it first on PATH)."""
    from toolkit.answers import TEMPLATE_ROOT

    bin_dir = state_dir / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "docker"
    shim.write_text(SHIM.format(state=state_dir, root=TEMPLATE_ROOT, python=sys.executable))
    shim.chmod(0o755)
    yield bin_dir


def main(argv: Sequence[str]) -> int:
    state_root = Path(os.environ["EMULATED_DOCKER_STATE"])
    args = list(argv)
    if args[:1] != ["compose"]:
        print(f"emulated docker: only `docker compose` is emulated, not {args}", file=sys.stderr)
        return 2
    command, *rest = args[1:]
    project = Path.cwd()
    compose = Compose(project, state_root / "compose")
    try:
        if command == "up":
            services = [a for a in rest if not a.startswith("-")]
            flags = {a for a in rest if a.startswith("-")}
            compose.up(services, build="--build" in flags or not compose.state["images"])
            if not flags & {"-d", "--detach"}:
                print("emulated docker: `up` runs detached here", file=sys.stderr)
        elif command == "down":
            compose.down(volumes="--volumes" in rest or "-v" in rest)
        elif command == "restart":
            compose.restart([a for a in rest if not a.startswith("-")])
        elif command == "logs":
            print(compose.logs())
        elif command == "exec":
            service, *inner = [a for a in rest if a not in {"-T"}]
            result = compose.exec(service, inner)
            print(result.stdout, end="")
            print(result.stderr, end="", file=sys.stderr)
            return result.returncode
        else:
            print(f"emulated docker: `compose {command}` is not emulated", file=sys.stderr)
            return 2
    except EmulationError as exc:
        print(f"emulated docker: {exc}", file=sys.stderr)
        return 1
    return 0
