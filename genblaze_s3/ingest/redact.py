"""Strip secrets from URLs before they are stored, logged or served.

Presigned CDN URLs carry credentials in the query string (X-Amz-Signature,
X-Amz-Credential, CloudFront Signature/Policy...) and sometimes in userinfo;
dropping the whole query and userinfo is the only rule that cannot miss one.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

REDACTED = "REDACTED"


def redact_url(url: str) -> str:
    """`url` without userinfo, and with any query string replaced by a marker."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port else host
    query = REDACTED if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
