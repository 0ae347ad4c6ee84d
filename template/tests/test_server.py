"""The application served by uvicorn, over real HTTP, against the test database."""

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.app import empty_all_tables
from tests.support.server import served


@pytest.fixture(scope="module")
def server_url(database_url: str, engine: AsyncEngine) -> Iterator[str]:
    del engine  # requested for the schema it builds
    with served("tests.support.app:create_test_app", database_url) as url:
        yield url


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
