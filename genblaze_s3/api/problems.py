"""The one error body of the API: RFC 9457 problem details with a stable `code`.

Why one shape: clients used to meet three (`detail` a string, `detail` a list of
pydantic errors, Starlette's plain-text 404/405), and the OpenAPI document
described none of them exactly. Every 4xx and 5xx the API sends, from a route,
the body guard, FastAPI's request validation or Starlette's router, is built
here, as ``application/problem+json``::

    {"type": "about:blank", "title": "Unprocessable Content", "status": 422,
     "detail": "assets.0.url has no host", "code": "invalid_job",
     "errors": [{"field": "assets.0.url", "message": "assets.0.url has no host"}]}

`code` is what programs branch on; `detail` is for people and never echoes a
submitted value (a refused URL may carry a signature); `errors` lists the
request fields to blame, when some are.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

PROBLEM_MEDIA_TYPE = "application/problem+json"

# The code of an error that has no more specific one (Starlette's, FastAPI's, the guard's).
CODE_BY_STATUS: dict[int, str] = {
    400: "invalid_body",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class FieldError(BaseModel):
    """One request field to blame: where it is (dotted, as sent) and what is wrong."""

    field: str = Field(description="dotted path in the request: `assets.0.url`, `cursor`")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, the body of every 4xx and 5xx answer."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(default="about:blank", description="always about:blank: see `code`")
    title: str = Field(description="the HTTP status phrase")
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="what went wrong, for people; never echoes submitted values")
    code: str = Field(description="stable, machine-readable: `invalid_cursor`, `job_not_found`...")
    errors: list[FieldError] | None = Field(
        default=None, description="the request fields to blame (validation errors)"
    )


def problem_body(
    status: int,
    detail: str,
    code: str | None = None,
    *,
    errors: Sequence[FieldError] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON object of a problem (``code`` defaults to the status's)."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _title(status),
        "status": status,
        "detail": detail,
        "code": code or CODE_BY_STATUS.get(status, "error"),
    }
    if errors:
        body["errors"] = [e.model_dump() for e in errors]
    if extra:
        body.update(extra)
    return body


def problem_response(
    status: int,
    detail: str,
    code: str | None = None,
    *,
    errors: Sequence[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """A problem as a response (``application/problem+json``)."""
    return JSONResponse(
        problem_body(status, detail, code, errors=errors, extra=extra),
        status_code=status,
        headers=dict(headers) if headers else None,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def problem_bytes(status: int, detail: str, code: str | None = None) -> bytes:
    """A problem's body for code that answers below FastAPI (the ASGI body guard)."""
    return json.dumps(problem_body(status, detail, code), separators=(",", ":")).encode()


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
