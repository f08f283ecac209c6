"""Sources that expire or are not ready yet: the worker's policy, minus Celery.

Two decisions live here, beside (not inside) the copy engine:

- **Refresh** (:func:`copy_with_refresh`): a copy that fails ``source_expired``
  (the URL's stated expiry passed, or the source answered 401/403/410) asks the
  job's refresher for a fresh URL and tries again in the same delivery, at most
  ``max_refreshes`` times per asset over its whole life (counted in the asset
  record, so redeliveries cannot reset it). The fresh URL passes the SSRF guard
  before it is stored, and is stored sealed like the submitted one. The copy's
  checkpoint is keyed by job and asset, not URL: a fresh URL serving the same
  validators resumes the upload, one serving other validators restarts it
  cleanly (``transfer.copy._start_or_resume``).
- **Not ready** (:func:`not_ready_delay`): 404/425/503 with ``Retry-After``, or a
  404 inside the job's ``source_ready_within`` window, is an answer of "not yet".
  The asset shows ``waiting_source`` and a delayed message brings it back at the
  asked time; the delivery is not counted as an attempt. The wait is bounded by
  ``ready_wait`` seconds from the first "not yet"; then the asset fails
  ``source_not_found``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from genblaze_s3.ingest.models import AssetRecord, JobMeta
from genblaze_s3.ingest.redact import redact_url
from genblaze_s3.ingest.sealing import SourceRecord
from genblaze_s3.ingest.store import stats as stat_names
from genblaze_s3.ingest.worker.refresh import refresh_request
from genblaze_s3.transfer.errors import (
    SourceExpired,
    SourceNotFound,
    SourceNotReady,
    TransferError,
)
from genblaze_s3.transfer.expiry import is_expired, url_expiry

logger = logging.getLogger("genblaze_s3.ingest.worker.sources")

DEFAULT_MAX_REFRESHES = 3
DEFAULT_READY_WAIT = 600.0  # GENBLAZE_SOURCE_READY_WAIT: 10 minutes
# A 404 inside source_ready_within says nothing about when to come back: poll at a
# pace that grows with the wait so far, within these bounds.
_MIN_POLL = 1.0
_MAX_POLL = 30.0


@dataclass(frozen=True)
class SourceRules:
    """Per-worker limits on refreshing and waiting (from GENBLAZE_* at the entry point)."""

    max_refreshes: int = DEFAULT_MAX_REFRESHES
    ready_wait: float = DEFAULT_READY_WAIT


@dataclass(frozen=True)
class CopiedSource:
    """A finished copy and the source it was read from (the last, possibly refreshed, URL)."""

    result: Any  # transfer.CopyResult
    url: str
    refreshes: int


def check_refreshed_url(url: str, policy: Any, resolver: Any = None) -> None:
    """The SSRF guard on a refreshed URL, before it is stored: shape (the one URL parser,
    transfer.urls), scheme, host, address; raises InvalidURL / URLBlocked."""
    from genblaze_s3.transfer.config import FetchPolicy
    from genblaze_s3.transfer.urlguard import resolve_target, validate_url

    policy = policy or FetchPolicy()
    resolve_target(validate_url(url, policy), policy, resolver)


def copy_with_refresh(
    *,
    copy: Callable[[str], Any],
    url: str,
    meta: JobMeta,
    record: AssetRecord,
    refresher: Any,
    rules: SourceRules,
    store: Any,
    sealer: Any,
    fetch_policy: Any,
    sha256: str | None,
    abandon: Callable[[], None] = lambda: None,
) -> CopiedSource:
    """Run ``copy(url)``; on ``source_expired`` refresh the URL and run it again.

    ``copy`` keeps its checkpoint on ``source_expired`` when a refresh may follow
    (``refreshable(meta)``); ``abandon()`` aborts that checkpoint when we give up.
    Raises the last error when the refresh budget is spent, the refresher has no
    fresh URL, or the fresh URL is refused.
    """
    refreshes = record.refreshes
    while True:
        try:
            return CopiedSource(copy(url), url, refreshes)
        except SourceExpired as exc:
            if not refreshable(refresher, meta):
                raise
            try:
                url = _fresh_url(
                    exc, url, meta, record, refresher, rules, store, sealer, fetch_policy,
                    sha256, refreshes,
                )  # fmt: skip
            except TransferError as final:
                if final.retryable:
                    raise  # the refresh endpoint is down: the checkpoint waits for the retry
                abandon()
                raise
            refreshes += 1


def refreshable(refresher: Any, meta: JobMeta) -> bool:
    """Whether a ``source_expired`` copy of this job may be retried with a fresh URL."""
    return refresher is not None and bool(refresher.available(meta))


def _fresh_url(
    exc: SourceExpired,
    url: str,
    meta: JobMeta,
    record: AssetRecord,
    refresher: Any,
    rules: SourceRules,
    store: Any,
    sealer: Any,
    fetch_policy: Any,
    sha256: str | None,
    refreshes: int,
) -> str:
    """Ask for, check, seal and store the next URL (refreshes so far: ``refreshes``)."""
    if refreshes >= rules.max_refreshes:
        raise SourceExpired(
            f"{exc} (gave up after {refreshes} refresh(es) of the source URL)"
        ) from exc
    reason = "expired" if is_expired(url) else "refused"
    fresh = refresher.refresh(
        meta, refresh_request(meta.job_id, record.asset_id, meta.run_id, url, reason)
    )
    if not fresh:
        raise SourceExpired(f"{exc}; the refresher has no fresh URL") from exc
    check_refreshed_url(fresh, fetch_policy)  # URLBlocked / InvalidURL: fail the asset
    sealed = sealer.seal_source(SourceRecord(url=fresh, sha256=sha256))
    stored = store.replace_source(
        meta.job_id,
        record.asset_id,
        sealed,
        redacted_url=redact_url(fresh),
        expires_at=url_expiry(fresh),
        refreshes=refreshes + 1,
    )
    if not stored:  # the asset ended meanwhile (canceled): nothing to copy
        raise SourceExpired(f"{exc}; the asset ended while refreshing") from exc
    store.incr_stat(stat_names.SOURCE_REFRESHES_TOTAL)
    logger.info(
        "asset %s/%s: source refreshed (%d/%d)",
        meta.job_id,
        record.asset_id,
        refreshes + 1,
        rules.max_refreshes,
    )
    return str(fresh)


def not_ready_delay(
    exc: TransferError,
    *,
    meta: JobMeta,
    record: AssetRecord,
    now: datetime,
    ready_wait: float,
) -> tuple[float, datetime] | None:
    """(seconds until the retry, start of the wait) when ``exc`` means "not yet", else None.

    None also when the wait budget is spent: the caller then fails the asset
    ``source_not_found``. A retry the source asks for past the budget is moved to
    the budget's end: one last look rather than giving up early.
    """
    since = record.waiting_since or now
    deadline = since + timedelta(seconds=ready_wait)
    asked: float
    if isinstance(exc, SourceNotReady):
        # A floor: "Retry-After: 0" forever must not become a busy loop of deliveries.
        asked = max(exc.retry_after or 0.0, _MIN_POLL)
    elif isinstance(exc, SourceNotFound) and _in_ready_window(meta, now, exc):
        waited = (now - since).total_seconds()
        asked = min(_MAX_POLL, max(_MIN_POLL, waited / 2))
        deadline = min(deadline, meta.created_at + timedelta(seconds=meta.source_ready_within or 0))
    else:
        return None
    left = (deadline - now).total_seconds()
    if left <= 0:
        return None
    return min(max(asked, 0.0), left), since


def _in_ready_window(meta: JobMeta, now: datetime, exc: SourceNotFound) -> bool:
    if not meta.source_ready_within or exc.status != 404:
        return False
    return now < meta.created_at + timedelta(seconds=meta.source_ready_within)


def gave_up_waiting(exc: TransferError, record: AssetRecord, ready_wait: float) -> TransferError:
    """``exc`` as the asset's final error once "not yet" is no longer an answer.

    A source still not ready when the wait is spent fails ``source_not_found``
    (not a retryable ``source_not_ready``); other errors pass through unchanged.
    """
    if isinstance(exc, SourceNotReady) or (
        isinstance(exc, SourceNotFound) and record.waiting_since is not None
    ):
        found = SourceNotFound(f"source not ready after waiting up to {ready_wait:g}s: {exc}")
        found.status = exc.status
        return found
    return exc
