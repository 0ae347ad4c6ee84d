"""The application served by uvicorn, over real HTTP, against the test database."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.app import empty_all_tables

STARTUP_SECONDS = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server_url(database_url: str, engine: AsyncEngine) -> Iterator[str]:
    del engine  # requested for the schema it builds
    port = free_port()
    env = os.environ | {"DATABASE_URL": database_url}
    command = [sys.executable, "-m", "uvicorn", "tests.support.app:create_test_app", "--factory"]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"uvicorn exited with {process.returncode}:\n{output}")
            try:
                if httpx.get(f"{url}/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"uvicorn did not become ready in {STARTUP_SECONDS}s")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
async def http(server_url: str, engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server_url) as client:
        yield client
    await empty_all_tables(engine)


async def test_a_write_is_visible_as_soon_as_its_response_arrives(
    http: httpx.AsyncClient,
) -> None:
    for _ in range(20):
        created = await http.post("/probe/parents")
        assert created.status_code == 201
        fetched = await http.get(f"/probe/parents/{created.json()['id']}")
        assert fetched.status_code == 200


async def test_a_commit_failure_is_not_a_2xx_and_stores_nothing(http: httpx.AsyncClient) -> None:
    response = await http.post("/probe/children/999999")

    assert response.status_code == 409
    assert (await http.get("/probe/counts")).json() == {"parents": 0, "children": 0}
    parent = await http.post("/probe/parents")
    assert (await http.post(f"/probe/children/{parent.json()['id']}")).status_code == 201
