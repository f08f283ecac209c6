"""Verify a stored manifest end to end: hash, signature, every asset's bytes, its lock.

``verify_manifest(...)`` (and ``genblaze-ingest verify s3://bucket/key``) answers
"has anything changed since this manifest was written?" with one finding per
check, each on its own line:

- **hash**: the canonical hash recomputed by genblaze-core matches; every output
  asset declares a SHA-256.
- **signature**: the Ed25519 signature (``Manifest.signature``, see
  :mod:`genblaze_s3.ingest.finalize.signing`) verifies against the given public key. A
  manifest without one (e.g. written inline by genblaze-core) is *noted*, and
  fails only with ``require_signature``.
- **asset**: each asset object is re-read from the bucket and its SHA-256 and
  size compared with the manifest's. Objects are read in parallel, large ones
  as parallel ranged GETs pinned to one ETag (``If-Match``) and hashed in order,
  so a 1 GiB object is read about as fast as ``s5cmd cat`` reads it
  (bench/bench_verify.py).
- **lock**: the manifest's Object Lock retention (mode and retain-until). An
  unlocked manifest is *noted*, and fails only with ``require_lock``; a lock
  whose retention has ended fails.

The report is ``ok`` only when no finding failed.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import unquote, urlsplit

DEFAULT_CONCURRENCY = 4  # assets read at once
DEFAULT_RANGE_THREADS = 8  # ranged GETs in flight per large object (measured: bench_verify)
DEFAULT_PART_SIZE = 8 * 1024 * 1024
_READ = 1024 * 1024

ProgressFn = Callable[[int], None]


class Level(StrEnum):
    OK = "ok"
    NOTE = "note"  # reported, not a failure
    FAIL = "fail"


@dataclass(frozen=True)
class Finding:
    """One checked fact about the manifest; ``line()`` is how the CLI prints it."""

    level: Level
    check: str  # manifest | hash | signature | asset | lock
    subject: str
    message: str

    def line(self) -> str:
        return f"{self.level.value.upper():4} {self.check:9} {self.subject}: {self.message}"


@dataclass
class VerifyReport:
    """Every finding, in check order; ``ok`` when none failed."""

    bucket: str
    key: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.level is Level.FAIL for f in self.findings)

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.level is Level.FAIL]

    def lines(self) -> Iterator[str]:
        for f in self.findings:
            yield f.line()

    def add(self, level: Level, check: str, subject: str, message: str) -> None:
        self.findings.append(Finding(level, check, subject, message))


def parse_s3_location(location: str) -> tuple[str, str]:
    """(bucket, key) of ``s3://bucket/key``; ValueError otherwise."""
    parts = urlsplit(location)
    key = unquote(parts.path.lstrip("/"))
    if parts.scheme != "s3" or not parts.netloc or not key:
        raise ValueError(f"expected s3://bucket/key-of-manifest, got {location!r}")
    return parts.netloc, key


