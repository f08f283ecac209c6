"""The public job document (``JobView``) with every asset, built in one place.

The Python API (`StatusStore.get_job`, webhooks) reads every asset; the HTTP API
serves the same shape with one page of assets (`listing.py`, O(1) per poll). The
document is assembled from the stored JSON with the C json codec (a 500-asset job
in a few milliseconds) rather than through pydantic objects, then validated into
a ``JobView``, so the dict and the model cannot drift.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from genblaze_s3.ingest.models import TERMINAL_ASSET_STATES, AssetState, AssetView, JobView
from genblaze_s3.ingest.store import counters

_ASSET_VIEW_FIELDS = tuple(AssetView.model_fields)
_NO_MANIFEST: dict[str, Any] = {
    "key": None,
    "url": None,
    "locked_until": None,
    "envelope_key": None,
    "key_id": None,
}


def compose(
    *,
    job_id: str,
    state: str | None,
    run_id: str,
    created_at: str,
    updated_at: str,
    labels: Mapping[str, str],
    bytes_done: int,
    bytes_total: int | None,
    assets_total: int,
    counts: Mapping[str, int],
    error_codes: Mapping[str, int],
    manifest: str | None,
    error: str | None,
) -> dict[str, Any]:
    """The one shape of a job's document (pure): the full document below and the
    summary the listing reads from counters (``listing.py``) are both built here, so they
    cannot disagree on a field, a done state or a date's spelling.

    `counts` has every asset state's count; `manifest` / `error` are the stored JSON.
    """
    return {
        "job_id": job_id,
        "state": state,
        "run_id": run_id,
        "created_at": iso_z(created_at),
        "updated_at": iso_z(updated_at),
        "labels": dict(labels),
        "progress": {
            "bytes_done": bytes_done,
            "bytes_total": bytes_total,
            "assets_done": sum(counts.get(s.value, 0) for s in TERMINAL_ASSET_STATES),
            "assets_total": assets_total,
        },
        "counts": {s.value: counts.get(s.value, 0) for s in AssetState},
        "error_codes": dict(error_codes),
        "manifest": json.loads(manifest) if manifest else dict(_NO_MANIFEST),
        "error": json.loads(error) if error else None,
    }


def build_document(
    job: Mapping[str, str], meta: Mapping[str, Any], assets: list[Mapping[str, Any]]
) -> dict[str, Any]:
    """The document from the job hash, its parsed meta and its parsed asset records (pure).

    `assets` are the records that still exist (an expired one is left out); progress
    counts them against every asset the job was created with.
    """
    totals: list[int | None] = [a.get("bytes_total") for a in assets]  # stored without nulls
    recount = counters.totals(list(assets))
    document = compose(
        job_id=meta["job_id"],
        state=job["state"],
        run_id=meta["run_id"],
        created_at=meta["created_at"],
        updated_at=job["updated_at"],
        labels=meta.get("labels", {}),
        bytes_done=sum(a.get("bytes_done") or 0 for a in assets),
        bytes_total=None if None in totals else sum(t or 0 for t in totals),
        assets_total=len(meta["asset_ids"]),
        counts={s.value: recount.get(counters.STATE_PREFIX + s.value, 0) for s in AssetState},
        error_codes={
            k[len(counters.ERROR_PREFIX) :]: v
            for k, v in recount.items()
            if k.startswith(counters.ERROR_PREFIX)
        },
        manifest=job.get("manifest"),
        error=job.get("error"),
    )
    # .get: records written before a view field existed still render (as null)
    document["assets"] = [{k: a.get(k) for k in _ASSET_VIEW_FIELDS} for a in assets]
    document["next_cursor"] = None
    return document


def document_json(document: Mapping[str, Any]) -> str:
    """The document as the API sends it (compact JSON, the shape of JobView's dump)."""
    return json.dumps(document, separators=(",", ":"))


def document_view(document: Mapping[str, Any]) -> JobView:
    """The document as a validated JobView (the Python API)."""
    return JobView.model_validate(document)


def iso_z(value: str) -> str:
    """Our stored isoformat ('+00:00') in pydantic's JSON spelling ('Z')."""
    return value[:-6] + "Z" if value.endswith("+00:00") else value
