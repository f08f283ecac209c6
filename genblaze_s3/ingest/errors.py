"""One root for every error the ingest side raises."""

from __future__ import annotations

from genblaze_s3.transfer.errors import CheckpointStoreUnavailable


class IngestError(Exception):
    """Base of all ingest errors; `code` is stable and safe to show to users."""

    code = "ingest_error"


class InvalidJobError(IngestError, ValueError):
    """The submitted run or asset list cannot be ingested as given.

    `field` names the offending request field (dotted, e.g. `manifest_lock.retain_until`)
    when one is to blame; the API puts it in the 422 body.
    """

    code = "invalid_job"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class IdempotencyConflictError(IngestError):
    """An Idempotency-Key was reused with a different request body (HTTP 409)."""

    code = "idempotency_key_reused"


class TooManyJobsError(IngestError):
    """The tenant already runs its `max_concurrent_jobs` (HTTP 429)."""

    code = "too_many_jobs"


class DestinationNotAllowedError(IngestError, PermissionError):
    """The destination endpoint or bucket is outside the allow-list."""

    code = "destination_not_allowed"


class TenantsConfigMismatchError(IngestError):
    """This submitter's tenant rules place a job where no live worker would write it:
    its tenants config (GENBLAZE_TENANTS_FILE / GENBLAZE_API_TOKENS) is not the workers'."""

    code = "tenants_config_mismatch"


class JobNotFoundError(IngestError, LookupError):
    """No job with this id (or it expired, or it belongs to another tenant)."""

    code = "job_not_found"


class JobWaitTimeoutError(IngestError, TimeoutError):
    """`wait()` gave up before the job reached a terminal state."""

    code = "wait_timeout"

    def __init__(self, job_id: str, timeout: float, last_state: str | None) -> None:
        super().__init__(f"job {job_id} not finished after {timeout:g}s (state: {last_state})")
        self.job_id = job_id
        self.timeout = timeout
        self.last_state = last_state


class StoreUnavailableError(IngestError, CheckpointStoreUnavailable, ConnectionError):
    """The status store (Redis) cannot be reached (it also holds the copy checkpoints)."""

    code = "store_unavailable"


class EnqueueError(IngestError):
    """The broker refused or could not take the task."""

    code = "enqueue_failed"


class JobNotRetryableError(IngestError):
    """Retry asked of a job that is queued, running, finalizing or succeeded."""

    code = "not_retryable"

    def __init__(self, message: str, *, state: str = "") -> None:
        super().__init__(message)
        self.state = state

    @classmethod
    def for_state(cls, job_id: str, state: str) -> JobNotRetryableError:
        return cls(f"job {job_id} is {state}: only failed or canceled jobs retry", state=state)


class InvalidListingError(IngestError, ValueError):
    """A listing cursor this server did not hand out (or from another listing).

    `field` names the request parameter (`cursor`) for the API's 422 body.
    """

    code = "invalid_cursor"

    def __init__(self, message: str, *, field: str | None = "cursor") -> None:
        super().__init__(message)
        self.field = field


class CountChangedError(IngestError):
    """A bulk action's selection no longer has the count the operator confirmed (409)."""

    code = "count_changed"
