"""Listing cursors: opaque to clients, versioned, parsed strictly at the boundary.

Why strict: a cursor is client input. `NaN|zz` (base64) used to reach Redis as a
score and come back as a store error (503 with Retry-After: clients retried a bad
request forever), and the asset cursor `²` passed `str.isdigit()` and crashed
`int()` (500). Here a cursor is parsed into a typed value before any store access,
or refused with InvalidListingError (422 `invalid_cursor`, field `cursor`).

Format: ``<kind><version>.<base64url payload>``: ``j1.`` for a tenant's job list
(payload ``<created score>|<job id>``), ``a1.`` for a job's asset pages (payload
``<seq>``). The kind makes a cursor of one listing useless in the other; the
version lets the format change without misreading old cursors. The unversioned
cursors this server handed out before (base64 ``score|id``; a bare decimal seq)
are still read, by the same strict rules, so a listing paged across an upgrade
goes on.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from dataclasses import dataclass

from genblaze_s3.ingest.errors import InvalidListingError

MAX_CURSOR_LENGTH = 200
JOB_CURSOR_PREFIX = "j1."
ASSET_CURSOR_PREFIX = "a1."
MAX_SEQ = 10**9  # asset seqs are positions in a job (at most 10,000 assets)
MAX_SCORE = 1e11  # job scores are epoch seconds (year 5138)

_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_JOB_PAYLOAD = re.compile(r"([0-9]{1,12}(?:\.[0-9]{1,17})?)\|([0-9a-f]{32})")
_SEQ = re.compile(r"[0-9]{1,10}")


@dataclass(frozen=True)
class JobCursor:
    """Where a tenant's job listing stopped: the last job served and its index score."""

    score: float
    job_id: str

    def encode(self) -> str:
        return JOB_CURSOR_PREFIX + _b64(f"{self.score!r}|{self.job_id}")


@dataclass(frozen=True)
class AssetCursor:
    """Where a job's asset pages stopped: the submission seq of the last asset served."""

    seq: int

    def encode(self) -> str:
        return ASSET_CURSOR_PREFIX + _b64(str(self.seq))


def parse_job_cursor(raw: str | None) -> JobCursor | None:
    """The cursor of `GET /v1/jobs` (None when absent or empty); InvalidListingError if bad."""
    if not raw:
        return None
    payload = _payload(raw, JOB_CURSOR_PREFIX, legacy_b64=True)
    m = _JOB_PAYLOAD.fullmatch(payload) if payload is not None else None
    if m is None:
        raise _invalid("job")
    score = float(m.group(1))
    if not (math.isfinite(score) and 0 <= score <= MAX_SCORE):
        raise _invalid("job")
    return JobCursor(score, m.group(2))


def parse_asset_cursor(raw: str | None) -> AssetCursor | None:
    """The cursor of a job's asset pages (None when absent or empty); InvalidListingError."""
    if not raw:
        return None
    if raw.isascii() and _SEQ.fullmatch(raw):  # the unversioned form: a bare decimal seq
        payload: str | None = raw
    else:
        payload = _payload(raw, ASSET_CURSOR_PREFIX, legacy_b64=False)
    if payload is None or not _SEQ.fullmatch(payload) or int(payload) > MAX_SEQ:
        raise _invalid("asset")
    return AssetCursor(int(payload))


def _payload(raw: str, prefix: str, *, legacy_b64: bool) -> str | None:
    """The decoded ASCII payload of a cursor of this kind, or None when it is not one."""
    if len(raw) > MAX_CURSOR_LENGTH or not raw.isascii():
        return None
    if raw.startswith(prefix):
        body = raw[len(prefix) :]
    elif legacy_b64 and "." not in raw:
        body = raw
    else:
        return None
    if not _B64URL.fullmatch(body):
        return None
    try:
        decoded = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        return None
    return decoded.decode("ascii") if decoded.isascii() else None


def _b64(payload: str) -> str:
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def _invalid(kind: str) -> InvalidListingError:
    return InvalidListingError(
        f"cursor is not a {kind} cursor this server handed out: start the listing again without it",
        field="cursor",
    )
