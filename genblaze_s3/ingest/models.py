"""Typed records for ingest jobs: states, destinations, assets, errors.

Why pydantic: the same shapes cross three boundaries (the status store, the
broker message, the HTTP API), and validating once at the edge means workers
never have to second-guess what they read back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from genblaze_s3.ingest import validation
from genblaze_s3.ingest.provenance import FetchProvenance


def utc_now() -> datetime:
    """Aware UTC now; every timestamp in a job record is aware UTC."""
    return datetime.now(UTC)


class JobState(StrEnum):
    """Lifecycle of a job; the last three are terminal."""

    QUEUED = "queued"
    RUNNING = "running"
    FINALIZING = "finalizing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


class AssetState(StrEnum):
    """Lifecycle of one asset copy; the last four are terminal."""

    QUEUED = "queued"
    COPYING = "copying"
    WAITING_SOURCE = "waiting_source"  # the source said "not yet": a delayed retry is queued
    STORED = "stored"
    DEDUPLICATED = "deduplicated"
    FAILED = "failed"
    CANCELED = "canceled"


TERMINAL_JOB_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED})
TERMINAL_ASSET_STATES = frozenset(
    {AssetState.STORED, AssetState.DEDUPLICATED, AssetState.FAILED, AssetState.CANCELED}
)


class ErrorInfo(BaseModel):
    """A stable machine `code` plus a human message (never a secret)."""

    code: str
    message: str = ""
    transfer_failures: list[str] | None = None  # failed asset ids, as genblaze's manifest has


class RetryInfo(BaseModel):
    """An asset between two tries of a retryable failure: what failed, which try comes
    next and when. Kept while that try runs (so "attempt 2 of 6" stays visible), dropped
    when the asset ends or is retried by hand."""

    attempt: int = Field(description="the number of the next try (2 = the first retry)")
    of: int = Field(description="tries before the asset fails for good")
    last_error: ErrorInfo
    next_try_at: datetime


class LockPolicy(BaseModel):
    """Object Lock retention for the manifest (mirrors genblaze ObjectLockConfig)."""

    mode: str = "GOVERNANCE"
    retain_until: datetime

    @field_validator("mode")
    @classmethod
    def _mode(cls, v: str) -> str:
        v = v.upper()
        if v not in {"GOVERNANCE", "COMPLIANCE"}:
            raise ValueError("mode must be GOVERNANCE or COMPLIANCE")
        return v

    @field_validator("retain_until")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("retain_until must be timezone-aware")
        return v


class DestinationSpec(BaseModel):
    """Where a job writes, by name only: workers sign with their own credentials.

    Every field is checked here (genblaze_s3.ingest.validation), so the API answers
    a 422 naming the field and a sink refuses at construction, before any work.
    """

    model_config = ConfigDict(extra="forbid")

    bucket: str = Field(min_length=3, max_length=63)
    endpoint_url: str | None = None
    region: str = "us-east-1"
    prefix: str = "genblaze"
    key_strategy: str = "content_addressable"

    @field_validator("key_strategy")
    @classmethod
    def _strategy(cls, v: str) -> str:
        from genblaze_core.storage.base import KeyStrategy

        return KeyStrategy(v.lower()).value

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, v: str) -> str:
        return validation.check_bucket(v)

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        return validation.check_region(v)

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        return validation.check_prefix(v)

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        return validation.check_endpoint(v)


class AssetRecord(BaseModel):
    """One asset of a job as stored and reported (source URL kept redacted)."""

    asset_id: str
    source_url: str
    media_type: str | None = None
    state: AssetState = AssetState.QUEUED
    bytes_done: int = 0
    bytes_total: int | None = None
    sha256: str | None = None
    size: int | None = None
    key: str | None = None
    url: str | None = None
    error: ErrorInfo | None = None
    worker: str | None = None  # host:pid of the delivery copying it (operators, kill tests)
    bytes_uploaded: int | None = None  # bytes the finishing delivery itself uploaded
    source_expires_at: datetime | None = None  # stated by the (current) source URL
    retry_at: datetime | None = None  # waiting_source: when the source asked us to come back
    waiting_since: datetime | None = None  # first "not ready" answer (the wait budget's start)
    refreshes: int = 0  # fresh source URLs obtained for this asset
    attempts: int = 0  # retries + crashed deliveries in a row (waits, slice hand-ons: none)
    retry: RetryInfo | None = None  # set while a retryable failure waits for its next try
    fetch_started_at: datetime | None = None  # the first read of the copy (provenance)
    provenance: FetchProvenance | None = None  # where and when the stored bytes were fetched
    seq: int = 0  # position in the submitted run: the order assets are paged in


class JobMeta(BaseModel):
    """The immutable part of a job, written once at submit time."""

    job_id: str
    tenant: str
    run_id: str
    created_at: datetime
    destination: DestinationSpec
    manifest_lock: LockPolicy | None = None
    notify_url: str | None = None
    refresh_url: str | None = None  # POSTed (signed) for a fresh source URL on 401/403/410
    source_refresher: str | None = None  # "pkg.module:function" a worker imports (Python sink)
    source_ready_within: float | None = None  # seconds after submit a 404 means "not yet"
    asset_ids: list[str]
    run_date: str  # YYYY-MM-DD of run.created_at: HIERARCHICAL keys depend on it
    run_tenant: str | None = None  # run.tenant_id: HIERARCHICAL keys depend on it
    labels: dict[str, str] = Field(default_factory=dict)  # the submitter's, for listing


class Progress(BaseModel):
    bytes_done: int = 0
    bytes_total: int | None = None
    assets_done: int = 0
    assets_total: int = 0


class ManifestInfo(BaseModel):
    key: str | None = None
    url: str | None = None
    locked_until: datetime | None = None


class AssetView(BaseModel):
    """The public shape of an asset in `GET /v1/jobs/{id}`."""

    asset_id: str
    source_url: str
    state: AssetState
    bytes_done: int
    bytes_total: int | None
    sha256: str | None
    key: str | None
    url: str | None
    error: ErrorInfo | None
    source_expires_at: datetime | None = None
    retry_at: datetime | None = None
    attempts: int | None = None
    refreshes: int | None = None
    retry: RetryInfo | None = None


class AssetCounts(BaseModel):
    """How many of a job's assets are in each state (kept as counters: O(1) to read)."""

    queued: int = 0
    copying: int = 0
    waiting_source: int = 0
    stored: int = 0
    deduplicated: int = 0
    failed: int = 0
    canceled: int = 0


