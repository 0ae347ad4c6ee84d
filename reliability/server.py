"""A generated project served by uvicorn in its own process, on a loopback port."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from reliability.pg import drop_privileges, free_port
from reliability.project import SERVED_APP, Project

STARTUP_SECONDS = 60
SHUTDOWN_SECONDS = 15

# What in a server's output means that something went wrong that no response showed (uvicorn
# prints "Exception in ASGI application" with the traceback of an unhandled error).
LOG_PROBLEM = re.compile(
    r"Traceback|Exception in ASGI application|unhandled error|^(ERROR|CRITICAL):", re.MULTILINE
)


class ServerError(RuntimeError):
    pass


class Server:
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
        self.project = project
        self.env = dict(env)
        self.name = name
        self.port = port or free_port()
        self.run_as = run_as
        self.log_path = (log_dir or project.root) / f"{name}-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        """Start, and wait until /health/live answers (the database is not needed for that)."""
        if self.process is not None and self.process.poll() is None:
            raise ServerError(f"{self.name} is already running")
        self.starts += 1
        log = self.log_path.open("ab")
        log.write(f"\n===== start #{self.starts} =====\n".encode())
        log.flush()
        command = [
            str(self.project.python),
            "-m",
            "uvicorn",
            SERVED_APP,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-access-log",
            "--timeout-graceful-shutdown",
            "5",
        ]
        try:
            self.process = subprocess.Popen(
                command,
                cwd=self.project.root,
                env={**self.env, "PYTHONUNBUFFERED": "1"},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **drop_privileges(self.run_as),  # type: ignore[call-overload]
            )
        finally:
            log.close()
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if self.process.poll() is not None:
                raise ServerError(
                    f"{self.name} exited with {self.process.returncode} at startup:\n"
                    + self.log_tail()
                )
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/health/live", timeout=2).status_code == 200:
                    return
            if time.monotonic() > deadline:
                self.stop()
                raise ServerError(f"{self.name} did not answer within {STARTUP_SECONDS}s")
            time.sleep(0.1)

    def stop(self) -> bool:
        """SIGTERM, then SIGKILL after SHUTDOWN_SECONDS. True when it stopped gracefully."""
        process = self.process
        if process is None or process.poll() is not None:
            return True
        graceful = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=SHUTDOWN_SECONDS)
        except subprocess.TimeoutExpired:
            graceful = False
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        return graceful

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

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
