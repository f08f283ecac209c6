"""Verify a stored manifest end to end, failing closed; say what was proved.

``verify_manifest(...)`` (and ``genblaze-ingest verify s3://bucket/key``) answers
two questions, one finding per check, each on its own line (:mod:`.report`):

**Is the content intact?** (no trusted key needed)

- **manifest**: readable, a genblaze manifest.
- **record**: the ingest record (:mod:`.record`) says this manifest was written to
  exactly this bucket and key (a copied or renamed manifest fails).
- **hash**: genblaze-core's canonical hash matches; every output declares a SHA-256.
- **asset**: each asset object (its recorded bucket/key; the URL must resolve to
  it) is re-read and its SHA-256 and size compared; a content-addressed key must
  name the asset's digest. Objects are read in parallel, large ones as ranged
  GETs (:mod:`.objects`).
- **envelope**: the DSSE/in-toto envelope beside the manifest (:mod:`.attestation`)
  states exactly what the manifest implies (every subject and digest, the
  manifest's own bytes, job, tenant, provenance): they agree.
- **lock** / **version**: the manifest (and envelope) carry the Object Lock the
  record says they were written with, and the manifest key has one version.

**Was it made by a key we trust?** Trusted keys come from ``public_key`` /
``trusted_keys`` (CLI: repeatable ``--public-key``, ``--keys-file``, the public
half of ``GENBLAZE_SIGNING_KEY`` on a worker host). With any trusted key a valid
signature by one of them is mandatory: a missing (stripped), unknown-key or bad
signature fails, naming the key id, and so does an envelope not signed by the
manifest's key. Without one, a signature cannot prove origin: the verdict is
``unproven`` (exit 3) unless ``content_only`` was asked for.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from genblaze_s3.ingest.finalize.keyring import Keyring, load_keyring
from genblaze_s3.ingest.finalize.objects import (
    DEFAULT_PART_SIZE,
    DEFAULT_RANGE_THREADS,
    Missing,
    ObjectReader,
    ProgressFn,
    s3_code,
)
from genblaze_s3.ingest.finalize.record import (
    IngestRecord,
    content_addressed_digest,
    record_of,
    stored_location,
)
from genblaze_s3.ingest.finalize.report import (
    EXIT_CODES,
    EXIT_CODES_HELP,
    Finding,
    Level,
    Verdict,
    VerifyReport,
)
from genblaze_s3.ingest.finalize.verify_checks import (
    check_envelope,
    check_lock,
    check_record,
    check_signature,
    check_versions,
)

__all__ = [
    "EXIT_CODES",
    "EXIT_CODES_HELP",
    "Finding",
    "Level",
    "Verdict",
    "VerifyReport",
    "parse_s3_location",
    "verify_manifest",
]

DEFAULT_CONCURRENCY = 4  # assets read at once
CAS = "content_addressable"


def parse_s3_location(location: str) -> tuple[str, str]:
    """(bucket, key) of ``s3://bucket/key``; ValueError otherwise."""
    parts = urlsplit(location)
    key = unquote(parts.path.lstrip("/"))
    if parts.scheme != "s3" or not parts.netloc or not key:
        raise ValueError(f"expected s3://bucket/key-of-manifest, got {location!r}")
    return parts.netloc, key


@dataclass
class _Stored:
    """The manifest as read: its bytes, the parsed document and model, its record."""

    body: bytes
    document: dict[str, Any]
    manifest: Any
    record: IngestRecord | None