class JobSummary(BaseModel):
    """A job without its assets: what `GET /v1/jobs` lists, at a cost free of asset count."""

    job_id: str
    state: JobState
    run_id: str
    created_at: datetime
    updated_at: datetime
    labels: dict[str, str] = Field(default_factory=dict)
    progress: Progress
    counts: AssetCounts = Field(default_factory=AssetCounts)
    error_codes: dict[str, int] = Field(
        default_factory=dict, description="failed assets by error code"
    )
    manifest: ManifestInfo
    error: ErrorInfo | None = None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_JOB_STATES


class JobView(JobSummary):
    """The document `GET /v1/jobs/{job_id}` returns: the summary plus a page of assets.

    `assets` holds the first page (all assets for a small job); `next_cursor`, when
    set, continues it through `GET /v1/jobs/{job_id}/assets?cursor=...`.
    """

    assets: list[AssetView]
    next_cursor: str | None = None


class AssetPage(BaseModel):
    """One page of a job's assets (`GET /v1/jobs/{job_id}/assets`)."""

    assets: list[AssetView]
    next_cursor: str | None = None


class JobList(BaseModel):
    """One page of the caller's jobs, newest first (`GET /v1/jobs`)."""

    jobs: list[JobSummary]
    next_cursor: str | None = None


class JobAccepted(BaseModel):
    """`POST /v1/jobs` answered 202: the job is recorded and queued."""

    job_id: str
    status_url: str


class TenantLimits(BaseModel):
    """`GET /v1/limits`: what the caller's tenant may submit, so a client can split a
    long list of URLs into jobs the API accepts instead of learning it from a 422."""

    tenant: str
    max_assets_per_job: int = Field(description="most assets one job may hold")
    max_concurrent_jobs: int | None = Field(
        default=None, description="jobs that may be unfinished at once (null: no limit)"
    )
    max_retention_days: int = Field(description="longest manifest lock a job may ask for")
    allow_compliance: bool = Field(description="whether COMPLIANCE manifest locks are allowed")


class RetryAccepted(BaseModel):
    """`POST /v1/jobs/{id}/retry` answered 202: these assets run again."""

    job_id: str
    state: JobState
    retried: list[str] = Field(description="asset ids sent to the workers again")
