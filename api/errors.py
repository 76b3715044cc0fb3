"""Every refusal as a JSON problem body ``{code, message, ...}`` with the right status.

Domain errors keep their own stable codes; this module only decides the HTTP status for
each, in one table, and makes sure nothing (validation, 404 routes, crashes) escapes as
anything else.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import metrics
from domain import errors as domain
from encore.settings import BODY_BYTES_MAX

log = logging.getLogger(__name__)

STATUS_BY_DOMAIN_ERROR: dict[type[domain.Refusal], int] = {
    domain.InvalidSeats: 422,
    domain.SeatsSpanBlocks: 422,
    domain.TooManySeats: 422,
    domain.SeatUnavailable: 409,
    domain.BookingNotFound: 404,
    domain.PaymentNotFound: 404,
    domain.BookingNotHeld: 409,
    domain.StoreUnavailable: 503,
    domain.Overloaded: 503,
    domain.QueueFull: 503,
}

UNAVAILABLE_RETRY_AFTER_SECONDS = "2"

CODE_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "unavailable",
}


class ApiError(Exception):
    """An HTTP refusal with a stable ``code``; extra keyword arguments join the body."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None, /, **extra):
        super().__init__(message)
        self.status, self.code, self.message, self.headers, self.extra = status, code, message, headers, extra


def invalid_request(errors: list[dict]) -> ApiError:
    """422 ``validation_error`` listing what is wrong (``loc``, ``msg``), FastAPI's or ours."""
    details = [{"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in errors[:20]]
    return ApiError(422, "validation_error", "the request is not valid", errors=details)


def problem(status: int, code: str, message: str, headers: dict[str, str] | None = None, /, **extra) -> JSONResponse:
    return JSONResponse(problem_body(status, code, message, **extra), status_code=status, headers=headers)


def problem_body(status: int, code: str, message: str, /, **extra) -> dict:
    """Every problem answered is built here, and counted for ``/metrics``."""
    metrics.replica_metrics.count_problem(status, code)
    return {"code": code, "message": message, **extra}


def from_domain(error: domain.Refusal) -> ApiError:
    """Raised in an actor, the error arrives as a Ray subclass of its own class: walk the MRO.
    A 503 says when to try again: a store that is down is usually back within seconds."""
    status = next((STATUS_BY_DOMAIN_ERROR[c] for c in type(error).__mro__ if c in STATUS_BY_DOMAIN_ERROR), 409)
    headers = {"Retry-After": UNAVAILABLE_RETRY_AFTER_SECONDS} if status == 503 else None
    return ApiError(status, error.code, error.message, headers, **error.extra)


def answer_for(error: Exception, method: str = "", path: str = "") -> JSONResponse:
    """The problem body for any error a request raised: ours, the domain's or a crash."""
    if isinstance(error, ApiError):
        return problem(error.status, error.code, error.message, error.headers, **error.extra)
    if isinstance(error, domain.Refusal):
        api = from_domain(error)
        return problem(api.status, api.code, api.message, api.headers, **api.extra)
    log.error("unhandled error on %s %s", method, path, exc_info=error)
    return problem(500, "internal_error", "something went wrong on our side")


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    @app.exception_handler(domain.Refusal)
    @app.exception_handler(Exception)
    async def _answer(request: Request, error: Exception):
        return answer_for(error, request.method, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError):
        return answer_for(invalid_request(list(error.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException):
        code = CODE_BY_STATUS.get(error.status_code, "error")
        return problem(error.status_code, code, str(error.detail), getattr(error, "headers", None))


TOO_LARGE_MESSAGE = f"request bodies are at most {BODY_BYTES_MAX} bytes"


class BodyTooLarge(StarletteHTTPException):
    """Raised by the counting ``receive`` of ``api.edge.BoundAndMeasured``. An ``HTTPException``, so that
    FastAPI, reading a body for a route, passes it on as 413 instead of "could not parse"."""

    def __init__(self):
        super().__init__(413, TOO_LARGE_MESSAGE)


def too_large() -> JSONResponse:
    return problem(413, "body_too_large", TOO_LARGE_MESSAGE)
