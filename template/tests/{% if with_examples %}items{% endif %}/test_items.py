from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.support.probe import Parent


async def create_item(client: AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"name": "Teapot", "price_cents": 1999, "stock": 5} | fields
    response = await client.post("/items", json=body)
    assert response.status_code == 201, response.text
    item: dict[str, Any] = response.json()
    return item


async def test_create_then_read_an_item(client: AsyncClient) -> None:
    created = await create_item(client)

    response = await client.get(f"/items/{created['id']}")

    assert response.status_code == 200
    assert response.json() == created
    assert created["name"] == "Teapot"
    assert created["price_cents"] == 1999
    assert created["stock"] == 5
    assert created["created_at"]


async def test_list_items_pages_in_id_order(client: AsyncClient) -> None:
    ids = [(await create_item(client, name=f"Item {n}"))["id"] for n in range(5)]

    first = await client.get("/items", params={"limit": 2})
    rest = await client.get("/items", params={"limit": 10, "offset": 2})

    assert [item["id"] for item in first.json()] == ids[:2]
    assert [item["id"] for item in rest.json()] == ids[2:]


async def test_update_changes_only_the_given_fields(client: AsyncClient) -> None:
    item = await create_item(client)

    response = await client.patch(f"/items/{item['id']}", json={"stock": 2})

    assert response.status_code == 200
    assert response.json() == item | {"stock": 2}


async def test_delete_removes_the_item(client: AsyncClient) -> None:
    item = await create_item(client)

    deleted = await client.delete(f"/items/{item['id']}")
    fetched = await client.get(f"/items/{item['id']}")

    assert deleted.status_code == 204
    assert fetched.status_code == 404


async def test_a_missing_item_is_a_404_problem(client: AsyncClient) -> None:
    response = await client.get("/items/424242")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "Item 424242 does not exist.",
        "request_id": response.headers["x-request-id"],
    }


async def test_a_duplicate_name_is_a_409_and_stores_nothing_more(client: AsyncClient) -> None:
    await create_item(client, name="Unique")

    response = await client.post("/items", json={"name": "Unique", "price_cents": 1})
    listing = await client.get("/items")

    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert [item["name"] for item in listing.json()] == ["Unique"]


@pytest.mark.parametrize(
    "body",
    [
        {"name": "", "price_cents": 1},
        {"name": "Negative", "price_cents": -1},
        {"name": "Wrong type", "price_cents": "ten"},
        {"name": "Unknown field", "price_cents": 1, "colour": "red"},
        {"price_cents": 1},
        {"name": "NUL \u0000 inside", "price_cents": 1},
        {"name": "Bell \u0007", "price_cents": 1},
        {"name": "Unassigned \U000e0080", "price_cents": 1},
        {"name": " \t ", "price_cents": 1},
        {"name": "Boolean price", "price_cents": True},
        {"name": "Quoted price", "price_cents": "12"},
        {"name": "Fractional stock", "price_cents": 1, "stock": 1.5},
    ],
    ids=[
        "empty-name",
        "negative-price",
        "wrong-type",
        "unknown-field",
        "missing-name",
        "nul",
        "control-character",
        "unassigned-code-point",
        "only-spaces",
        "boolean-as-number",
        "string-as-number",
        "fraction-as-integer",
    ],
)
async def test_invalid_items_are_422_problems(
    client: AsyncClient, session: AsyncSession, body: dict[str, Any]
) -> None:
    response = await client.post("/items", json=body)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"]
    listing = await client.get("/items")
    assert listing.json() == []


@pytest.mark.parametrize("item_id", ["0", "2147483648", "9223372036854775808"])
async def test_out_of_range_ids_are_422_not_500(client: AsyncClient, item_id: str) -> None:
    responses = [
        await client.get(f"/items/{item_id}"),
        await client.patch(f"/items/{item_id}", json={"stock": 1}),
        await client.delete(f"/items/{item_id}"),
    ]

    assert [response.status_code for response in responses] == [422, 422, 422]


@pytest.mark.parametrize("field", ["name", "price_cents", "stock"])
async def test_null_is_refused_in_an_update(client: AsyncClient, field: str) -> None:
    item = await create_item(client)

    response = await client.patch(f"/items/{item['id']}", json={field: None})

    assert response.status_code == 422
    assert (await client.get(f"/items/{item['id']}")).json() == item


async def test_names_are_trimmed(client: AsyncClient) -> None:
    item = await create_item(client, name="  Teapot \n")

    assert item["name"] == "Teapot"


async def test_a_deleted_item_answers_204_without_a_body_and_then_404(
    client: AsyncClient,
) -> None:
    item = await create_item(client)

    deleted = await client.delete(f"/items/{item['id']}")
    again = await client.delete(f"/items/{item['id']}")

    assert deleted.status_code == 204
    assert deleted.content == b""
    assert "content-type" not in deleted.headers
    assert again.status_code == 404


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"offset": -1}])
async def test_out_of_range_pagination_is_a_422(
    client: AsyncClient, params: dict[str, int]
) -> None:
    response = await client.get("/items", params=params)

    assert response.status_code == 422


async def test_items_and_probe_rows_do_not_leak_between_tests(session: AsyncSession) -> None:
    assert await session.scalar(select(func.count()).select_from(Parent)) == 0
