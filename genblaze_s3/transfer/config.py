"""Validated, typed settings for one copy: what to fetch (FetchPolicy) and how (CopyConfig).

Why two objects: FetchPolicy is security (who may be contacted, how much may be
read) and comes from the environment at entry points only; CopyConfig is
tuning (part size, concurrency, timeouts) that tests and benchmarks shrink.
Both are frozen dataclasses validated on construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from genblaze_s3.settings import Settings

MiB = 1024 * 1024
GiB = 1024 * MiB

DEFAULT_MAX_SOURCE_BYTES = 5 * GiB
DEFAULT_PART_SIZE = 16 * MiB
MAX_PARTS = 10_000  # S3 hard limit on parts per multipart upload
MAX_PART_SIZE = 5 * GiB  # S3 hard limit per part


@dataclass(frozen=True)
class FetchPolicy:
    """Who the engine may fetch from. The default is strict: https only, public hosts only.

    ``allow_private_hosts`` names hosts (or IP literals) that may resolve to
    private / loopback addresses -- for development and tests only.
    ``ca_bundle`` trusts an extra CA file (the test CDN's self-signed cert).
    """

    allow_http: bool = False
    allow_private_hosts: frozenset[str] = field(default_factory=frozenset)
    max_source_bytes: int = DEFAULT_MAX_SOURCE_BYTES
    max_redirects: int = 5
    max_url_length: int = 8192
    ca_bundle: str | None = None

    def __post_init__(self) -> None:
        if self.max_source_bytes <= 0:
            raise ValueError("max_source_bytes must be positive")
        if not 0 <= self.max_redirects <= 20:
            raise ValueError("max_redirects must be within 0..20")
        normalized = frozenset(h.strip().lower().rstrip(".") for h in self.allow_private_hosts)
        object.__setattr__(self, "allow_private_hosts", normalized - {""})

    @classmethod
    def from_settings(cls, config: Settings) -> FetchPolicy:
        """GENBLAZE_ALLOW_HTTP / _ALLOW_PRIVATE_HOSTS / _MAX_SOURCE_BYTES / _CA_BUNDLE."""
        return cls(
            allow_http=config.allow_http,
            allow_private_hosts=frozenset(config.allow_private_hosts),
            max_source_bytes=config.max_source_bytes,
            ca_bundle=config.ca_bundle,
        )


@dataclass(frozen=True)
class CopyConfig:
    """How a copy runs. Memory bound: ``part_size * part_buffers`` bytes of buffers.

    - ``part_size``: starting part size; grows so an object stays under 10,000 parts.
      S3 requires >= 5 MiB for all but the last part; SeaweedFS/tests may go lower.
    - ``concurrency``: part uploads in flight while the next part is being read.
    - ``part_buffers``: part buffers in memory (default ``concurrency``: the source is
      ~7x faster than the store, so a buffer spends almost all its life being sent and a
      dedicated read-ahead buffer buys nothing measurable; see bench/results/copy.md).
      Peak copy memory is ``part_size * part_buffers``: 48 MiB by default.
    - ``max_part_attempts``: attempts per part on transient S3 errors (500, 503, resets).
    - ``read_timeout``: seconds with no byte from the source before ``source_too_slow``.
    - ``total_deadline`` / ``min_rate`` / ``min_rate_grace``: a trickling source fails
      ``source_too_slow`` once, after the grace period, its average rate is below min_rate.
    - ``unsigned_checksummed_parts``: parts sent with a SHA-256 checksum header skip the
      redundant SigV4 payload hash (the server verifies the checksum instead).
    - ``cas_mode``: how a CAS copy with an unknown hash learns its key before uploading.
      ``"spool"`` hashes while writing an anonymous temp file, then uploads from it (one
      download; costs local disk bandwidth). ``"refetch"`` downloads once only to hash,
      then streams a second download straight to the final key (no disk; the source is
      read twice and must not change in between, else ``source_changed``). ``"auto"``
      (default) refetches a source that states its length and a validator (ETag or
      Last-Modified), so a change between the passes is caught before any byte is sent,
      and spools any other source. Measured (bench/results/copy.md): the hash pass costs
      ~1 s/GiB, the spool 1.5-2.5 s/GiB, and it needs the object's size in free disk.
    - ``spool_dir``: where a CAS copy with an unknown hash buffers the body (None: tempdir).
    """

    part_size: int = DEFAULT_PART_SIZE
    concurrency: int = 3
    part_buffers: int | None = None
    max_part_attempts: int = 5
    backoff_base: float = 0.25  # = genblaze_s3.backoff.S3_CALL
    backoff_cap: float = 8.0
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    total_deadline: float = 6 * 3600.0
    min_rate: float = 16 * 1024.0
    min_rate_grace: float = 30.0
    progress_interval: float = 0.5
    read_chunk: int = 1 * MiB
    spool_dir: str | None = None
    cas_mode: Literal["auto", "spool", "refetch"] = "auto"
    use_sha256_checksums: bool = True
    unsigned_checksummed_parts: bool = True

    def __post_init__(self) -> None:
        if not 64 * 1024 <= self.part_size <= MAX_PART_SIZE:
            raise ValueError("part_size must be within 64 KiB..5 GiB")
        if not 1 <= self.concurrency <= 64:
            raise ValueError("concurrency must be within 1..64")
        if self.part_buffers is not None and self.part_buffers < 1:
            raise ValueError("part_buffers must be >= 1")
        if self.max_part_attempts < 1:
            raise ValueError("max_part_attempts must be >= 1")
        if min(self.connect_timeout, self.read_timeout, self.total_deadline) <= 0:
            raise ValueError("timeouts must be positive")
        if self.cas_mode not in ("auto", "spool", "refetch"):
            raise ValueError("cas_mode must be 'auto', 'spool' or 'refetch'")
        if self.read_chunk < 4096:
            raise ValueError("read_chunk must be >= 4096")
