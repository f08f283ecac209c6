"""What the workers write into a manifest about where it and its assets live.

Two records, both inside the manifest document (so inside its v2 signature, see
:mod:`.signing`, and inside genblaze-core's canonical hash: ``Run.metadata`` and
``Asset.metadata`` are hashed):

- ``asset.metadata["stored"]``: ``{"bucket", "key"}`` of the object holding the
  asset's bytes. The URL alone does not say it (a ``public_url_base`` or CDN host
  hides the bucket); verify reads the bytes from exactly this key and checks the
  URL resolves to it.
- ``run.metadata["genblaze_s3"]``: the :class:`IngestRecord`: job and tenant, the
  bucket and key the manifest was written to (a manifest copied or renamed to
  another key fails verify), the key strategy (content-addressed keys must name
  the asset's digest), the Object Lock the manifest was written with (a new,
  unlocked version of the manifest fails), the DSSE envelope's key, the signing
  key id and time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError

RECORD_KEY = "genblaze_s3"
STORED_KEY = "stored"
ENVELOPE_SUFFIX = ".intoto.json"


class LockRecord(BaseModel):
    mode: str
    retain_until: datetime


class IngestRecord(BaseModel):
    """``run.metadata["genblaze_s3"]`` (see the module doc); version 1."""

    version: int = 1
    job_id: str
    tenant: str
    bucket: str
    manifest_key: str
    key_strategy: str
    lock: LockRecord | None = None
    envelope_key: str | None = None  # None: not signed, so no envelope
    key_id: str | None = None
    signed_at: datetime | None = None


class StoredLocation(BaseModel):
    bucket: str
    key: str


def envelope_key_for(manifest_key: str) -> str:
    """Where the DSSE envelope sits: beside the manifest (``manifests/{run_id}.intoto.json``)."""
    stem = manifest_key[: -len(".json")] if manifest_key.endswith(".json") else manifest_key
    return stem + ENVELOPE_SUFFIX


def record_of(document: dict[str, Any]) -> IngestRecord | None:
    """The ingest record of a parsed manifest document; None when absent.

    ValueError when present but malformed (someone edited it: verify fails it).
    """
    run = document.get("run")
    metadata = run.get("metadata") if isinstance(run, dict) else None
    raw = metadata.get(RECORD_KEY) if isinstance(metadata, dict) else None
    if raw is None:
        return None
    try:
        return IngestRecord.model_validate(raw)
    except ValidationError as exc:
        raise ValueError(f"ingest record is malformed ({exc.error_count()} error(s))") from exc


def stored_location(asset_metadata: dict[str, Any] | None) -> StoredLocation | None:
    """``metadata["stored"]`` of an asset, or None (absent or malformed)."""
    raw = (asset_metadata or {}).get(STORED_KEY)
    if not isinstance(raw, dict):
        return None
    try:
        return StoredLocation.model_validate(raw)
    except ValidationError:
        return None


def content_addressed_digest(key: str) -> str | None:
    """The SHA-256 a content-addressed key names (its file name's stem), or None."""
    name = key.rsplit("/", 1)[-1]
    stem = name.split(".", 1)[0]
    if len(stem) == 64 and all(c in "0123456789abcdef" for c in stem):
        return stem
    return None
