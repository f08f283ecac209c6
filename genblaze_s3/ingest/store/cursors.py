"""Listing cursors: opaque to clients, versioned, parsed strictly at the boundary.

Why strict: a cursor is client input. `NaN|zz` (base64) used to reach Redis as a
score and come back as a store error (503 with Retry-After: clients retried a bad
request forever), and the asset cursor `²` passed `str.isdigit()` and crashed
`int()` (500). Here a cursor is parsed into a typed value before any store access,
or refused with InvalidListingError (422 `invalid_cursor`, field `cursor`).

Format (clients pass it back as given; it is not an interface to build cursors):
``j1.<score>_<job id>`` for a tenant's job list (the index score, epoch seconds,
of the last job served), ``a1.<seq>`` for a job's asset pages (the submission seq
of the last asset served). The kind makes a cursor of one listing useless in the
other; the version lets the format change without misreading old cursors. Each
format is one regular expression (`JOB_CURSOR`, `ASSET_CURSOR`): the OpenAPI
document publishes exactly the rule the server applies, so a cursor the document
calls valid is one the server accepts. The bare decimal asset cursors handed out
before are still read; the base64 job cursors of before are not (a listing paged
across the upgrade answers 422 `invalid_cursor`: start it again).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from genblaze_s3.ingest.errors import InvalidListingError

# Empty is allowed: `?cursor=` asks for the first page, as no cursor does.
JOB_CURSOR = re.compile(r"^(?:j1\.([0-9]{1,11}(?:\.[0-9]{1,17})?)_([0-9a-f]{32}))?$")
ASSET_CURSOR = re.compile(r"^(?:(?:a1\.)?([0-9]{1,9}))?$")
_SCORE = re.compile(r"[0-9]{1,11}(?:\.[0-9]{1,17})?")


@dataclass(frozen=True)
class JobCursor:
    """Where a tenant's job listing stopped: the last job served and its index score."""

    score: float
    job_id: str

    def encode(self) -> str:
        text = repr(self.score)  # exact: the listing compares scores for equality
        if not _SCORE.fullmatch(text):  # not an epoch-seconds float (never in practice)
            text = f"{self.score:.6f}"
        return f"j1.{text}_{self.job_id}"


@dataclass(frozen=True)
class AssetCursor:
    """Where a job's asset pages stopped: the submission seq of the last asset served."""

    seq: int

    def encode(self) -> str:
        return f"a1.{self.seq}"


def parse_job_cursor(raw: str | None) -> JobCursor | None:
    """The cursor of `GET /v1/jobs` (None when absent or empty); InvalidListingError if bad."""
    if not raw:
        return None
    m = JOB_CURSOR.fullmatch(raw) if raw.isascii() else None
    if m is None:
        raise _invalid("job")
    return JobCursor(float(m.group(1)), m.group(2))


def parse_asset_cursor(raw: str | None) -> AssetCursor | None:
    """The cursor of a job's asset pages (None when absent or empty); InvalidListingError."""
    if not raw:
        return None
    m = ASSET_CURSOR.fullmatch(raw) if raw.isascii() else None
    if m is None:
        raise _invalid("asset")
    return AssetCursor(int(m.group(1)))


def _invalid(kind: str) -> InvalidListingError:
    return InvalidListingError(
        f"cursor is not one this server handed out for a {kind} listing: start the "
        "listing again without it",
        field="cursor",
    )
