"""A generated project served by uvicorn in its own process, on a loopback port."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from pathlib import Path

from reliability.project import SERVED_APP, Project
from toolkit.processes import ServerError, ServerProcess, free_port

__all__ = ["LOG_PROBLEM", "Server", "ServerError"]

STARTUP_SECONDS = 60
SHUTDOWN_SECONDS = 15

# What in a server's output means that something went wrong that no response showed (uvicorn
# prints "Exception in ASGI application" with the traceback of an unhandled error).
LOG_PROBLEM = re.compile(
    r"Traceback|Exception in ASGI application|unhandled error|^(ERROR|CRITICAL):", re.MULTILINE
)


class Server(ServerProcess):
    """`python -m uvicorn reliability_app:app` in the project, environment from `env` only."""

    def __init__(
        self,
        project: Project,
        env: Mapping[str, str],
        *,
        name: str = "server",
        port: int | None = None,
        run_as: str | None = None,
        log_dir: Path | None = None,
    ) -> None:
        argv = [
            str(project.python),
            *("-m", "uvicorn", SERVED_APP, "--host", "127.0.0.1"),
            *("--no-access-log", "--timeout-graceful-shutdown", "5"),
        ]
        port = port or free_port()
        super().__init__(
            name,
            argv,
            project.root,
            env,
            (log_dir or project.root) / f"{name}-{port}.log",
            port=port,
            run_as=run_as,
            shutdown_seconds=SHUTDOWN_SECONDS,
        )
        self.project = project

    def start(self, ready_path: str = "/health/live", timeout: float = STARTUP_SECONDS) -> None:
        """Start, and wait until /health/live answers (the database is not needed for that)."""
        super().start(ready_path, timeout)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_problems(self, since: int = 0, pattern: re.Pattern[str] = LOG_PROBLEM) -> list[str]:
        """Lines of the log (from character `since`) that match `pattern` (errors by default)."""
        return [line for line in self.log_text()[since:].splitlines() if pattern.search(line)]

    def log_size(self) -> int:
        return len(self.log_text())

    def open_files(self, path: Path) -> int:
        """How many file descriptors of the server process point at `path`."""
        count = 0
        fd_dir = Path(f"/proc/{self.pid}/fd")
        with contextlib.suppress(OSError):
            for fd in fd_dir.iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == str(path):
                        count += 1
        return count
