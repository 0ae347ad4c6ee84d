"""Exceptions as RFC 9457 problem details (application/problem+json)."""

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm.exc import ObjectDeletedError, StaleDataError
from starlette.exceptions import HTTPException

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "1"


PROBLEM_MEDIA_TYPE = "application/problem+json"


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


class Problem(BaseModel):
    """An error (RFC 9457 problem details)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationProblem(Problem):
    """422: what in the request is not valid, one entry per field."""

    errors: list[FieldError]


def declare(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: the errors it answers besides those every route may (422 for a
    request that is not valid, 500, 503); the OpenAPI document gives them the Problem schema."""
    return {status: {"description": HTTPStatus(status).phrase} for status in statuses}


def problem(
    status: int, detail: str | None = None, headers: Mapping[str, str] | None = None, **extra: Any
) -> ProblemResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": HTTPStatus(status).phrase}
    body["status"] = status
    if detail is not None:
        body["detail"] = detail
    body.update(extra)
    return ProblemResponse(body, status_code=status, headers=headers)


# SQLSTATEs of transactions that lost a race and may succeed when tried again: serialization
# failure (40001) and deadlock (40P01).
CONFLICT_SQLSTATES = ("40001", "40P01")

# SQLSTATEs of a server that cannot serve now: connection exceptions (class 08) and shutdown or
# start-up (57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now, e.g. "the
# database system is starting up"); asyncpg reports them as plain errors, not OperationalError.
UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def sqlstate(exc: BaseException) -> str | None:
    code = getattr(exc.orig, "sqlstate", None) if isinstance(exc, DBAPIError) else None
    return code if isinstance(code, str) else None


def is_lost_race(exc: BaseException) -> bool:
    return sqlstate(exc) in CONFLICT_SQLSTATES


def is_database_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, PoolTimeoutError | TimeoutError | ConnectionError | OSError):
        return True
    if isinstance(exc, DBAPIError):
        code = sqlstate(exc)
        return (
            exc.connection_invalidated
            or isinstance(exc, OperationalError)
            or (code is not None and code.startswith(UNAVAILABLE_SQLSTATES))
        )
    return False


def problem_response_for(exc: BaseException) -> ProblemResponse:
    """The response for an exception no handler turned into an HTTP answer."""
    if isinstance(exc, HTTPException):
        return problem(exc.status_code, str(exc.detail), headers=exc.headers)
    if isinstance(exc, RequestValidationError):
        return problem(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            "The request is not valid.",
            errors=[
                {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}
                for error in exc.errors()
            ],
        )
    if isinstance(exc, IntegrityError):
        return problem(HTTPStatus.CONFLICT, "The request conflicts with data already stored.")
    if isinstance(exc, StaleDataError | ObjectDeletedError):
        # An UPDATE or DELETE matched no row: another request deleted it meanwhile.
        return problem(HTTPStatus.NOT_FOUND, "The resource was deleted meanwhile.")
    if is_lost_race(exc):
        return problem(
            HTTPStatus.CONFLICT,
            "The request conflicted with another one; try again.",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    if is_database_unavailable(exc):
        logger.warning("database unavailable: %r", exc)
        return problem(
            HTTPStatus.SERVICE_UNAVAILABLE,
            "The database is unavailable; try again shortly.",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    logger.error("unhandled error", exc_info=exc)
    return problem(HTTPStatus.INTERNAL_SERVER_ERROR, "An unexpected error occurred.")


async def handle_exception(_request: Request, exc: Exception) -> ProblemResponse:
    return problem_response_for(exc)


def install_error_handlers(app: FastAPI) -> None:
    for exception_class in (
        HTTPException,
        RequestValidationError,
        IntegrityError,
        StaleDataError,
        ObjectDeletedError,
        DBAPIError,
        PoolTimeoutError,
        TimeoutError,
        OSError,
        Exception,
    ):
        app.add_exception_handler(exception_class, handle_exception)
