"""Strict input rules for everything a submitter names: pure functions, no I/O.

Why one module: the HTTP API, `QueuedStorageSink` and the CLI (through the API)
must refuse the same things, before any store access or work. Each function
raises ValueError (inside pydantic validators: a 422 naming the field) or
InvalidJobError with `field` set.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from genblaze_s3.ingest.errors import InvalidJobError
from genblaze_s3.transfer.errors import InvalidURL
from genblaze_s3.transfer.urls import WebURL, parse_web_url

JOB_ID = re.compile(r"^[0-9a-f]{32}$")  # submission.new_job_id: 128 random bits, hex
MAX_PREFIX_LENGTH = 512
MAX_ENDPOINT_LENGTH = 2048
DEFAULT_MAX_RETENTION_DAYS = 3650

# S3's bucket naming rules (the strictest of the stores we serve: B2, R2, MinIO agree).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IPV4ISH = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
_REGION = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_LABELS = 16
MAX_LABEL_VALUE = 256
_LABEL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,62}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A listing's label filter: `key` or `key=value`, by the rules labels are stored by
# (an ECMA-262 and Rust regex alike: the OpenAPI document publishes this one).
LABEL_FILTER = r"^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,62}(=[^\x00-\x1f\x7f]{0,256})?$"
RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


def is_job_id(value: str) -> bool:
    """Whether `value` can be a job id at all (checked before any store access)."""
    return bool(JOB_ID.fullmatch(value))


def check_labels(labels: dict[str, str]) -> dict[str, str]:
    """Labels are short `key: value` strings a tenant lists its jobs by."""
    if len(labels) > MAX_LABELS:
        raise InvalidJobError(f"a job carries at most {MAX_LABELS} labels", field="labels")
    for k, v in labels.items():
        if not _LABEL_KEY.match(k):
            raise InvalidJobError(
                f"label key {k[:70]!r} must match {_LABEL_KEY.pattern}", field="labels"
            )
        if len(v) > MAX_LABEL_VALUE or _CONTROL.search(v):
            raise InvalidJobError(
                f"label {k!r}: value too long or has control characters", field=f"labels.{k}"
            )
    return dict(labels)


def parse_rfc3339(value: object) -> object:
    """An RFC 3339 date-time string as a datetime (other values pass to the next check).

    Why not pydantic's lax datetime: it also takes `0.5` (epoch seconds) and
    `2026-01-31` (a date), which the API documents as invalid (`format: date-time`);
    the document and the server must agree on what is a date. A leap second (`:60`)
    is read as `:59`: a listing filter has second resolution at best.
    """
    if not isinstance(value, str):
        return value
    if not RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 date-time, e.g. 2026-01-31T12:00:00Z")
    text = value.upper().replace("Z", "+00:00")
    date, _, rest = text.partition("T")
    clock, frac, zone = rest[:8], "", rest[8:]
    if zone.startswith("."):
        digits = zone[1:].split("+")[0].split("-")[0]
        frac, zone = "." + digits[:6], zone[1 + len(digits) :]
    if clock.endswith(":60"):
        clock = clock[:6] + "59"
    try:
        return datetime.fromisoformat(f"{date}T{clock}{frac}{zone}")
    except ValueError as exc:
        raise ValueError(f"is not a real date-time: {exc}") from exc


def epoch_seconds(value: datetime) -> float:
    """A client's date as epoch seconds; a date without a zone is taken as UTC.

    Why not ``datetime.timestamp()``: for a naive date it asks the C library about
    local time, which fails for year 1 ("year 0 is out of range": a 500); the
    arithmetic here is defined for every date pydantic accepts.
    """
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return (aware - _EPOCH).total_seconds()


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


def check_url(value: str, field: str) -> WebURL:
    """A URL a submitter gives (source, replacement, notify_url, refresh_url), parsed.

    The shape rules are transfer.urls' (the SSRF guard starts from the same parse);
    the refusal names the request field, e.g. ``assets.0.url has no host``.
    """
    try:
        return parse_web_url(value)
    except InvalidURL as exc:
        raise InvalidJobError(f"{field} {exc.reason}", field=field) from exc


def check_endpoint(value: str) -> str:
    """An S3 endpoint: http(s)://host[:port], nothing else; returned without a trailing '/'."""
    if len(value) > MAX_ENDPOINT_LENGTH:
        raise ValueError(f"endpoint_url must be at most {MAX_ENDPOINT_LENGTH} characters")
    try:
        parsed = parse_web_url(value)
    except InvalidURL as exc:
        raise ValueError(f"endpoint_url {exc.reason}") from exc
    if parsed.path not in ("", "/") or parsed.query or parsed.fragment or value.endswith("?"):
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
