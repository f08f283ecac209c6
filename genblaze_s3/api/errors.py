"""The API's error boundary: every typed error it answers, mapped to HTTP in one table.

Why one table: a reader sees every status code the API can produce for a library
error in one screen, and a new error class is one row, not a new handler. The body
is always ``{"detail": ..., "code": ...}`` (the `Problem` schema) with the error's
stable `code`; nothing from the request is echoed back (a rejected URL may carry a
signature).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from genblaze_s3.ingest.errors import (
    CountChangedError,
    DestinationNotAllowedError,
    EnqueueError,
    IdempotencyConflictError,
    IngestError,
    InvalidJobError,
    InvalidListingError,
    JobNotRetryableError,
    StoreUnavailableError,
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
    JobNotRetryableError: ErrorResponse(409),
    CountChangedError: ErrorResponse(409),  # a bulk action's set moved since its dry run
    # Infrastructure: a fixed message, never the lower layer's (hosts, addresses).
    StoreUnavailableError: ErrorResponse(503, "status store unavailable", retry_after=True),
    EnqueueError: ErrorResponse(503, "broker unavailable", retry_after=True),
}


def problem(exc: IngestError, how: ErrorResponse) -> JSONResponse:
    """The JSON response for `exc` answered as `how` (with the request `field` to blame)."""
    body = {"detail": how.detail if how.detail is not None else str(exc), "code": exc.code}
    if getattr(exc, "field", None):
        body["field"] = exc.field  # type: ignore[attr-defined]
    return JSONResponse(
        body,
        status_code=how.status,
        headers={"Retry-After": RETRY_AFTER_SECONDS} if how.retry_after else None,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register ERROR_RESPONSES and the request-schema handler on `app`."""
    for cls, how in ERROR_RESPONSES.items():

        async def handler(_: Request, exc: Exception, how: ErrorResponse = how) -> JSONResponse:
            assert isinstance(exc, IngestError)
            return problem(exc, how)

        app.add_exception_handler(cls, handler)
    app.add_exception_handler(RequestValidationError, _invalid_request)


SPLIT_HINT = (
    "split the URLs into several jobs (`genblaze-ingest submit --from-file` does; "
    "GET /v1/limits gives your tenant's limit)"
)


def _msg(error: Any) -> str:
    """pydantic's message, plus how to fix it where we know (a too long asset list)."""
    msg = str(error.get("msg", ""))
    if error.get("type") == "too_long" and list(error.get("loc", ()))[-1:] == ["assets"]:
        msg = f"{msg}: {SPLIT_HINT}"
    return msg


async def _invalid_request(_: Request, exc: Exception) -> JSONResponse:
    """422 listing where the request is wrong; never the submitted values."""
    assert isinstance(exc, RequestValidationError)
    detail = [
        {"loc": list(e.get("loc", ())), "msg": _msg(e), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    return JSONResponse({"detail": detail, "code": "invalid_request"}, status_code=422)
