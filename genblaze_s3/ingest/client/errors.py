"""The typed error tree of the HTTP clients, mapped once from the API's answers.

One root (`IngestAPIError`, an `IngestError`); each class says what happened
(unreachable, unauthorized, not found, conflict, invalid, rate limited, unavailable,
not a genblaze API) and keeps the API's stable `code`. `parse_api_url` refuses an API
URL without a scheme before any request is made.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from genblaze_s3.ingest.errors import IngestError, JobNotFoundError


class IngestAPIError(IngestError):
    """The API answered with an error (or could not be reached)."""

    code = "api_error"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        if code:
            self.code = code


class APIUnreachableError(IngestAPIError, ConnectionError):
    """No answer from the API: wrong URL, not running, or the network is down."""

    code = "api_unreachable"


class UnauthorizedError(IngestAPIError, PermissionError):
    """401/403: the token is missing, wrong, or not allowed."""

    code = "unauthorized"


class JobNotFoundAPIError(IngestAPIError, JobNotFoundError):
    """404: no such job for this tenant (another tenant's job answers the same)."""

    code = "job_not_found"


class ConflictError(IngestAPIError):
    """409: the job's state forbids it (cancel a finished job, retry a running one)."""

    code = "conflict"


class InvalidRequestError(IngestAPIError, ValueError):
    """422: the request was refused as invalid; the message says what to change."""

    code = "invalid_request"


class RateLimitedError(IngestAPIError):
    """429: this token is over its request rate; retry after `retry_after` seconds."""

    code = "rate_limited"


class ServiceUnavailableError(IngestAPIError):
    """503: the API runs but its store or broker does not answer; retry later."""

    code = "service_unavailable"


class NotGenblazeAPIError(IngestAPIError):
    """Something answers at the URL, but not the genblaze ingest API (another web server,
    a wrong port or path): its answers lack the API's JSON bodies."""

    code = "not_genblaze_api"


class InvalidAPIURLError(IngestAPIError, ValueError):
    """The API URL is not `http(s)://host[:port]` (e.g. `127.0.0.1:8000` lacks `http://`)."""

    code = "invalid_api_url"


def parse_api_url(url: str) -> str:
    """`url` checked once, at the boundary: `http(s)://host[:port][/path]`, no trailing
    slash. Raises InvalidAPIURLError saying what to write instead."""
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        hint = f"; did you mean http://{text}?" if "://" not in text and text else ""
        raise InvalidAPIURLError(
            f"API URL {text!r} must look like http://host:port or https://host{hint}"
        )
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError:
        raise InvalidAPIURLError(f"API URL {text!r} has an invalid port") from None
    if parts.query or parts.fragment or parts.username or parts.password:
        raise InvalidAPIURLError(
            f"API URL {text!r} must carry no query, fragment or credentials "
            "(the token goes in GENBLAZE_API_TOKEN)"
        )
    return text.rstrip("/")


_BY_STATUS: dict[int, type[IngestAPIError]] = {
    401: UnauthorizedError,
    403: UnauthorizedError,
    404: JobNotFoundAPIError,
    409: ConflictError,
    422: InvalidRequestError,
    429: RateLimitedError,
    503: ServiceUnavailableError,
}


def not_genblaze(response: httpx.Response, what: str) -> NotGenblazeAPIError:
    url = response.request.url
    return NotGenblazeAPIError(
        f"{url.scheme}://{url.netloc.decode()} is not a genblaze ingest API: {what} "
        f"for {response.request.method} {url.path}; check GENBLAZE_API_URL or --api-url",
        status=response.status_code,
    )


def error_for(response: httpx.Response) -> IngestAPIError:
    """The typed error for a non-2xx answer, its message the server's `detail`.

    Every 4xx of the API carries a JSON `{"detail": ...}` body; a 4xx without one comes
    from some other server (a static file server's `404: File not found` is not "no such
    job"), so it is a NotGenblazeAPIError. 5xx stay API errors: a proxy or our own
    unhandled error answers those in plain text too.
    """
    detail: Any = response.reason_phrase
    code = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "detail" in body:
        detail = body["detail"]
        code = body.get("code")
    elif 400 <= response.status_code < 500:
        return not_genblaze(response, f"it answered {response.status_code} {detail}")
    if isinstance(detail, list):  # schema errors: say where, never echo values
        detail = "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg', '')}" for d in detail
        )
    cls = _BY_STATUS.get(response.status_code, IngestAPIError)
    return cls(f"{response.status_code}: {detail}", status=response.status_code, code=code)
