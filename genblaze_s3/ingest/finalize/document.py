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


def _fill(
    manifest: Manifest,
    assets: dict[str, AssetRecord],
    record: IngestRecord | None,
    *,
    rehash: bool = True,
) -> None:
    """Point every asset at its stored copy; ``rehash`` False leaves the canonical hash
    to `manifest_document`, which computes it from the document it normalizes anyway."""
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
    if rehash:
        manifest.compute_hash()


_UNSIGNED_TAIL = b',"signature":null,"transfer_failures":[]}'


def manifest_document(
    manifest: Manifest, signer: ManifestSigner | None
) -> tuple[dict[str, Any], bytes]:
    """(the normalized document, its canonical JSON bytes), hashed and, with a signer,
    signed (v2).

    Byte-identical to ``manifest.compute_hash(); manifest.to_canonical_json()`` (what
    genblaze-core writes), at about half the cost: the model is dumped and normalized
    once, the canonical hash is taken from that normalized document (`_canonical_hash`)
    and the signature covers the bytes with ``"signature": null`` before it is put in
    their place. Sorted keys end every finalized manifest with ``"signature"`` and an
    empty ``"transfer_failures"``; anything else is serialized again.
    """
    from genblaze_s3.ingest.finalize.canonical import normalize

    manifest.assert_writable_schema()
    document: dict[str, Any] = normalize(manifest.model_dump(mode="python"))
    digest = _canonical_hash(document)
    if digest is None:  # genblaze-core's own path: see _canonical_hash
        manifest.compute_hash()
        document = normalize(manifest.model_dump(mode="python"))
    else:
        manifest.canonical_hash = document["canonical_hash"] = digest
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


class _NormalizedRun:
    """Stands in for a `Run` in genblaze-core's ``_hash_payload``: its dump is the
    already normalized run, with fresh dicts wherever ``_hash_payload`` pops keys (the
    run, its steps, their assets and inputs), so the document itself stays whole."""

    def __init__(self, run: dict[str, Any]) -> None:
        self._run = run

    def model_dump(self, mode: str = "python") -> dict[str, Any]:
        run = dict(self._run)
        steps = []
        for step in self._run.get("steps", []):
            copied = dict(step)
            for field in ("assets", "inputs"):
                if isinstance(step.get(field), list):
                    copied[field] = [dict(item) for item in step[field]]
            steps.append(copied)
        if "steps" in run:
            run["steps"] = steps
        return run


def _canonical_hash(document: dict[str, Any]) -> str | None:
    """genblaze-core's ``Manifest.compute_hash()`` from the normalized document, or None
    where only genblaze-core's own path is exact.

    Why: ``compute_hash`` dumps and normalizes the whole run again, a third of a
    1,000-asset finalize (bench/results/finalize.md). Here genblaze-core's own
    ``_hash_payload`` strips the operational fields (its exclusion sets and schema
    policies, not a copy of them) from the normalized run, and the result is serialized
    as ``canonical_json`` does. That equals ``canonical_json(payload)`` because
    normalizing is idempotent and stripping only removes keys, except for one value
    stripping makes: the credential-free URL marked on an asset without a sha256; for a
    non-ASCII URL (where NFC could differ) this returns None. A test holds the two
    hashes equal over manifests built to differ in every such way.
    """
    from genblaze_core.models.asset import is_valid_sha256
    from genblaze_core.models.manifest import _hash_payload

    run = document.get("run")
    if not isinstance(run, dict):
        return None
    for step in run.get("steps", []):
        for item in [*step.get("assets", []), *step.get("inputs", [])]:
            url = item.get("url")
            if (
                isinstance(url, str)
                and not url.isascii()
                and not is_valid_sha256(item.get("sha256"))
            ):
                return None
    payload = _hash_payload(str(document["schema_version"]), _NormalizedRun(run))  # type: ignore[arg-type]
    return hashlib.sha256(canonical_bytes(payload)).hexdigest()


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
