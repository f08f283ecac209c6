"""Finalize a job: when every asset is terminal, write and lock the run manifest (and,
signed, its envelope) exactly once, mark the job, then notify.

If any asset failed, no manifest is written: a manifest must never claim bytes the
bucket lacks. The document is built in :mod:`.document` and written in :mod:`.write`;
their names are re-exported here (the workers and tests import them from here).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from genblaze_s3.ingest.finalize.document import (
    _content_identity,
    _same_run_content,
    build_manifest,
    manifest_document,
)
from genblaze_s3.ingest.finalize.signing import ManifestSigner
from genblaze_s3.ingest.finalize.write import ManifestConflict, write_manifest
from genblaze_s3.ingest.models import (
    TERMINAL_ASSET_STATES,
    TERMINAL_JOB_STATES,
    AssetRecord,
    AssetState,
    ErrorInfo,
    JobMeta,
    JobState,
)
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.transitions import job_outcome

__all__ = [
    "ManifestConflict",
    "_content_identity",
    "_same_run_content",
    "build_manifest",
    "failure_summary",
    "finalize_job",
    "manifest_document",
    "write_manifest",
]

logger = logging.getLogger("genblaze_s3.ingest.finalize.manifest")


def failure_summary(assets: list[AssetRecord]) -> ErrorInfo:
    failed = [a for a in assets if a.state == AssetState.FAILED]
    codes = sorted({a.error.code for a in failed if a.error})
    return ErrorInfo(
        code="assets_failed",
        message=f"{len(failed)}/{len(assets)} asset(s) failed ({', '.join(codes)}); "
        "no manifest was written",
        transfer_failures=[a.asset_id for a in failed],
    )


def _move(store: StatusStore, job_id: str, new: JobState, **fields: Any) -> JobState | None:
    """Move the job to `new`; the state it is in afterwards. A move that landed is that
    state (no read back); one that did not (a cancel, or an earlier delivery, got there
    first) is read back."""
    if store.transition_job(job_id, new, **fields):
        return new
    return store.job_state(job_id)


def finalize_job(
    store: StatusStore,
    backend_for: Callable[[Any], Any],
    job_id: str,
    *,
    notify: Callable[[JobMeta, str], None] | None = None,
    signer: ManifestSigner | None = None,
) -> JobState | None:
    """Write the manifest (or fail the job) and return the job's state afterwards.

    A state that is not terminal means some asset is not terminal yet: nothing was
    done, and the last asset to finish asks for finalize again. None: the job is
    gone (expired). Idempotent: a job already terminal is left alone; a manifest
    already in the bucket is never overwritten (its existing lock is recorded instead).
    """
    meta, state, payload = store.finalize_inputs(job_id)
    if meta is None or state is None:
        return None
    if state in TERMINAL_JOB_STATES:
        return state
    assets = store.get_assets(job_id, meta.asset_ids)
    if any(a.state not in TERMINAL_ASSET_STATES for a in assets):
        return state
    final: JobState | None
    outcome = job_outcome([a.state for a in assets])
    if outcome == JobState.CANCELED:
        final = _move(store, job_id, JobState.CANCELED, error=ErrorInfo(code="canceled"))
    elif outcome == JobState.FAILED:
        final = _move(store, job_id, JobState.FAILED, error=failure_summary(assets))
    else:
        now = _move(store, job_id, JobState.FINALIZING)
        if now != JobState.FINALIZING:
            return now  # canceled meanwhile
        try:
            info = write_manifest(
                backend_for(meta.destination),
                meta,
                payload or "",
                {a.asset_id: a for a in assets},
                signer=signer,
            )
        except ManifestConflict:
            message = "the manifest key already holds another job's manifest; not overwritten"
            conflict = ErrorInfo(code="key_conflict", message=message)
            final = _move(store, job_id, JobState.FAILED, error=conflict)
        except Exception as exc:
            logger.warning("job %s: manifest write failed: %s", job_id, type(exc).__name__)
            raise
        else:
            final = _move(store, job_id, JobState.SUCCEEDED, manifest=info)
    if notify is not None and meta.notify_url:
        view = store.get_job(job_id)
        if view is not None:
            notify(meta, view.model_dump_json())
    if final in TERMINAL_JOB_STATES and (meta.notify_url or meta.refresh_url):
        # The callbacks' last use is over (a succeeded job never runs again; a failed one
        # keeps them only sealed, for a retry): a token in a URL leaves the store now.
        store.drop_callback_urls(job_id, keep_sealed=final != JobState.SUCCEEDED)
    return final
