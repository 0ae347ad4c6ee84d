"""Edits of one item that race each other never answer 500: a row gone underneath a request is a
404, a conflict 409 with Retry-After."""

import asyncio

from httpx import AsyncClient, Response

ROUNDS = 25


def assert_answered(response: Response, *allowed: int) -> None:
    assert response.status_code in allowed, (response.status_code, response.text)
    if response.status_code == 409:
        assert response.headers["retry-after"]


async def race(
    client: AsyncClient,
    first: tuple[str, dict[str, int] | None],
    second: tuple[str, dict[str, int] | None],
) -> tuple[int, Response, Response]:
    """A new item, then two requests on it at once: (method, JSON body or None) each."""
    created = await client.post("/items", json={"name": "x", "price_cents": 1})
    item = created.json()["id"]
    answers = await asyncio.gather(
        *(client.request(method, f"/items/{item}", json=body) for method, body in (first, second))
    )
    return item, answers[0], answers[1]


async def test_delete_and_patch_of_one_item_together(committing_client: AsyncClient) -> None:
    for _ in range(ROUNDS):
        item, deleted, patched = await race(
            committing_client, ("DELETE", None), ("PATCH", {"stock": 5})
        )
        assert_answered(deleted, 204, 404, 409)
        assert_answered(patched, 200, 404, 409)
        assert (await committing_client.get(f"/items/{item}")).status_code in (200, 404)


async def test_two_deletes_of_one_item_together(committing_client: AsyncClient) -> None:
    for _ in range(ROUNDS):
        item, first, second = await race(committing_client, ("DELETE", None), ("DELETE", None))
        assert_answered(first, 204, 404, 409)
        assert_answered(second, 204, 404, 409)
        assert 204 in (first.status_code, second.status_code)
        assert (await committing_client.get(f"/items/{item}")).status_code == 404
