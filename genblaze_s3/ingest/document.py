"""The public job document (``GET /v1/jobs/{id}``, ``JobView``), built in one place.

Why one builder over plain dicts: the document is the hot path of every polling
client, so it is assembled from the stored JSON with the C json codec (a 500-asset
job in a few milliseconds) rather than through pydantic objects; the Python API
(``StatusStore.get_job``) validates the very same dict into a ``JobView``, so the
HTTP and Python views cannot drift.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from genblaze_s3.ingest.models import TERMINAL_ASSET_STATES, AssetView, JobView

_TERMINAL_ASSET_VALUES = frozenset(s.value for s in TERMINAL_ASSET_STATES)
_ASSET_VIEW_FIELDS = tuple(AssetView.model_fields)
_NO_MANIFEST: dict[str, Any] = {"key": None, "url": None, "locked_until": None}


def build_document(
    job: Mapping[str, str], meta: Mapping[str, Any], assets: list[Mapping[str, Any]]
) -> dict[str, Any]:
    """The document from the job hash, its parsed meta and its parsed asset records (pure).

    `assets` are the records that still exist (an expired one is left out); progress
    counts them against every asset the job was created with.
    """
    totals = [a["bytes_total"] for a in assets]
    return {
        "job_id": meta["job_id"],
        "state": job["state"],
        "run_id": meta["run_id"],
        "created_at": meta["created_at"],
        "updated_at": _iso_z(job["updated_at"]),
        "progress": {
            "bytes_done": sum(a["bytes_done"] for a in assets),
            "bytes_total": None if None in totals else sum(totals),
            "assets_done": sum(1 for a in assets if a["state"] in _TERMINAL_ASSET_VALUES),
            "assets_total": len(meta["asset_ids"]),
        },
        # .get: records written before a view field existed still render (as null)
        "assets": [{k: a.get(k) for k in _ASSET_VIEW_FIELDS} for a in assets],
        "manifest": json.loads(job["manifest"]) if job.get("manifest") else dict(_NO_MANIFEST),
        "error": json.loads(job["error"]) if job.get("error") else None,
    }


def document_json(document: Mapping[str, Any]) -> str:
    """The document as the API sends it (compact JSON, the shape of JobView's dump)."""
    return json.dumps(document, separators=(",", ":"))


def document_view(document: Mapping[str, Any]) -> JobView:
    """The document as a validated JobView (the Python API)."""
    return JobView.model_validate(document)


def _iso_z(value: str) -> str:
    """Our stored isoformat ('+00:00') in pydantic's JSON spelling ('Z')."""
    return value[:-6] + "Z" if value.endswith("+00:00") else value
