"""Servers in processes of their own, over real HTTP: an application factory under uvicorn, or
the project's own `serve` command."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO

import httpx
import pytest

STARTUP_SECONDS = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def served(factory: str, database_url: str) -> Iterator[str]:
    """`factory` ("module:function") served on a free port; yields its base URL once ready."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", factory, "--factory"]
    with serving(
        [*command, "--port", str(port), "--log-level", "warning"],
        port,
        {"DATABASE_URL": database_url},
    ) as url:
        yield url


@contextmanager
def serving(
    command: list[str],
    port: int,
    environment: Mapping[str, str],
    output: IO[bytes] | None = None,
) -> Iterator[str]:
    """`command` run with `environment` added to this process's, its output into `output` (else
    kept for the failure message); yields the base URL once the server listening on `port` is
    ready, and stops it afterwards."""
    process = subprocess.Popen(
        command,
        env=os.environ | dict(environment),
        stdout=output or subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                printed = process.stdout.read().decode() if process.stdout else "(in the log)"
                pytest.fail(f"the server exited with {process.returncode}:\n{printed}")
            try:
                if httpx.get(f"{url}/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not become ready in {STARTUP_SECONDS}s")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
