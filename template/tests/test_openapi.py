"""The OpenAPI document tells the truth about errors, and the docs pages work offline: their
assets come from the service itself."""

import re

import pytest
from httpx import AsyncClient

ASSET = re.compile(r"""(?:src|href)=["']?([^"' >]+)""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_load_every_asset_from_the_service(client: AsyncClient, page: str) -> None:
    response = await client.get(page)

    assert response.status_code == 200
    assets = ASSET.findall(response.text)
    assert assets, response.text
    assert all(asset.startswith("/docs-assets/") for asset in assets), assets
    assert "https://" not in response.text
    for asset in assets:
        loaded = await client.get(asset)
        assert loaded.status_code == 200, asset
        assert "max-age=" in loaded.headers["cache-control"]


async def test_every_error_is_documented_as_problem_details(client: AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert set(schemas["ValidationProblem"]["required"]) >= {"title", "status", "errors"}

    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            where = f"{method.upper()} {path}"
            assert {"500", "503"} <= set(responses), where
            for status, response in responses.items():
                if int(status) >= 400:
                    assert list(response["content"]) == ["application/problem+json"], where
                    schema = response["content"]["application/problem+json"]["schema"]
                    model = "ValidationProblem" if status == "422" else "Problem"
                    assert schema == {"$ref": f"#/components/schemas/{model}"}, where


async def test_an_unknown_path_is_a_404_problem(client: AsyncClient) -> None:
    response = await client.get("/no-such-page")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert set(response.json()) <= {"type", "title", "status", "detail", "request_id"}