def verify_manifest(
    target: Any,
    key: str | None = None,
    *,
    public_key: Any = None,
    trusted_keys: Iterable[Any] | None = None,
    content_only: bool = False,
    require_signature: bool = False,
    require_lock: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    range_threads: int = DEFAULT_RANGE_THREADS,
    part_size: int = DEFAULT_PART_SIZE,
    progress: ProgressFn | None = None,
    on_total: Callable[[int], None] | None = None,
    endpoint_url: str | None = None,
) -> VerifyReport:
    """Check the manifest at ``key`` in ``target``'s bucket; see the module doc.

    ``target`` is an ``S3StorageBackend`` (its credentials read the bucket) or an
    ``"s3://bucket/key"`` string (a backend is built with the default AWS credential
    chain and ``endpoint_url``). ``public_key`` / ``trusted_keys``: Ed25519 public
    key objects, or PEM text / PEM file paths (a file may hold several keys) /
    base64 raw bytes; any of them makes a trusted signature mandatory.
    ``content_only``: accept intact content without proving origin (no trusted key
    may be given then). ``require_signature``: without trusted keys, an unsigned
    manifest fails. ``progress(n)`` is called with bytes re-read as they are
    hashed; ``on_total(total)`` once, before reading.
    """
    backend = target
    if isinstance(target, str):
        from genblaze_s3.backend import S3StorageBackend

        bucket, key = parse_s3_location(target)
        backend = S3StorageBackend(bucket, endpoint_url=endpoint_url, preflight=False)
    if not key:
        raise ValueError("the manifest's key is required")
    keyring = _keyring(public_key, trusted_keys)
    if content_only and keyring:
        raise ValueError("content-only verification takes no trusted key")
    report = VerifyReport(str(backend.bucket), key, content_only=content_only)
    stored = _load(backend, key, report)
    if stored is None:
        return report
    check_record(stored.record, report)
    _check_hash(stored.manifest, report)
    check_signature(stored.document, keyring, require_signature, report)
    reader = ObjectReader(backend.client, report.bucket, range_threads, part_size, progress)
    try:
        _check_assets(backend, stored, report, reader, concurrency, on_total)
    finally:
        reader.close()
    check_envelope(backend, stored.document, stored.body, stored.record, keyring, report)
    check_lock(backend, key, stored.record, require_lock, report)
    check_versions(backend, key, "version", report)
    return report


def _keyring(public_key: Any, trusted_keys: Iterable[Any] | None) -> Keyring:
    values = [public_key] if public_key is not None else []
    values.extend(trusted_keys or [])
    texts = [v for v in values if isinstance(v, str)]
    objects = [v for v in values if not isinstance(v, str)]
    return load_keyring(texts).with_keys(objects)


def _load(backend: Any, key: str, report: VerifyReport) -> _Stored | None:
    from genblaze_core.models.manifest import parse_manifest

    try:
        body = backend.client.get_object(Bucket=backend.bucket, Key=key)["Body"].read()
    except Exception as exc:
        report.add(Level.FAIL, "manifest", key, f"cannot be read ({s3_code(exc)})")
        return None
    try:
        document = json.loads(body)
        manifest = parse_manifest(document)
    except Exception as exc:
        report.add(Level.FAIL, "manifest", key, f"is not a genblaze manifest ({exc})"[:300])
        return None
    try:
        record = record_of(document)
    except ValueError as exc:
        report.add(Level.FAIL, "record", key, str(exc))
        record = None
    report.add(
        Level.OK, "manifest", key, f"read ({len(body)} bytes, schema {manifest.schema_version})"
    )
    return _Stored(body, document, manifest, record)


def _check_hash(manifest: Any, report: VerifyReport) -> None:
    result = manifest.verification_report()
    if result.hash_ok:
        report.add(Level.OK, "hash", manifest.canonical_hash[:16], "canonical hash matches")
    else:
        report.add(
            Level.FAIL, "hash", manifest.canonical_hash[:16] or "-", "canonical hash differs"
        )
    for aid in result.unverified_sha256_ids:
        report.add(Level.FAIL, "hash", aid, "asset declares no valid sha256")
    for aid in result.invalid_metadata_ids:
        report.add(Level.FAIL, "hash", aid, "asset metadata out of spec")


# -- assets ---------------------------------------------------------------------