def verify_manifest(
    target: Any,
    key: str | None = None,
    *,
    public_key: Any = None,
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
    chain and ``endpoint_url``). ``public_key``: an Ed25519 public key object, or
    PEM text / a PEM file path / base64 raw bytes. ``progress(n)`` is called with
    bytes re-read as they are hashed; ``on_total(total)`` once, before reading.
    """
    from genblaze_s3.ingest.finalize.signing import load_public_key

    backend = target
    if isinstance(target, str):
        from genblaze_s3.backend import S3StorageBackend

        bucket, key = parse_s3_location(target)
        backend = S3StorageBackend(bucket, endpoint_url=endpoint_url, preflight=False)
    if not key:
        raise ValueError("the manifest's key is required")
    if isinstance(public_key, str):
        public_key = load_public_key(public_key)
    report = VerifyReport(str(backend.bucket), key)
    manifest = _load(backend, key, report)
    if manifest is None:
        return report
    _check_hash(manifest, report)
    _check_signature(manifest, public_key, require_signature, report)
    reader = _Reader(backend.client, str(backend.bucket), range_threads, part_size, progress)
    try:
        _check_assets(backend, manifest, report, reader, concurrency, on_total)
    finally:
        reader.close()
    _check_lock(backend, key, require_lock, report)
    return report


def _load(backend: Any, key: str, report: VerifyReport) -> Any:
    from genblaze_core.models.manifest import parse_manifest

    try:
        body = backend.client.get_object(Bucket=backend.bucket, Key=key)["Body"].read()
    except Exception as exc:
        report.add(Level.FAIL, "manifest", key, f"cannot be read ({_s3_code(exc)})")
        return None
    try:
        manifest = parse_manifest(json.loads(body))
    except Exception as exc:
        report.add(Level.FAIL, "manifest", key, f"is not a genblaze manifest ({exc})"[:300])
        return None
    report.add(
        Level.OK, "manifest", key, f"read ({len(body)} bytes, schema {manifest.schema_version})"
    )
    return manifest


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


def _check_signature(manifest: Any, public_key: Any, required: bool, report: VerifyReport) -> None:
    from genblaze_s3.ingest.finalize.signing import verify_signature

    if not manifest.signature:
        level = Level.FAIL if required else Level.NOTE
        report.add(level, "signature", "-", "manifest is not signed")
        return
    if public_key is None:
        kid = manifest.signature.split(":")[1] if manifest.signature.count(":") >= 2 else "?"
        level = Level.FAIL if required else Level.NOTE
        report.add(level, "signature", kid, "signed, but no public key was given to check it")
        return
    check = verify_signature(manifest.signature, manifest.canonical_hash, public_key)
    report.add(Level.OK if check.ok else Level.FAIL, "signature", check.key_id or "-", check.reason)


def _check_lock(backend: Any, key: str, required: bool, report: VerifyReport) -> None:
    try:
        head = backend.client.head_object(Bucket=backend.bucket, Key=key)
    except Exception as exc:
        report.add(
            Level.FAIL, "lock", key, f"cannot read the manifest's retention ({_s3_code(exc)})"
        )
        return
    mode, until = head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")
    if not mode or not isinstance(until, datetime):
        level = Level.FAIL if required else Level.NOTE
        report.add(level, "lock", key, "manifest is not under Object Lock retention")
    elif until <= datetime.now(UTC):
        report.add(Level.FAIL, "lock", key, f"{mode} retention ended at {until.isoformat()}")
    else:
        report.add(Level.OK, "lock", key, f"{mode} until {until.isoformat()}")


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


def _check_assets(
    backend: Any,
    manifest: Any,
    report: VerifyReport,
    reader: _Reader,
    concurrency: int,
    on_total: Callable[[int], None] | None,
) -> None:
    assets = [a for step in manifest.run.steps for a in step.assets]
    if on_total is not None:
        on_total(sum(a.size_bytes or 0 for a in assets))
    jobs: list[tuple[Any, str]] = []
    for asset in assets:
        key = _key_of(backend, asset.url)
        if key is None:
            report.add(Level.FAIL, "asset", asset.asset_id, "URL is not an object of this bucket")
        else:
            jobs.append((asset, key))
    with ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="verify") as pool:
        results = list(pool.map(lambda job: _check_asset(reader, *job), jobs))
    report.findings.extend(results)


def _check_asset(reader: _Reader, asset: Any, key: str) -> Finding:
    subject = f"{asset.asset_id} ({key})"
    try:
        sha256, size = reader.sha256(key)
    except _Missing:
        return Finding(Level.FAIL, "asset", subject, "object is missing")
    except Exception as exc:
        return Finding(Level.FAIL, "asset", subject, f"cannot be read ({_s3_code(exc)})")
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


class _Missing(Exception):
    pass


class _Reader:
    """Streams objects through SHA-256: one GET for small ones, ordered ranged GETs for large.

    Why ranges: one HTTP stream from S3 is usually slower than the hash; a few
    ranges in flight keep the hash fed. Ranges are pinned to the ETag seen by the
    HEAD (``If-Match``), so an object replaced mid-read fails instead of hashing a
    mix of two versions. Memory: at most ``threads + 1`` parts per object.
    """

    def __init__(
        self,
        client: Any,
        bucket: str,
        threads: int,
        part_size: int,
        progress: ProgressFn | None,
    ) -> None:
        self._client = client
        self._bucket = bucket
        self._threads = max(1, threads)
        self._part = max(_READ, part_size)
        self._progress = progress or (lambda n: None)
        self._pool = ThreadPoolExecutor(self._threads * 2, thread_name_prefix="verify-range")
        self._lock = threading.Lock()

    def sha256(self, key: str) -> tuple[str, int]:
        try:
            head = self._client.head_object(Bucket=self._bucket, Key=key)
        except Exception as exc:
            if _s3_code(exc) in ("404", "NoSuchKey", "NotFound"):
                raise _Missing(key) from exc
            raise
        size = int(head.get("ContentLength", 0))
        etag = head.get("ETag")
        if size <= self._part:
            return self._whole(key, etag), size
        return self._ranged(key, size, etag), size

    def _get(self, key: str, etag: str | None, rng: str | None = None) -> Any:
        kw: dict[str, Any] = {"Bucket": self._bucket, "Key": key}
        if etag:
            kw["IfMatch"] = etag
        if rng:
            kw["Range"] = rng
        return self._client.get_object(**kw)["Body"]

    def _whole(self, key: str, etag: str | None) -> str:
        h = hashlib.sha256()
        body = self._get(key, etag)
        try:
            while chunk := body.read(_READ):
                h.update(chunk)
                self._progress(len(chunk))
        finally:
            body.close()
        return h.hexdigest()

    def _range(self, key: str, etag: str | None, start: int, end: int) -> bytes:
        """The bytes [start, end), read in one call: the socket loop then runs in C, off the GIL."""
        body = self._get(key, etag, f"bytes={start}-{end - 1}")
        try:
            data = body.read()
        finally:
            body.close()
        if len(data) != end - start:
            raise OSError(f"range {start}-{end - 1} ended after {len(data)} bytes")
        return bytes(data)

    def _ranged(self, key: str, size: int, etag: str | None) -> str:
        h = hashlib.sha256()
        starts = iter(range(0, size, self._part))
        inflight: deque[Future[bytes]] = deque()

        def submit() -> None:
            start = next(starts, None)
            if start is not None:
                end = min(start + self._part, size)
                inflight.append(self._pool.submit(self._range, key, etag, start, end))

        for _ in range(self._threads):
            submit()
        try:
            while inflight:
                data = inflight.popleft().result()
                submit()
                h.update(data)
                self._progress(len(data))
        finally:
            for f in inflight:
                f.cancel()
        return h.hexdigest()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _s3_code(exc: BaseException) -> str:
    from genblaze_s3.transfer.errors import s3_error_code

    return s3_error_code(exc) or type(exc).__name__
