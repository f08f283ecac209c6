"""One exception tree for the copy engine, and the one place lower errors are mapped.

Why: Celery retry decisions, job status and the HTTP API read ``code`` and
``retryable``, never an exception's text. Every error a copy can raise is a
:class:`TransferError` with a stable ``code``; :func:`map_source_error` and
:func:`map_storage_error` are the only places that look at requests / urllib3 /
botocore / socket exceptions (most specific first, like httpx's ``map_exceptions``);
S3 error codes are read by the backend's :mod:`~genblaze_s3.backend.s3errors`.
Messages never include URL query strings (presigned signatures are secrets).
"""

from __future__ import annotations

import http.client
import socket
import ssl
from typing import ClassVar

from genblaze_s3.backend import s3errors

# S3 error codes are read in one place, the backend's s3errors: the backend and the
# copy engine ask the same questions of the same botocore errors.
s3_error_code = s3errors.error_code


class CheckpointStoreUnavailable(Exception):  # noqa: N818 (a condition, like CopyPaused)
    """The checkpoint store cannot be reached: not the copy's failure, nor the object
    store's. The engine lets it through untouched (never mapped to a storage or source
    error) and keeps the multipart upload, so the caller can hand the work back and a
    later delivery resumes. A ``CheckpointStore`` raises a subclass for its outages."""


class TransferError(Exception):
    """Base of every copy-engine error; ``code`` is stable and safe to show users."""

    code: ClassVar[str] = "transfer_error"
    retryable: bool = False
    status: int | None = None  # the source's HTTP status, when an answer caused it
    retry_after: float | None = None  # seconds the source asked us to wait (Retry-After)

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, retryable={self.retryable})"


class InvalidURL(TransferError):
    """The URL is malformed, too long, has userinfo/control chars or an unsupported scheme."""

    code = "invalid_url"
    reason: str = ""  # what is wrong, without the leading "URL" (set by transfer.urls)


class URLBlocked(TransferError):
    """The URL points at a host the SSRF policy refuses (private, metadata, plain http)."""

    code = "url_blocked"


class SourceNotFound(TransferError):
    """The source answered 404: the asset is not there."""

    code = "source_not_found"


class SourceExpired(TransferError):
    """401/403/410: a presigned CDN URL expired or was revoked; retrying cannot help."""

    code = "source_expired"


class SourceNotReady(TransferError):
    """404/425/503 with Retry-After: the source exists soon; come back at ``retry_after``."""

    code = "source_not_ready"
    retryable = True

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SourceUnavailable(TransferError):
    """429/5xx, connection refused or reset, TLS failure mid-stream: try again later."""

    code = "source_unavailable"
    retryable = True


class SourceTLSFailed(SourceUnavailable):
    """The TLS handshake with the source failed (plain HTTP on an https port, a bad or
    untrusted certificate, no common protocol); the TLS library's reason is in the message."""

    code = "source_tls_failed"


class SourceDNSFailed(SourceUnavailable):
    """The source's host name did not resolve (NXDOMAIN, no address, resolver down)."""

    code = "source_dns_failed"


class SourceRefused(SourceUnavailable):
    """The source's address refused the TCP connection (nothing listens on that port)."""

    code = "source_refused"


class SourceReset(SourceUnavailable):
    """The source closed or reset the connection before answering."""

    code = "source_reset"


class SourceConnectTimeout(SourceUnavailable):
    """No TCP connection to the source within the connect timeout."""

    code = "source_connect_timeout"


class SourceTooSlow(TransferError):
    """The source stalled, trickled below the minimum rate, or overran the deadline."""

    code = "source_too_slow"
    retryable = True


class SourceTruncated(TransferError):
    """The body ended before its declared length (never stored as a short object)."""

    code = "source_truncated"
    retryable = True


class SourceChanged(TransferError):
    """The source's validators (ETag / Last-Modified / length) changed mid-copy."""

    code = "source_changed"
    retryable = True


class TooLarge(TransferError):
    """Content-Length or the bytes actually read exceed the configured size cap."""

    code = "too_large"


