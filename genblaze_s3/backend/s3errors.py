"""S3 error codes: the one place that reads a botocore ``ClientError``'s code and status.

The sync and async backends (is a HEAD miss an answer or a failure?), the bucket
preflight (a 301 names the bucket's region in a header) and the copy engine
(retry this part? did a lost CompleteMultipartUpload already succeed?) ask the
same questions of the same errors; answering them here keeps the sets of codes
from drifting apart. Only botocore's exception *types* are imported, so this
module costs nothing to import; aiobotocore raises the same ``ClientError``.
"""

from __future__ import annotations

from typing import Any

import botocore.exceptions as bce

# "The key is not there". HEAD answers carry no body, so botocore reports the
# bare status ("404") as the code.
NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
# "You may not see it". Least-privilege keys (B2, AWS without s3:ListBucket)
# get 403 for a missing key, so a HEAD miss can look like either.
ACCESS_DENIED_CODES = frozenset({"403", "AccessDenied", "Forbidden"})
# The multipart upload was completed or aborted already (or never existed).
NO_SUCH_UPLOAD = "NoSuchUpload"

# Transient on the server side, or throttling: the same request may succeed later.
RETRYABLE_CODES = frozenset(
    {
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "500",
        "502",
        "503",
        "504",
    }
)

# Errors below the HTTP layer (connection refused or reset, timeouts, a body cut
# short): the request never got an S3 answer, so sending it again may work.
_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    bce.ConnectionError,
    bce.HTTPClientError,
    bce.ReadTimeoutError,
    bce.IncompleteReadError,
    bce.ResponseStreamingError,
    ConnectionError,
    TimeoutError,
    OSError,
)


def _response(exc: BaseException) -> dict[str, Any] | None:
    # Duck-typed so a ClientError re-raised by s3transfer or aiobotocore reads the same.
    response = getattr(exc, "response", None)
    return response if isinstance(response, dict) else None


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of an S3 error answer, else ``None`` (no answer was received)."""
    response = _response(exc)
    if response is None:
        return None
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else None


def error_code(exc: BaseException) -> str | None:
    """The S3 error code (``NoSuchKey``, ``SlowDown``...), else the HTTP status as text.

    ``None`` when ``exc`` carries no S3 answer at all (a network error, a bug).
    """
    response = _response(exc)
    if response is None:
        return None
    code = (response.get("Error") or {}).get("Code")
    if code:
        return str(code)
    status = http_status(exc)
    return str(status) if status else None


def response_headers(exc: BaseException) -> dict[str, str]:
    """The HTTP headers of an S3 error answer (``{}`` when there was none)."""
    response = _response(exc) or {}
    return dict((response.get("ResponseMetadata") or {}).get("HTTPHeaders") or {})


def is_not_found(exc: BaseException) -> bool:
    """The store answered that the key (or upload) does not exist."""
    return error_code(exc) in NOT_FOUND_CODES or http_status(exc) == 404


def is_access_denied(exc: BaseException) -> bool:
    """The store refused to say: 403 / AccessDenied."""
    return error_code(exc) in ACCESS_DENIED_CODES or http_status(exc) == 403


def is_absent(exc: BaseException) -> bool:
    """A HEAD miss: not found, or hidden from these credentials (counted as absent)."""
    return is_not_found(exc) or is_access_denied(exc)


def is_retryable(exc: BaseException) -> bool:
    """Whether sending the same S3 request again may succeed (5xx, throttling, network)."""
    if _response(exc) is not None:
        code, status = error_code(exc), http_status(exc) or 0
        if code == "NotImplemented" or status == 501:
            return False  # a missing feature does not appear on retry
        return code in RETRYABLE_CODES or status >= 500
    return isinstance(exc, _TRANSPORT_ERRORS)


__all__ = [
    "ACCESS_DENIED_CODES",
    "NOT_FOUND_CODES",
    "NO_SUCH_UPLOAD",
    "RETRYABLE_CODES",
    "error_code",
    "http_status",
    "is_absent",
    "is_access_denied",
    "is_not_found",
    "is_retryable",
    "response_headers",
]
