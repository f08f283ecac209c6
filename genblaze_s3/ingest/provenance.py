"""Fetch provenance: where and when each stored asset's bytes came from.

Recorded by the worker when an asset is stored, and written by finalize into the
manifest as ``asset.metadata["fetch"]`` (see :func:`apply_provenance`).

Why ``Asset.metadata``: genblaze-core hashes every asset field except
``asset_id`` and ``url`` (``_ASSET_HASH_EXCLUDE``), so provenance placed there
**enters the canonical hash**, and a signed manifest (``Manifest.signature``
signs the canonical hash) vouches for it too. ``Step.provider_payload`` would
have kept it out of the hash, i.e. unsigned and freely editable. The fields
of ``metadata["fetch"]``, all hashed:

==================  ==========================================================
``scheme``          ``https`` (or ``http`` where a deployment allows it)
``host``            host[:port] of the URL the bytes were read from (no userinfo)
``path``            its path, percent-encoded as sent; **never the query** (a
                    presigned signature) and never userinfo
``fetched_at``      UTC time the stored read began (ISO 8601); null when nothing
                    was read (content-addressed copy already in the bucket)
``etag``            the source's ``ETag`` on that read (null when absent)
``last_modified``   its ``Last-Modified``
``content_length``  its ``Content-Length`` (null when chunked / unstated)
``bytes_stored``    size of the stored object, in bytes
``attempts``        copy attempts used: 1 + retries of retryable errors +
                    deliveries that died before it (a wait for a "not ready"
                    source or a bounded slice handing on is not an attempt)
``refreshes``       fresh source URLs obtained (expired / revoked URLs)
``deduplicated``    true when the object was already in the bucket
==================  ==========================================================

Outside the hash, as genblaze-core defines it: ``asset_id``, ``url``, and the
manifest's ``manifest_uri``, ``signature``, ``encryption_scheme`` and
``transfer_failures``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

PROVENANCE_KEY = "fetch"


class FetchProvenance(BaseModel):
    """One stored asset's fetch record (see the module doc for each field)."""

    scheme: str
    host: str
    path: str
    fetched_at: datetime | None
    etag: str | None = None
    last_modified: str | None = None
    content_length: int | None = None
    bytes_stored: int
    attempts: int
    refreshes: int = 0
    deduplicated: bool = False


def source_location(url: str) -> tuple[str, str, str]:
    """(scheme, host[:port], path) of a URL: no query, no fragment, no userinfo."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return parts.scheme.lower(), host.lower(), parts.path or "/"


def build_provenance(
    url: str,
    *,
    fetched_at: datetime | None,
    validators: Any,
    bytes_stored: int,
    attempts: int,
    refreshes: int,
    deduplicated: bool,
) -> FetchProvenance:
    """The record for one stored copy; ``validators`` is the copy's SourceValidators or None."""
    scheme, host, path = source_location(url)
    return FetchProvenance(
        scheme=scheme,
        host=host,
        path=path,
        fetched_at=fetched_at if validators is not None else None,
        etag=getattr(validators, "etag", None),
        last_modified=getattr(validators, "last_modified", None),
        content_length=getattr(validators, "length", None),
        bytes_stored=bytes_stored,
        attempts=attempts,
        refreshes=refreshes,
        deduplicated=deduplicated,
    )


def apply_provenance(metadata: dict[str, Any], provenance: FetchProvenance | None) -> None:
    """Put the record into an asset's metadata (JSON values only: it is hashed)."""
    if provenance is not None:
        metadata[PROVENANCE_KEY] = provenance.model_dump(mode="json")