class ChecksumMismatch(TransferError):
    """The SHA-256 of the bytes read differs from the expected one; nothing was stored."""

    code = "checksum_mismatch"


class StorageFailure(TransferError):
    """The object store failed; retryable when the cause is transient (5xx, reset)."""

    code = "storage_error"


class KeyConflict(TransferError):
    """The destination key already holds other bytes: nothing was overwritten.

    Raised for keys a job does not derive from the content (HIERARCHICAL or
    explicit): a job never replaces an object it did not write.
    """

    code = "key_conflict"


class Canceled(TransferError):
    """The caller asked to stop (``should_cancel``); the partial upload was aborted."""

    code = "canceled"


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps (``__cause__``, ``__context__``, urllib3's ``reason``,
    exceptions in ``args``), outermost first: requests wraps urllib3 wraps ssl/socket."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo and len(seen) < 16:
        e = todo.pop(0)
        if any(e is s for s in seen):
            continue
        seen.append(e)
        inner = [getattr(e, "reason", None), e.__cause__, e.__context__, *e.args]
        todo.extend(x for x in inner if isinstance(x, BaseException))
    return seen


def _reason(exc: BaseException) -> str:
    """The lower layer's own words, without addresses or URLs (messages reach users)."""
    if isinstance(exc, ssl.SSLError):
        text = (
            getattr(exc, "verify_message", None)
            or getattr(exc, "reason", None)
            or exc.strerror
            or str(exc)
        )
        return f"{type(exc).__name__}: {text}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    text = str(exc)
    # urllib3 puts the pool and the URL path in its messages: keep the last reason only.
    text = text.rsplit(": ", 1)[-1] if "Pool(" in text or "url:" in text else text
    return f"{type(exc).__name__}: {text}"[:200]


def map_source_error(exc: BaseException) -> TransferError:
    """Map a requests/urllib3/socket error raised while fetching the source.

    The code says what happened (TLS, DNS, refused, reset, timeouts, a body cut short);
    the message carries the lowest layer's reason (e.g. ``SSLError: WRONG_VERSION_NUMBER``
    for https to a plain-HTTP port), found by walking what each layer wrapped.
    """
    import requests
    import urllib3.exceptions as u3

    if isinstance(exc, TransferError):
        return exc
    chain = _causes(exc)
    name = type(exc).__name__

    def first(*types: type[BaseException]) -> BaseException | None:
        return next((e for e in chain if isinstance(e, types)), None)

    # urllib3 makes NewConnectionError (refused, unreachable) a ConnectTimeoutError
    # subclass for old callers' sake; only a real connect timeout is one here.
    timed_out = isinstance(exc, u3.ConnectTimeoutError) and not isinstance(
        exc, u3.NewConnectionError
    )
    if timed_out or isinstance(exc, requests.exceptions.ConnectTimeout):
        return SourceConnectTimeout(f"source connect timed out ({name})")
    if isinstance(exc, (requests.exceptions.ReadTimeout, u3.ReadTimeoutError, socket.timeout)):
        return SourceTooSlow(f"source read timed out ({name})")
    if (tls := first(ssl.SSLError, u3.SSLError, requests.exceptions.SSLError)) is not None:
        root = first(ssl.SSLError) or tls
        return SourceTLSFailed(f"TLS with the source failed ({_reason(root)})")
    if (dns := first(socket.gaierror, u3.NameResolutionError)) is not None:
        return SourceDNSFailed(f"could not resolve the source's host ({_reason(dns)})")
    if (refused := first(ConnectionRefusedError)) is not None:
        return SourceRefused(f"the source refused the connection ({_reason(refused)})")
    if isinstance(
        exc,
        (
            u3.IncompleteRead,
            u3.ProtocolError,
            requests.exceptions.ChunkedEncodingError,
            http.client.IncompleteRead,
        ),
    ):
        # urllib3 wraps both "ended early" and "connection reset" as ProtocolError;
        # both mean the bytes we got are not the whole object.
        return SourceTruncated(f"source body ended early ({_reason(chain[-1])})")
    if (reset := first(ConnectionResetError, ConnectionAbortedError, BrokenPipeError)) is not None:
        return SourceReset(f"the source closed the connection ({_reason(reset)})")
    if isinstance(
        exc,
        (requests.exceptions.RequestException, u3.HTTPError, OSError, http.client.HTTPException),
    ):
        return SourceUnavailable(f"source connection failed ({_reason(chain[-1])})")
    return SourceUnavailable(f"unexpected source error ({_reason(exc)})")


