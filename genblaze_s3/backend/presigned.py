"""``PresignedURL``: a credential-bearing URL that is safe to log.

A presigned URL carries the access-key id (``X-Amz-Credential``) and a replayable
signature. Anything that formats it — ``repr``, ``str``, f-strings, ``%s`` in a
log call — gets a redacted form; the live URL is only reachable through the
explicit ``.url`` attribute, so every leak site is a visible decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# SigV4 (and, defensively, SigV2) query parameters that carry secrets.
_SECRET_PARAMS = frozenset(
    {
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "signature",
        "awsaccesskeyid",
    }
)
REDACTED = "redacted"


def redact_url(url: str) -> str:
    """``url`` with every credential-bearing query value replaced by ``redacted``."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    pairs = [
        (name, REDACTED if name.lower() in _SECRET_PARAMS else value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(pairs)))


@dataclass(frozen=True, slots=True)
class PresignedURL:
    """A SigV4 presigned URL for one object and one HTTP method.

    ``url`` is the live URL (hand it to an HTTP client, never to a logger);
    ``repr``/``str`` show the same URL with signature and credential redacted.
    """

    url: str = field(repr=False)
    method: Literal["GET", "PUT"]
    key: str
    bucket: str
    expires_in: int

    def __repr__(self) -> str:
        return (
            f"PresignedURL(method={self.method!r}, bucket={self.bucket!r}, key={self.key!r}, "
            f"expires_in={self.expires_in}, url={redact_url(self.url)!r})"
        )

    __str__ = __repr__


__all__ = ["PresignedURL", "redact_url"]