def _key_of(backend: Any, url: str) -> str | None:
    """The asset's key in this bucket: the backend's own rule, else a path-style URL."""
    fn = getattr(backend, "key_from_url", None)
    key = fn(url) if fn is not None else None
    if key:
        return str(key)
    parts = urlsplit(url)
    if parts.scheme == "s3" and parts.netloc == backend.bucket:
        return unquote(parts.path.lstrip("/")) or None
    prefix = f"/{backend.bucket}/"
    if parts.scheme in ("http", "https") and parts.path.startswith(prefix) and not parts.query:
        return unquote(parts.path[len(prefix) :]) or None
    return None


def _asset_key(backend: Any, asset: Any, record: IngestRecord | None) -> tuple[str | None, str]:
    """(the key to read, "" or why the asset's location fails)."""
    from_url = _key_of(backend, asset.url)
    stored = stored_location(asset.metadata)
    if stored is None:
        if record is not None:
            return None, "the manifest records no stored location for it"
        if from_url is None:
            return None, "URL is not an object of this bucket"
        return from_url, ""
    if stored.bucket != backend.bucket:
        return None, f"stored in bucket {stored.bucket}, not in {backend.bucket}"
    if from_url is not None and from_url != stored.key:
        return None, f"URL points at {from_url}, but the bytes were stored at {stored.key}"
    return stored.key, ""


def _cas_problem(key: str, sha256: str | None, record: IngestRecord | None) -> str:
    """Content-addressed keys name their digest: it must be the manifest's."""
    named = content_addressed_digest(key)
    if named is None:
        if record is not None and record.key_strategy == CAS:
            return "content-addressed layout, but the key names no SHA-256"
        return ""
    if named != sha256:
        return f"key names SHA-256 {named[:16]}..., the manifest says {str(sha256)[:16]}..."
    return ""


def _check_assets(
    backend: Any,
    stored: _Stored,
    report: VerifyReport,
    reader: ObjectReader,
    concurrency: int,
    on_total: Callable[[int], None] | None,
) -> None:
    assets = [a for step in stored.manifest.run.steps for a in step.assets]
    if on_total is not None:
        on_total(sum(a.size_bytes or 0 for a in assets))
    jobs: list[tuple[Any, str]] = []
    for asset in assets:
        key, problem = _asset_key(backend, asset, stored.record)
        problem = problem or _cas_problem(key or "", asset.sha256, stored.record)
        if problem or key is None:
            report.add(Level.FAIL, "asset", f"{asset.asset_id} ({key or asset.url})", problem)
        else:
            jobs.append((asset, key))
    with ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="verify") as pool:
        results = list(pool.map(lambda job: _check_asset(reader, *job), jobs))
    report.findings.extend(results)


def _check_asset(reader: ObjectReader, asset: Any, key: str) -> Finding:
    subject = f"{asset.asset_id} ({key})"
    try:
        sha256, size = reader.sha256(key)
    except Missing:
        return Finding(Level.FAIL, "asset", subject, "object is missing")
    except Exception as exc:
        return Finding(Level.FAIL, "asset", subject, f"cannot be read ({s3_code(exc)})")
    if asset.sha256 != sha256:
        return Finding(
            Level.FAIL, "asset", subject, f"SHA-256 differs: stored object is {sha256[:16]}..."
        )
    if asset.size_bytes is not None and asset.size_bytes != size:
        return Finding(Level.FAIL, "asset", subject, f"size {size} != manifest {asset.size_bytes}")
    return Finding(Level.OK, "asset", subject, f"SHA-256 matches ({size} bytes){_origin(asset)}")


def _origin(asset: Any) -> str:
    """'; fetched from <scheme://host/path> at <time>' from the asset's fetch provenance."""
    fetch = (asset.metadata or {}).get("fetch")
    if not isinstance(fetch, dict) or not fetch.get("host"):
        return ""
    where = f"{fetch.get('scheme', '')}://{fetch['host']}{fetch.get('path', '')}"
    when = f" at {fetch['fetched_at']}" if fetch.get("fetched_at") else ""
    return f"; fetched from {where}{when}"
