"""Edits of one item that race each other never answer 500: a row gone underneath a request is a
404, a conflict 409 with Retry-After."""

import asyncio

from httpx import AsyncClient, Response

ROUNDS = 25


def assert_answered(response: Response, *allowed: int) -> None:
    assert response.status_code in allowed, (response.status_code, response.text)
    if response.status_code == 409:
        assert response.headers["retry-after"]


async def test_delete_and_patch_of_one_item_together(committing_client: AsyncClient) -> None:
    for _ in range(ROUNDS):
        created = await committing_client.post("/items", json={"name": "x", "price_cents": 1})
        item = created.json()["id"]
        deleted, patched = await asyncio.gather(
            committing_client.delete(f"/items/{item}"),
            committing_client.patch(f"/items/{item}", json={"stock": 5}),
        )
        assert_answered(deleted, 204, 404, 409)
        assert_answered(patched, 200, 404, 409)
        assert (await committing_client.get(f"/items/{item}")).status_code in (200, 404)


async def test_two_deletes_of_one_item_together(committing_client: AsyncClient) -> None:
    for _ in range(ROUNDS):
        created = await committing_client.post("/items", json={"name": "x", "price_cents": 1})
        item = created.json()["id"]
        first, second = await asyncio.gather(
            committing_client.delete(f"/items/{item}"),
            committing_client.delete(f"/items/{item}"),
        )
        assert_answered(first, 204, 404, 409)
        assert_answered(second, 204, 404, 409)
        assert 204 in (first.status_code, second.status_code)
        assert (await committing_client.get(f"/items/{item}")).status_code == 404
