"""Strict input rules for everything a submitter names: pure functions, no I/O.

Why one module: the HTTP API, `QueuedStorageSink` and the CLI (through the API)
must refuse the same things, before any store access or work. Each function
raises ValueError (inside pydantic validators: a 422 naming the field) or
InvalidJobError with `field` set.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from genblaze_s3.ingest.errors import InvalidJobError

JOB_ID = re.compile(r"^[0-9a-f]{32}$")  # submission.new_job_id: 128 random bits, hex
MAX_PREFIX_LENGTH = 512
MAX_ENDPOINT_LENGTH = 2048
DEFAULT_MAX_RETENTION_DAYS = 3650

# S3's bucket naming rules (the strictest of the stores we serve: B2, R2, MinIO agree).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IPV4ISH = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
_REGION = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def is_job_id(value: str) -> bool:
    """Whether `value` can be a job id at all (checked before any store access)."""
    return bool(JOB_ID.fullmatch(value))


def check_bucket(value: str) -> str:
    if not _BUCKET.fullmatch(value) or ".." in value or _IPV4ISH.fullmatch(value):
        raise ValueError(
            "bucket must be 3-63 characters of a-z, 0-9, '.', '-', "
            "start and end with a letter or digit, not look like an IP address"
        )
    return value


def check_region(value: str) -> str:
    if not _REGION.fullmatch(value):
        raise ValueError("region must be 1-63 characters of a-z, 0-9 and '-'")
    return value


def check_prefix(value: str) -> str:
    """A key prefix: bounded, printable, no empty / '.' / '..' segments ('' allowed)."""
    if len(value) > MAX_PREFIX_LENGTH:
        raise ValueError(f"prefix must be at most {MAX_PREFIX_LENGTH} characters")
    if _CONTROL.search(value) or "\\" in value:
        raise ValueError("prefix must not contain control characters or backslashes")
    if value and any(seg in ("", ".", "..") for seg in value.split("/")):
        raise ValueError("prefix must not have empty, '.' or '..' segments (no '//', no '/' ends)")
    return value


def check_endpoint(value: str) -> str:
    """An S3 endpoint: http(s)://host[:port], nothing else; returned without a trailing '/'."""
    if len(value) > MAX_ENDPOINT_LENGTH:
        raise ValueError(f"endpoint_url must be at most {MAX_ENDPOINT_LENGTH} characters")
    if _CONTROL.search(value) or " " in value or "\\" in value:
        raise ValueError("endpoint_url must not contain spaces or control characters")
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError for '8333.evil', '99999', ...
    except ValueError as exc:
        raise ValueError("endpoint_url has an invalid host or port") from exc
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("endpoint_url must be an http(s) URL")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValueError("endpoint_url must not carry credentials")
    if port == 0:
        raise ValueError("endpoint_url has an invalid port")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("endpoint_url must be scheme://host[:port] without path or query")
    return value.rstrip("/")


def check_retention(
    retain_until: datetime, *, now: datetime, max_days: int = DEFAULT_MAX_RETENTION_DAYS
) -> None:
    """A manifest lock must end in the future and within `max_days`.

    Why at submit: a past date used to be accepted, every asset copied, and the
    job then failed `manifest_write_failed`; a far-future COMPLIANCE lock is a
    bucket no one (the operator included) can ever clean.
    """
    if retain_until <= now:
        raise InvalidJobError(
            "manifest_lock.retain_until must be in the future", field="manifest_lock.retain_until"
        )
    if retain_until > now + timedelta(days=max_days):
        raise InvalidJobError(
            f"manifest_lock.retain_until must be within {max_days} days "
            "(GENBLAZE_MAX_RETENTION_DAYS)",
            field="manifest_lock.retain_until",
        )


_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def check_import_path(path: str) -> str:
    """Validate a ``package.module:function`` name (the shape only; workers import it)."""
    if not _IMPORT_PATH.match(path):
        raise ValueError(f"source_refresher must look like 'package.module:function', not {path!r}")
    return path