def map_body_error(exc: BaseException) -> TransferError:
    """Map an error raised while reading a source body that had begun to arrive.

    A timeout is a source too slow and a TLS failure a TLS failure, as anywhere; any
    other connection or protocol error cut the body short (what urllib3's reads said
    too: its ``ProtocolError("Connection broken")``), so a reset mid-body is
    ``source_truncated``, not ``source_reset`` (which means no answer at all).
    """
    if isinstance(exc, TransferError):
        return exc
    if isinstance(exc, TimeoutError) or (isinstance(exc, ssl.SSLError) and "timed out" in str(exc)):
        return SourceTooSlow(f"source read timed out ({type(exc).__name__})")
    if isinstance(exc, ssl.SSLError):
        return SourceTLSFailed(f"TLS with the source failed ({_reason(exc)})")
    if isinstance(exc, OSError | http.client.HTTPException):
        return SourceTruncated(f"source body ended early ({_reason(exc)})")
    return map_source_error(exc)


def error_for_status(status: int) -> TransferError | None:
    """The error for a non-2xx source status, or None when the status is success."""
    if 200 <= status < 300:
        return None
    if status == 404:
        return SourceNotFound("source answered 404")
    if status in (401, 403, 410):
        return SourceExpired(f"source answered {status} (expired or revoked URL)")
    if status == 429 or status >= 500 or status == 408:
        return SourceUnavailable(f"source answered {status}")
    if status == 412:
        return SourceChanged("source answered 412 (validators changed)")
    if 400 <= status < 500:
        return SourceNotFound(f"source refused the request ({status})")
    return SourceUnavailable(f"unexpected source status {status}")


# Answers that mean "not yet" when the source also says when to come back.
_NOT_READY_STATUSES = frozenset({404, 425, 503})
_MAX_RETRY_AFTER = 24 * 3600.0


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP-date), or None."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), _MAX_RETRY_AFTER)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    import time

    delta = when.timestamp() - (time.time() if now is None else now)
    return min(max(0.0, delta), _MAX_RETRY_AFTER)


def error_for_response(status: int, retry_after: str | None) -> TransferError | None:
    """Like :func:`error_for_status`, reading ``Retry-After`` on 404/425/503 as "not ready"."""
    if status in _NOT_READY_STATUSES:
        wait = parse_retry_after(retry_after)
        if wait is not None:
            ready = SourceNotReady(
                f"source answered {status} with Retry-After {wait:g}s (not ready yet)",
                retry_after=wait,
            )
            ready.status = status
            return ready
    err = (
        SourceUnavailable("source answered 425 (too early)")
        if status == 425
        else error_for_status(status)
    )
    if err is not None:
        err.status = status
        if err.retryable:  # 429 / 5xx: a retry waits at least as long as asked
            err.retry_after = parse_retry_after(retry_after)
    return err


def is_retryable_storage_error(exc: BaseException) -> bool:
    """Whether an object-store error is transient (worth retrying the same request)."""
    if isinstance(exc, TransferError):
        return exc.retryable
    return s3errors.is_retryable(exc)


def map_storage_error(exc: BaseException, what: str) -> TransferError:
    """Map a botocore / genblaze-core storage error to :class:`StorageFailure`."""
    if isinstance(exc, TransferError):
        return exc
    retryable = is_retryable_storage_error(exc)
    if not retryable:
        retryable = bool(getattr(exc, "is_retriable", False))
    code = s3_error_code(exc) or type(exc).__name__
    return StorageFailure(f"{what} failed ({code})", retryable=retryable)
