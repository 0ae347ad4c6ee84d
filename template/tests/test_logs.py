"""What the service logs, served as in production: one JSON object per line, the request id on
every line of a request and on its answer."""

import re
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter

from tests.support.production import is_access_line, log_lines, wait_for_line

GENERATED_ID = re.compile(r"[0-9a-f]{32}")

failing = APIRouter()


@failing.get("/failing")
async def fail() -> None:
    raise RuntimeError("a bug")


@pytest.fixture
def routers() -> tuple[APIRouter, ...]:
    return (failing,)


def test_a_request_id_is_echoed_in_the_answer_the_problem_and_the_access_line(
    production_server: tuple[str, Path],
) -> None:
    url, log = production_server

    response = httpx.get(f"{url}/no-such-page", headers={"X-Request-ID": "edge-7f3a.1"})

    assert response.headers["x-request-id"] == "edge-7f3a.1"
    assert response.json()["request_id"] == "edge-7f3a.1"
    access = wait_for_line(log, lambda line: is_access_line(line, "edge-7f3a.1"))
    assert access["level"] == "INFO"
    assert (access["method"], access["path"], access["status"]) == ("GET", "/no-such-page", 404)
    assert isinstance(access["duration_ms"], float)
    assert datetime.fromisoformat(access["time"]).tzinfo is not None


def test_every_line_has_the_same_fields(production_server: tuple[str, Path]) -> None:
    url, log = production_server
    httpx.get(f"{url}/health/ready", headers={"X-Request-ID": "fields-check"})
    wait_for_line(log, lambda line: is_access_line(line, "fields-check"))

    lines = log_lines(log)

    assert any(line["message"].startswith("Uvicorn running") for line in lines)
    for line in lines:
        assert {"time", "level", "logger", "message", "request_id"} <= set(line), line


def test_a_request_id_that_is_not_sane_is_replaced(production_server: tuple[str, Path]) -> None:
    url, _log = production_server
    for sent in (b"x" * 200, b"a b", "é".encode(), b"<script>"):
        response = httpx.get(f"{url}/health/live", headers={b"X-Request-ID": sent})
        assert GENERATED_ID.fullmatch(response.headers["x-request-id"]), sent


def test_each_request_without_an_id_gets_its_own(production_server: tuple[str, Path]) -> None:
    url, _log = production_server
    ids = {httpx.get(f"{url}/health/live").headers["x-request-id"] for _ in range(3)}

    assert len(ids) == 3
    assert all(GENERATED_ID.fullmatch(request_id) for request_id in ids)


def test_sql_lines_at_debug_carry_the_request_id_and_no_parameters(
    production_server: tuple[str, Path],
) -> None:
    url, log = production_server
    httpx.get(f"{url}/health/ready", headers={"X-Request-ID": "sql-lines"})
    wait_for_line(log, lambda line: is_access_line(line, "sql-lines"))

    sql = [
        line
        for line in log_lines(log)
        if line["request_id"] == "sql-lines" and line["logger"].startswith("sqlalchemy.engine")
    ]

    assert any("SELECT 1" in line["message"] for line in sql), sql
    parameters = [line["message"] for line in sql if line["message"].startswith("[")]
    assert parameters, sql
    assert all("parameters hidden" in message for message in parameters), sql


async def test_an_unexpected_error_answers_its_request_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/failing", headers={"X-Request-ID": "bug-report-1"})

    assert response.status_code == 500
    assert response.headers["x-request-id"] == "bug-report-1"
    assert response.json()["request_id"] == "bug-report-1"
