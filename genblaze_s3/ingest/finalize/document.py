"""The manifest document finalize writes: built from the job's records, serialized once.

Pure functions (no I/O): each asset rewritten to its bucket copy (url, sha256, size),
its fetch provenance and stored location, the ingest record (:mod:`.record`), the
canonical hash; then the canonical JSON bytes, signed (v2, :mod:`.signing`) when a
signer is given. Also what "the same run" means when a manifest is already stored.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from genblaze_core.models.manifest import Manifest

from genblaze_s3.ingest.finalize.record import RECORD_KEY, STORED_KEY, IngestRecord
from genblaze_s3.ingest.finalize.signing import ManifestSigner, canonical_bytes
from genblaze_s3.ingest.models import AssetRecord
from genblaze_s3.ingest.provenance import PROVENANCE_KEY, apply_provenance


def build_manifest(
    payload: str,
    assets: dict[str, AssetRecord],
    signer: ManifestSigner | None = None,
    *,
    record: IngestRecord | None = None,
) -> Manifest:
    """The stored manifest with every asset pointing at its bucket copy (pure).

    Each asset also gets its fetch provenance (``metadata["fetch"]``) and, with a
    ``record``, its stored location (``metadata["stored"]``) and the run the ingest
    record (``metadata["genblaze_s3"]``; see :mod:`.record`): all hashed. With a
    signer, the manifest gets its v2 signature over the whole document.
    """
    manifest = Manifest.model_validate_json(payload)
    _fill(manifest, assets, record)
    if signer is not None:
        signer.sign(manifest)
    return manifest


def _fill(manifest: Manifest, assets: dict[str, AssetRecord], record: IngestRecord | None) -> None:
    for step in manifest.run.steps:
        for asset in step.assets:
            rec = assets[asset.asset_id]
            asset.url = rec.url or asset.url
            asset.sha256 = rec.sha256
            asset.size_bytes = rec.size
            apply_provenance(asset.metadata, rec.provenance)
            if record is not None and rec.key:
                asset.metadata[STORED_KEY] = {"bucket": record.bucket, "key": rec.key}
    if record is not None:
        manifest.run.metadata[RECORD_KEY] = record.model_dump(mode="json")
    manifest.transfer_failures = []
    manifest.compute_hash()


_UNSIGNED_TAIL = b',"signature":null,"transfer_failures":[]}'


def manifest_document(
    manifest: Manifest, signer: ManifestSigner | None
) -> tuple[dict[str, Any], bytes]:
    """(the normalized document, its canonical JSON bytes), signed (v2) with a signer.

    Byte-identical to ``manifest.to_canonical_json()`` (what genblaze-core writes).
    The model is dumped, normalized and serialized once: the signature covers those
    bytes with ``"signature": null``, and is then put in their place. Sorted keys end
    every finalized manifest with ``"signature"`` and an empty ``"transfer_failures"``;
    anything else is serialized again.
    """
    from genblaze_core.canonical._normalize import normalize

    manifest.assert_writable_schema()
    document: dict[str, Any] = normalize(manifest.model_dump(mode="python"))
    document["signature"] = None
    unsigned = canonical_bytes(document)
    if signer is None:
        return document, unsigned
    signature = signer.sign_digest(hashlib.sha256(unsigned).hexdigest())
    document["signature"] = manifest.signature = signature
    if unsigned.endswith(_UNSIGNED_TAIL):
        tail = b',"signature":' + json.dumps(signature).encode() + b',"transfer_failures":[]}'
        return document, unsigned[: -len(_UNSIGNED_TAIL)] + tail
    return document, canonical_bytes(document)


def _content_identity(manifest: Manifest) -> str:
    """The manifest's canonical JSON without what one fetch adds (provenance, signature,
    the ingest record with its job id and signing time)."""
    bare = manifest.model_copy(deep=True)
    for step in bare.run.steps:
        for asset in step.assets:
            asset.metadata.pop(PROVENANCE_KEY, None)
    bare.run.metadata.pop(RECORD_KEY, None)
    bare.signature = None
    bare.compute_hash()
    return bare.to_canonical_json()


def _same_run_content(stored: bytes, ours: Manifest) -> bool:
    """True when the stored manifest records the same run, assets, keys and bytes."""
    try:
        theirs = Manifest.model_validate_json(stored)
    except ValueError:
        return False  # not a genblaze manifest: someone else's object
    return _content_identity(theirs) == _content_identity(ours)
