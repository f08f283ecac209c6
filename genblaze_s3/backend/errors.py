"""The S3 boundary: the one place boto errors become genblaze ``StorageError``, secrets scrubbed.

Classification is genblaze-core's (:func:`classify_botocore_error`), so
``error_code`` / ``is_retriable`` mean the same thing across every genblaze
backend (raw S3 codes are read in :mod:`genblaze_s3.backend.s3errors`). On top
of it we remove SSE-C key material from messages (botocore's parameter
validator echoes parameter values) and install a logging filter that redacts
the SSE-C headers botocore prints at DEBUG level.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from genblaze_core.exceptions import StorageError
from genblaze_core.storage.errors import StorageErrorCode, classify_botocore_error

from genblaze_s3.backend.encryption import Encryption
from genblaze_s3.backend.s3errors import http_status

_REDACTED = "<redacted>"

# Header / parameter names whose values are SSE-C key material.
_SECRET_FIELD = re.compile(
    r"""(?ix)
    (x-amz-(?:copy-source-)?server-side-encryption-customer-key(?!-md5)
     |(?:CopySource)?SSECustomerKey(?!MD5))
    (['"]?\s*[:=]\s*b?['"]?)
    ([^'",}\s]+)
    """
)


def scrub(text: str, encryption: Encryption | None = None) -> str:
    """``text`` with SSE-C key values (by field name and by known value) removed."""
    text = _SECRET_FIELD.sub(lambda m: f"{m.group(1)}{m.group(2)}{_REDACTED}", text)
    if encryption is not None:
        for secret in encryption.secrets():
            text = text.replace(secret, _REDACTED)
    return text


def to_storage_error(
    exc: BaseException,
    *,
    operation: str,
    key: str | None = None,
    encryption: Encryption | None = None,
) -> StorageError:
    """Map any exception from a boto call to a typed, secret-free ``StorageError``."""
    if isinstance(exc, StorageError):
        return exc
    err = classify_botocore_error(exc, operation=operation, key=key)  # type: ignore[arg-type]
    message = scrub(str(err), encryption)
    code = err.error_code
    if (
        encryption is None
        and http_status(exc) == 400
        and operation in {"head", "get", "get_range", "stream", "copy"}
    ):
        # S3 answers 400 to reads of an SSE-C object made without the key.
        code = StorageErrorCode.ENCRYPTION_REQUIRED
        message += " (SSE-C objects need encryption=Encryption.sse_c(key))"
    return restated(err, message, error_code=code, operation=operation)


@contextmanager
def storage_errors(
    operation: str, key: str | None = None, encryption: Encryption | None = None
) -> Iterator[None]:
    """Map whatever the block raises to a ``StorageError`` (see :func:`to_storage_error`)."""
    try:
        yield
    except Exception as exc:
        raise to_storage_error(exc, operation=operation, key=key, encryption=encryption) from exc


def restated(err: StorageError, message: str, *, error_code: Any, operation: str) -> StorageError:
    """``err`` with a new message and code; request id, status and retry facts kept."""
    return StorageError(
        message,
        error_code=error_code,
        request_id=err.request_id,
        status_code=err.status_code,
        retry_after=err.retry_after,
        is_retriable=err.is_retriable,
        operation=operation,
    )


class _RedactSSECustomerKey(logging.Filter):
    """Redacts SSE-C key values in botocore/urllib3 DEBUG records before they are emitted."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            rendered = record.getMessage()
        except Exception:  # a broken record is not ours to fix
            return True
        cleaned = scrub(rendered)
        if cleaned != rendered:
            record.msg, record.args = cleaned, None
        return True


_FILTER = _RedactSSECustomerKey()
# Logger families that print request parameters or headers at DEBUG level.
_LOGGER_PREFIXES = ("botocore", "boto3", "s3transfer", "urllib3", "aiobotocore", "aioboto3")


def install_log_redaction() -> None:
    """Attach the SSE-C redaction filter to every logger that prints request params.

    A logger filter only sees records created on that logger, not on its
    children, so each existing logger of those libraries gets the filter
    (called on each backend construction: cheap and idempotent).
    """
    names = [
        name
        for name in list(logging.root.manager.loggerDict)
        if name.split(".")[0] in _LOGGER_PREFIXES
    ]
    for name in {*names, *_LOGGER_PREFIXES}:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


__all__ = [
    "install_log_redaction",
    "restated",
    "scrub",
    "storage_errors",
    "to_storage_error",
]
