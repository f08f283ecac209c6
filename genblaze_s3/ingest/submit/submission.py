"""Turn a genblaze run (or a bare list of URLs) into job records: pure, no I/O.

Shared by QueuedStorageSink.write_run and POST /v1/jobs so both paths validate
the same way and produce the same records.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from genblaze_core.models.asset import Asset
from genblaze_core.models.enums import RunStatus, StepStatus
from genblaze_core.models.manifest import Manifest
from genblaze_core.models.run import Run
from genblaze_core.models.step import Step

from genblaze_s3.ingest.errors import InvalidJobError
from genblaze_s3.ingest.models import AssetRecord, DestinationSpec, JobMeta, LockPolicy, utc_now
from genblaze_s3.ingest.redact import redact_url
from genblaze_s3.ingest.sealing import SourceRecord, SourceSealer
from genblaze_s3.ingest.validation import check_import_path, check_labels, check_url
from genblaze_s3.transfer.expiry import url_expiry

MAX_ASSETS_PER_JOB = 10_000


def new_job_id() -> str:
    """128 random bits, URL-safe: ids are unguessable, not just unique."""
    return secrets.token_hex(16)


@dataclass(frozen=True)
class JobSubmission:
    """Everything the store needs to record a job, built before any write."""

    meta: JobMeta
    assets: list[AssetRecord]
    sources: dict[str, SourceRecord]  # asset_id -> raw URL + expected hash, never served
    payload: str  # the manifest JSON finalize rewrites

    def sealed_sources(self, sealer: SourceSealer) -> dict[str, str]:
        """The source records as the store keeps them (sealed when `sealer` has a key)."""
        return {asset_id: sealer.seal_source(r) for asset_id, r in self.sources.items()}

    def dispatch_order(self) -> list[str]:
        """Asset ids, those whose source URLs expire soonest first (then as submitted).

        Why: a job's URLs may die within minutes of each other; copying the
        shortest-lived first gives every asset its best chance. Unstated expiry
        sorts last (it is not known to be in a hurry).
        """
        by_id = {a.asset_id: a for a in self.assets}
        return sorted(
            self.meta.asset_ids,
            key=lambda aid: (
                by_id[aid].source_expires_at is None,
                by_id[aid].source_expires_at or self.meta.created_at,
            ),
        )


def run_from_urls(items: list[tuple[str, str | None, str | None]]) -> Run:
    """Wrap bare (url, media_type, sha256) items in a one-step run for the manifest."""
    assets = [
        Asset(url=url, media_type=media_type or "application/octet-stream", sha256=sha)
        for url, media_type, sha in items
    ]
    step = Step(
        provider="genblaze-ingest", model="copy", status=StepStatus.SUCCEEDED, assets=assets
    )
    return Run(name="genblaze-ingest", status=RunStatus.COMPLETED, steps=[step])


def check_source(url: str, field: str = "url") -> None:
    """The submit-time checks on a source URL (the fetcher re-checks every hop)."""
    check_url(url, field)


def build_submission(
    manifest: Manifest,
    destination: DestinationSpec,
    *,
    tenant: str,
    manifest_lock: LockPolicy | None = None,
    notify_url: str | None = None,
    expected_sha256: dict[str, str] | None = None,
    refresh_url: str | None = None,
    source_refresher: str | None = None,
    source_ready_within: float | None = None,
    labels: dict[str, str] | None = None,
    url_field: str = "run.steps.{step}.assets.{index}.url",
) -> JobSubmission:
    """Validate a manifest's run and build its job records (raises InvalidJobError).

    ``url_field`` names a refused source URL's request field (``{step}``, ``{index}``
    in the run, ``{seq}`` overall): the API's bare asset list passes ``assets.{seq}.url``.
    """
    manifest.assert_writable_schema()
    run = manifest.run
    where = [(si, ai) for si, step in enumerate(run.steps) for ai in range(len(step.assets))]
    pairs = [a for step in run.steps for a in step.assets]
    if len(pairs) > MAX_ASSETS_PER_JOB:
        raise InvalidJobError(f"a job holds at most {MAX_ASSETS_PER_JOB} assets", field="assets")
    seen: set[str] = set()
    records: list[AssetRecord] = []
    sources: dict[str, SourceRecord] = {}
    for seq, asset in enumerate(pairs):
        if asset.asset_id in seen:
            raise InvalidJobError(f"asset {asset.asset_id} appears twice in the run", field="run")
        seen.add(asset.asset_id)
        step_no, index = where[seq]
        check_source(asset.url, url_field.format(step=step_no, index=index, seq=seq))
        records.append(
            AssetRecord(
                asset_id=asset.asset_id,
                source_url=redact_url(asset.url),
                media_type=asset.media_type,
                source_expires_at=url_expiry(asset.url),
                seq=seq,
            )
        )
        sha = (expected_sha256 or {}).get(asset.asset_id)
        sources[asset.asset_id] = SourceRecord(url=asset.url, sha256=sha)
    if notify_url is not None:
        check_url(notify_url, "notify_url")
    if refresh_url is not None:
        check_url(refresh_url, "refresh_url")
    if source_refresher is not None:
        try:
            check_import_path(source_refresher)
        except ValueError as exc:
            raise InvalidJobError(str(exc), field="source_refresher") from exc
    if source_ready_within is not None and not 0 <= source_ready_within <= 7 * 24 * 3600:
        raise InvalidJobError(
            "source_ready_within must be between 0 and 604800 seconds",
            field="source_ready_within",
        )
    meta = JobMeta(
        job_id=new_job_id(),
        tenant=tenant,
        run_id=run.run_id,
        created_at=utc_now(),
        destination=destination,
        manifest_lock=manifest_lock,
        notify_url=notify_url,
        refresh_url=refresh_url,
        source_refresher=source_refresher,
        source_ready_within=source_ready_within,
        asset_ids=[r.asset_id for r in records],
        run_date=run.created_at.strftime("%Y-%m-%d"),
        run_tenant=run.tenant_id,
        labels=check_labels(labels or {}),
    )
    # The stored payload carries redacted URLs only: finalize rewrites every URL from
    # the asset records, and no manifest is written unless every asset was stored.
    stored = manifest.model_copy(deep=True)
    for step in stored.run.steps:
        for asset in step.assets:
            asset.url = redact_url(asset.url)
    return JobSubmission(meta, records, sources, stored.model_dump_json())
