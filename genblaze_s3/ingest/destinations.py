"""Which destinations a job may name: checked at submit time and again in the worker.

Why twice: the submitter fails fast (422 / a typed error, never a failed job in
a worker), and the worker, which holds the credentials, refuses anything its own
allow-list does not name, so a forged broker message cannot make it sign
requests for someone else's server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from genblaze_s3.ingest.errors import DestinationNotAllowedError
from genblaze_s3.ingest.models import DestinationSpec
from genblaze_s3.settings import Settings

# Official endpoints are always allowed: a job naming them can only reach AWS / B2.
_OFFICIAL = (
    re.compile(r"^https://s3(\.dualstack)?(\.[a-z0-9-]+)?\.amazonaws\.com(:443)?$"),
    re.compile(r"^https://s3\.[a-z0-9-]+\.backblazeb2\.com(:443)?$"),
)


def normalize_endpoint(url: str) -> str:
    """scheme://host[:port], lower-cased, default ports dropped, no path."""
    p = urlsplit(url.strip())
    host = (p.hostname or "").lower()
    port = p.port
    if port and not ((p.scheme == "https" and port == 443) or (p.scheme == "http" and port == 80)):
        return f"{p.scheme.lower()}://{host}:{port}"
    return f"{p.scheme.lower()}://{host}"


@dataclass(frozen=True)
class DestinationPolicy:
    """An allow-list of endpoints (plus official AWS/B2) and optionally buckets."""

    allowed_endpoints: frozenset[str] = frozenset()
    allowed_buckets: frozenset[str] | None = None

    @classmethod
    def from_settings(cls, config: Settings) -> DestinationPolicy:
        """GENBLAZE_ALLOWED_ENDPOINTS (unset: AWS_ENDPOINT_URL; empty: official endpoints
        only) and GENBLAZE_ALLOWED_BUCKETS (unset: any)."""
        endpoints = config.allowed_endpoints
        if endpoints is None:
            endpoints = (config.aws_endpoint_url,) if config.aws_endpoint_url else ()
        buckets = config.allowed_buckets
        return cls(
            frozenset(normalize_endpoint(e) for e in endpoints),
            frozenset(buckets) if buckets is not None else None,
        )

    def check(self, dest: DestinationSpec) -> None:
        """Raise DestinationNotAllowedError unless `dest` is allowed."""
        if self.allowed_buckets is not None and dest.bucket not in self.allowed_buckets:
            raise DestinationNotAllowedError(f"bucket {dest.bucket!r} is not allowed")
        if dest.endpoint_url is None:
            return  # the SDK default: official AWS S3
        ep = normalize_endpoint(dest.endpoint_url)
        if ep in self.allowed_endpoints or any(r.match(ep) for r in _OFFICIAL):
            return
        raise DestinationNotAllowedError(f"endpoint {ep} is not allowed")
