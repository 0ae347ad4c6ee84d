"""Running commands with time limits, and servers in processes of their own on loopback ports."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.environment import uv_binary

# Time limits of run() scale with TEMPLATE_TEST_TIMEOUT_FACTOR on a slow machine.
TIMEOUT_FACTOR = float(os.environ.get("TEMPLATE_TEST_TIMEOUT_FACTOR", "1"))


@dataclass
class CommandResult:
    args: Sequence[str]
    cwd: Path
    returncode: int | None  # None: timed out
    output: str
    seconds: float
    timeout: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def command(self) -> str:
        return " ".join(self.args)

    def describe(self, tail: int = 80) -> str:
        status = (
            f"timed out after {self.timeout:.0f}s"
            if self.returncode is None
            else f"exit {self.returncode}"
        )
        lines = self.output.rstrip().splitlines()
        shown = lines[-tail:]
        cut = (
            f"[... {len(lines) - len(shown)} earlier lines cut ...]\n"
            if len(shown) < len(lines)
            else ""
        )
        return (
            f"$ {self.command}   (cwd {self.cwd}; {status}; {self.seconds:.1f}s)\n"
            f"{cut}" + "\n".join(shown)
        )

    def check(self, what: str | None = None) -> CommandResult:
        """Raise RuntimeError with the command's output unless it succeeded."""
        if not self.ok:
            raise RuntimeError(f"{what or self.args[0]} failed:\n{self.describe()}")
        return self


def run(
    args: Sequence[str],
    cwd: Path,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> CommandResult:
    """Run a command, output (stdout+stderr) captured; on timeout kill its whole process group.
    A leading "uv" runs the uv that runs us."""
    timeout *= TIMEOUT_FACTOR
    argv = [uv_binary(), *args[1:]] if args[0] == "uv" else list(args)
    start = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=timeout)
        returncode: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid, proc)
        output, _ = proc.communicate()
        returncode = None
    return CommandResult(args, cwd, returncode, output or "", time.monotonic() - start, timeout)


def _kill_group(pid: int, proc: subprocess.Popen[Any], grace: float = 10) -> bool:
    """SIGTERM to the process group, SIGKILL after `grace` seconds; True if SIGTERM sufficed."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=grace)
            return sig == signal.SIGTERM
        except subprocess.TimeoutExpired:
            continue
    proc.wait(timeout=10)
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def drop_privileges(user: str | None) -> dict[str, object]:
    """subprocess keyword arguments that run a child as `user` (when we are root), as
    `runuser -u USER --` would."""
    if user is None or os.geteuid() != 0:
        return {}
    import pwd

    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def http_request(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request to 127.0.0.1:`port` (a JSON body when given): (status, headers, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        all_headers = {"Content-Type": "application/json"} if payload else {}
        all_headers.update(headers or {})
        connection.request(method, path, body=payload, headers=all_headers)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


class ServerError(RuntimeError):
    pass


class ServerProcess:
    """A server in a process group of its own: `argv` plus `--port PORT`, output appended to
    `log_path`, ready once `ready_path` answers 200."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        cwd: Path,
        env: Mapping[str, str],
        log_path: Path,
        *,
        port: int | None = None,
        run_as: str | None = None,
        shutdown_seconds: float = 15,
    ) -> None:
        self.name = name
        self.port = port or free_port()
        self.argv = [*argv, "--port", str(self.port)]
        self.cwd = cwd
        self.env = dict(env)
        self.log_path = log_path
        self.run_as = run_as
        self.shutdown_seconds = shutdown_seconds
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, ready_path: str, timeout: float = 60) -> None:
        """Start, and wait until `ready_path` answers 200; stopped again if it never does."""
        if self.process is not None and self.process.poll() is None:
            raise ServerError(f"{self.name} is already running")
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start #{self.starts} =====\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env={**self.env, "PYTHONUNBUFFERED": "1"},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **drop_privileges(self.run_as),  # type: ignore[call-overload]
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise ServerError(
                    f"{self.name} exited with {self.process.returncode} at startup:\n"
                    + self.log_tail()
                )
            with contextlib.suppress(OSError, http.client.HTTPException):
                if http_request(self.port, "GET", ready_path, timeout=10)[0] == 200:
                    return
            if time.monotonic() > deadline:
                self.stop()
                raise ServerError(
                    f"{self.name} was not ready after {timeout:g}s:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def stop(self) -> bool:
        """SIGTERM, then SIGKILL after `shutdown_seconds`. True when it stopped gracefully."""
        process = self.process
        if process is None or process.poll() is not None:
            return True
        return _kill_group(process.pid, process, self.shutdown_seconds)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines)
