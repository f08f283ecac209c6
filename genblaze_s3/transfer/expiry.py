"""When a source URL says it stops working: presigned-URL expiry, read from the query.

Why: provider CDNs hand out presigned URLs that expire within an hour or less. A
URL that states its own expiry can be failed (or refreshed) without spending a
request on it, and a job can copy the assets whose URLs die soonest first.

Understood (parameter names case-insensitive, as the services accept them):

================  ==========================================================
AWS SigV4         ``X-Amz-Date`` (``YYYYMMDDTHHMMSSZ``) + ``X-Amz-Expires`` (s)
GCS V4            ``X-Goog-Date`` + ``X-Goog-Expires`` (same shapes)
SigV2 / GCS V2 /  ``Expires`` (Unix seconds); CloudFront custom policies carry
CloudFront        it in ``Policy`` (base64 JSON, ``DateLessThan.AWS:EpochTime``)
Azure SAS         ``se`` (ISO 8601, e.g. ``2026-12-01T10:00:00Z``) next to ``sig``
================  ==========================================================

A URL that states nothing (or states it in a shape we cannot read) has no known
expiry (None): it is never failed on a guess.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

# A presigned URL cannot live longer than this anywhere we know of (SigV4: 7 days);
# a larger stated value is a misparse or nonsense, not a reason to wait.
_MAX_LIFETIME = timedelta(days=366)


def _query(url: str) -> dict[str, str]:
    """Lower-cased query parameter names -> first value (names are case-insensitive)."""
    out: dict[str, str] = {}
    for name, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        out.setdefault(name.lower(), value)
    return out


def _amz_date(value: str) -> datetime | None:
    try:
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def _signed_at_plus(q: dict[str, str], date_name: str, expires_name: str) -> datetime | None:
    start = _amz_date(q.get(date_name, ""))
    seconds = q.get(expires_name, "")
    if start is None or not seconds.isdigit():
        return None
    lifetime = timedelta(seconds=int(seconds))
    return start + lifetime if lifetime <= _MAX_LIFETIME else None


def _epoch(value: str) -> datetime | None:
    if not value.isdigit() or len(value) > 12:
        return None
    return datetime.fromtimestamp(int(value), UTC)


def _cloudfront_policy(value: str) -> datetime | None:
    """DateLessThan of a CloudFront custom policy (URL-safe base64 with CF's substitutions)."""
    raw = value.replace("-", "+").replace("_", "=").replace("~", "/")
    try:
        doc = json.loads(base64.b64decode(raw + "=" * (-len(raw) % 4)))
        epoch = doc["Statement"][0]["Condition"]["DateLessThan"]["AWS:EpochTime"]
    except (ValueError, KeyError, IndexError, TypeError, binascii.Error):
        return None
    return _epoch(str(epoch))


def _azure_se(value: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:  # SAS also allows a bare date
            when = datetime.strptime(value, "%Y-%m-%d")
        except ValueError:
            return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def url_expiry(url: str) -> datetime | None:
    """The aware UTC instant after which ``url`` stops working, when it states one."""
    q = _query(url)
    if not q:
        return None
    if "x-amz-expires" in q:
        return _signed_at_plus(q, "x-amz-date", "x-amz-expires")
    if "x-goog-expires" in q:
        return _signed_at_plus(q, "x-goog-date", "x-goog-expires")
    if "expires" in q:
        return _epoch(q["expires"])
    if "policy" in q and ("signature" in q or "key-pair-id" in q):
        return _cloudfront_policy(q["policy"])
    if "se" in q and "sig" in q:
        return _azure_se(q["se"])
    return None


def is_expired(url: str, now: datetime | None = None) -> datetime | None:
    """The stated expiry when it has passed (so the caller can say when), else None."""
    when = url_expiry(url)
    if when is None:
        return None
    return when if when <= (now or datetime.now(UTC)) else None
