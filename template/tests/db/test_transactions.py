"""What reaches the database, and what the client is told, on each path through the strategy."""

from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.support.probe import Child, Parent, probe_counts


async def test_a_write_is_visible_to_the_next_request(committing_client: AsyncClient) -> None:
    created = await committing_client.post("/probe/parents")

    assert created.status_code == 201
    fetched = await committing_client.get(f"/probe/parents/{created.json()['id']}")
    assert fetched.status_code == 200


async def test_a_failing_commit_is_an_error_and_stores_nothing(
    committing_client: AsyncClient,
) -> None:
    missing_parent_id = 999_999

    response = await committing_client.post(f"/probe/children/{missing_parent_id}")

    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 409
    assert await probe_counts(committing_client) == {"parents": 0, "children": 0}
    after = await committing_client.post("/probe/parents")
    assert after.status_code == 201
    assert await probe_counts(committing_client) == {"parents": 1, "children": 0}


async def test_a_commit_that_succeeds_stores_the_row(
    committing_client: AsyncClient,
) -> None:
    parent = await committing_client.post("/probe/parents")

    response = await committing_client.post(f"/probe/children/{parent.json()['id']}")

    assert response.status_code == 201
    assert await probe_counts(committing_client) == {"parents": 1, "children": 1}


async def test_an_exception_after_writing_rolls_back(
    client: AsyncClient, session: AsyncSession
) -> None:
    response = await client.post("/probe/parents/then-crash")

    assert response.status_code == 500
    assert response.json()["detail"] == "An unexpected error occurred."
    assert await session.scalar(select(func.count()).select_from(Parent)) == 0


async def test_an_error_response_after_writing_rolls_back(
    client: AsyncClient, session: AsyncSession
) -> None:
    response = await client.post("/probe/parents/then-refuse")

    assert response.status_code == 400
    assert response.json()["detail"] == "refused after writing"
    assert await session.scalar(select(func.count()).select_from(Parent)) == 0


async def test_each_test_starts_from_an_empty_database(
    client: AsyncClient, session: AsyncSession
) -> None:
    await client.post("/probe/parents")

    assert await session.scalar(select(func.count()).select_from(Parent)) == 1
    assert await session.scalar(select(func.count()).select_from(Child)) == 0


async def test_rows_from_the_previous_test_are_gone(session: AsyncSession) -> None:
    assert await session.scalar(select(func.count()).select_from(Parent)) == 0
