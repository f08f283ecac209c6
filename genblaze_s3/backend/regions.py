"""Where a bucket's endpoint and signing region come from (the Backblaze B2 rules).

Pure functions, no network: B2 serves each region from its own host
(``s3.<region>.backblazeb2.com``) and signs per region, while other
S3-compatible stores expect ``us-east-1`` in the SigV4 scope. The bucket
preflight uses :class:`RegionalService` to re-target a client when the bucket
turns out to live in another region.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

# Backblaze's published S3 regions. A new one appears every few years.
B2_REGIONS: tuple[str, ...] = (
    "us-west-001",
    "us-west-002",
    "us-west-004",
    "us-east-005",
    "eu-central-003",
    "ca-east-006",
)
B2_DEFAULT_REGION = "us-west-004"
B2_ENDPOINT_TEMPLATE = "https://s3.{region}.backblazeb2.com"
# What S3-compatible stores expect in the SigV4 scope when no region is given.
DEFAULT_SIGNING_REGION = "us-east-1"

EndpointTemplate = str | Callable[[str], str]


def endpoint_for(template: EndpointTemplate, region: str) -> str:
    """Render a regional endpoint from a ``"...{region}..."`` template or a callable."""
    return template(region) if callable(template) else template.format(region=region)


def is_b2_host(host: str) -> bool:
    """True for ``backblazeb2.com`` and its subdomains."""
    host = host.lower()
    return host == "backblazeb2.com" or host.endswith(".backblazeb2.com")


def host_of(url: str | None) -> str:
    """Lower-case host name of ``url`` (``""`` when absent)."""
    if not url:
        return ""
    return (urlsplit(url if "://" in url else f"//{url}").hostname or "").lower()


@dataclass(frozen=True, slots=True)
class RegionalService:
    """A provider whose endpoint is a function of the region (Backblaze B2)."""

    name: str
    endpoint_template: EndpointTemplate
    regions: tuple[str, ...]


B2 = RegionalService("Backblaze B2", B2_ENDPOINT_TEMPLATE, B2_REGIONS)


def service_for(endpoint_url: str | None, given: RegionalService | None) -> RegionalService | None:
    """The regional service behind ``endpoint_url``: ``given``, else B2 for a B2 host."""
    if given is None and is_b2_host(host_of(endpoint_url)):
        return B2
    return given


def signing_region(endpoint_url: str | None, region: str | None) -> str | None:
    """The SigV4 region: ``region``, else the one in a B2 host name, else ``us-east-1``.

    On AWS itself (no ``endpoint_url``) ``None`` lets boto3's configuration decide.
    """
    if region is not None:
        return region
    host = host_of(endpoint_url)
    if is_b2_host(host) and host.startswith("s3."):
        return host.split(".")[1]  # s3.<region>.backblazeb2.com: B2 signs per region
    return DEFAULT_SIGNING_REGION if endpoint_url else None


__all__ = [
    "B2",
    "B2_DEFAULT_REGION",
    "B2_ENDPOINT_TEMPLATE",
    "B2_REGIONS",
    "DEFAULT_SIGNING_REGION",
    "EndpointTemplate",
    "RegionalService",
    "endpoint_for",
    "host_of",
    "is_b2_host",
    "service_for",
    "signing_region",
]
