"""The API's error boundary: every typed error it answers, mapped to HTTP in one table.

Why one table: a reader sees every status code the API can produce for a library
error in one screen, and a new error class is one row, not a new handler. Every
body is a problem (api/problems.py: RFC 9457 with the error's stable `code`, and
the request `field` to blame in `errors`); nothing from the request is echoed
back (a rejected URL may carry a signature). The handlers below also turn
FastAPI's request validation, Starlette's 404/405 and any unexpected exception
into the same shape, so no answer of the API has another one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from genblaze_s3.api.problems import CODE_BY_STATUS, FieldError, problem_response
from genblaze_s3.ingest.errors import (
    CountChangedError,
    DestinationNotAllowedError,
    EnqueueError,
    IdempotencyConflictError,
    IngestError,
    InvalidJobError,
    InvalidListingError,
    JobNotFoundError,
    JobNotRetryableError,
    StoreUnavailableError,
    TenantsConfigMismatchError,
    TooManyJobsError,
)

RETRY_AFTER_SECONDS = "5"  # what a client should wait after a 503 (store or broker down)


@dataclass(frozen=True)
class ErrorResponse:
    """How one error class answers: status, and a fixed detail (None: the error's text)."""

    status: int
    detail: str | None = None
    retry_after: bool = False


# Most specific first is not needed: these classes do not inherit from each other.
ERROR_RESPONSES: dict[type[IngestError], ErrorResponse] = {
    InvalidJobError: ErrorResponse(422),
    DestinationNotAllowedError: ErrorResponse(422),
    IdempotencyConflictError: ErrorResponse(409),  # as Stripe: a key names one request
    TooManyJobsError: ErrorResponse(429, retry_after=True),
    InvalidListingError: ErrorResponse(422),
    JobNotFoundError: ErrorResponse(404, "job not found"),  # also: not this tenant's
    JobNotRetryableError: ErrorResponse(409),
    CountChangedError: ErrorResponse(409),  # a bulk action's set moved since its dry run
    # Infrastructure: a fixed message, never the lower layer's (hosts, addresses).
    StoreUnavailableError: ErrorResponse(503, "status store unavailable", retry_after=True),
    # the deployment's configs differ (the API's tenants are not the workers'): the
    # operator's to fix, not the client's; the text names the setting, never a secret
    TenantsConfigMismatchError: ErrorResponse(503),
    EnqueueError: ErrorResponse(503, "broker unavailable", retry_after=True),
}


def problem(exc: IngestError, how: ErrorResponse) -> JSONResponse:
    """The problem response for `exc` answered as `how` (with the request `field` to blame)."""
    detail = how.detail if how.detail is not None else str(exc)
    field = getattr(exc, "field", None)
    return problem_response(
        how.status,
        detail,
        exc.code,
        errors=[FieldError(field=field, message=detail)] if field else None,
        headers={"Retry-After": RETRY_AFTER_SECONDS} if how.retry_after else None,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register ERROR_RESPONSES and the handlers that give every other error the same shape."""
    for cls, how in ERROR_RESPONSES.items():

        async def handler(_: Request, exc: Exception, how: ErrorResponse = how) -> JSONResponse:
            assert isinstance(exc, IngestError)
            return problem(exc, how)

        app.add_exception_handler(cls, handler)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


def field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    """A pydantic error location as the client wrote it: `assets.0.url`, `cursor`, `body`."""
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] in {"body", "query", "path", "header", "cookie"}:
        if parts[0] == "body" and all(p.isdigit() for p in parts[1:]):
            return "body"  # a JSON decode error: (body, position)
        parts = parts[1:]
    return ".".join(parts) or "body"


SPLIT_HINT = (
    "split the URLs into several jobs (`genblaze-ingest submit --from-file` does; "
    "GET /v1/limits gives your tenant's limit)"
)


def _msg(error: Any) -> str:
    """pydantic's message, plus how to fix it where we know (a too long asset list)."""
    msg = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if error.get("type") == "too_long" and list(error.get("loc", ()))[-1:] == ["assets"]:
        msg = f"{msg}: {SPLIT_HINT}"
    return msg


async def _invalid_request(_: Request, exc: Exception) -> JSONResponse:
    """422 listing where the request is wrong; never the submitted values."""
    assert isinstance(exc, RequestValidationError)
    errors = [FieldError(field=field_name(e.get("loc", ())), message=_msg(e)) for e in exc.errors()]
    first = errors[0] if errors else FieldError(field="body", message="invalid request")
    detail = f"{first.field}: {first.message}"
    if len(errors) > 1:
        detail += f" (and {len(errors) - 1} more invalid field(s))"
    return problem_response(422, detail, "invalid_request", errors=errors)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's and the routes' HTTPExceptions (404 route, 405, 401, 429) as problems."""
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request)
    if exc.status_code < 400:  # the /ui page's "sign in first" redirect
        return Response(status_code=exc.status_code, headers=headers)
    detail = str(exc.detail)
    code = CODE_BY_STATUS.get(exc.status_code)
    return problem_response(exc.status_code, detail, code, headers=headers)


def allowed_methods(request: Request) -> str:
    """Every method some route of this path answers (Starlette names only the first
    route's: `GET /v1/jobs` and `POST /v1/jobs` are two routes)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    """A bug: 500 in the same shape, with no detail of it (Starlette logs the traceback)."""
    return problem_response(500, "internal error", "internal_error")
