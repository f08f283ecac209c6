"""Reading jobs for people: summaries, pages of assets, a tenant's job list.

Why separate from the writes: every read here costs a bounded number of Redis
commands whatever a job's asset count (the counters kept by ingest/counters.py,
the per-state sorted sets, the tenant indexes in keys.py), so the API, the CLI
and the web page can poll a 10,000-asset job as cheaply as a one-asset job.
Documents are built as plain dicts with the C json codec (the hot path of
`GET /v1/jobs/{id}`); their shapes are the pydantic models in models.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

import redis

from genblaze_s3.ingest.models import AssetState, AssetView, JobState
from genblaze_s3.ingest.store import counters, keys
from genblaze_s3.ingest.store.cursors import AssetCursor, JobCursor
from genblaze_s3.ingest.store.document import compose

DEFAULT_PAGE = 100
MAX_PAGE = 1000
_SUMMARY_FIELDS = [
    "tenant",
    "state",
    "run_id",
    "created_at",
    "updated_at",
    "labels",
    "manifest",
    "error",
    "assets_total",
    "version",
    *counters.BYTES_FIELDS,
    *(counters.STATE_PREFIX + s.value for s in AssetState),
]
_VIEW_FIELDS = tuple(AssetView.model_fields)


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


@dataclass(frozen=True)
class Summary:
    """A job summary as stored: the owning tenant and version beside the document."""

    tenant: str
    version: int
    doc: dict[str, Any]


def _queue_summary(p: Any, job_id: str) -> None:
    jk = keys.job_key(job_id)
    p.hmget(jk, _SUMMARY_FIELDS)
    # Error codes are open-ended field names; the hash has a few dozen fields at most.
    p.hscan(jk, 0, match=counters.ERROR_PREFIX + "*", count=1000)


def _summary_from(job_id: str, values: list[Any], scanned: Any) -> Summary | None:
    f = dict(zip(_SUMMARY_FIELDS, (None if v is None else _s(v) for v in values), strict=True))
    if f["tenant"] is None or f["run_id"] is None:
        return None
    n = {s.value: int(f[counters.STATE_PREFIX + s.value] or 0) for s in AssetState}
    unknown = int(f["bytes_unknown"] or 0)
    codes = {
        _s(k)[len(counters.ERROR_PREFIX) :]: int(v)
        for k, v in (scanned[1] if scanned else {}).items()
        if int(v) > 0
    }
    doc = compose(
        job_id=job_id,
        state=f["state"],
        run_id=f["run_id"],
        created_at=f["created_at"] or "",
        updated_at=f["updated_at"] or "",
        labels=json.loads(f["labels"] or "{}"),
        bytes_done=int(f["bytes_done"] or 0),
        bytes_total=None if unknown else int(f["bytes_total"] or 0),
        assets_total=int(f["assets_total"] or 0),
        counts=n,
        error_codes=codes,
        manifest=f["manifest"],
        error=f["error"],
    )
    return Summary(f["tenant"], int(f["version"] or 0), doc)


def job_summary(client: redis.Redis, job_id: str) -> Summary | None:
    """One round trip, a constant number of fields."""
    p = client.pipeline(transaction=False)
    _queue_summary(p, job_id)
    values, scanned = p.execute()
    return _summary_from(job_id, values, scanned)


def _queue_asset_ids(
    p: Any, job_id: str, state: str | None, after: AssetCursor | None, limit: int
) -> None:
    low = "-inf" if after is None else f"({after.seq}"
    p.zrangebyscore(
        keys.job_assets_key(job_id, state), low, "+inf", start=0, num=limit + 1, withscores=True
    )


def _assets_from(
    client: redis.Redis, job_id: str, scored: list[tuple[Any, float]], limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    more = len(scored) > limit
    scored = scored[:limit]
    if not scored:
        return [], None
    raws = client.mget([keys.asset_key(job_id, _s(a)) for a, _ in scored])
    # .get: a finished record is stored without its nulls (records.record_json)
    assets = [{k: r.get(k) for k in _VIEW_FIELDS} for r in (json.loads(x) for x in raws if x)]
    return assets, (AssetCursor(int(scored[-1][1])).encode() if more else None)


def asset_page(
    client: redis.Redis,
    job_id: str,
    *,
    state: AssetState | None = None,
    after: AssetCursor | None = None,
    limit: int = DEFAULT_PAGE,
) -> dict[str, Any]:
    """One page of assets in submission order, optionally of one state (two round trips)."""
    p = client.pipeline(transaction=False)
    _queue_asset_ids(p, job_id, state.value if state else None, after, limit)
    (scored,) = p.execute()
    assets, nxt = _assets_from(client, job_id, scored, limit)
    return {"assets": assets, "next_cursor": nxt}


def job_document(
    client: redis.Redis, job_id: str, *, limit: int = DEFAULT_PAGE
) -> tuple[Summary, str] | None:
    """The summary plus the first page of assets, as JSON (two round trips)."""
    p = client.pipeline(transaction=False)
    _queue_summary(p, job_id)
    _queue_asset_ids(p, job_id, None, None, limit)
    values, scanned, scored = p.execute()
    summary = _summary_from(job_id, values, scanned)
    if summary is None:
        return None
    assets, nxt = _assets_from(client, job_id, scored, limit)
    doc = {**summary.doc, "assets": assets, "next_cursor": nxt}
    return summary, json.dumps(doc, separators=(",", ":"))


# -- a tenant's jobs -----------------------------------------------------------


@dataclass(frozen=True)
class JobFilter:
    state: JobState | None = None
    label: str | None = None  # "key=value" or "key"
    created_after: float | None = None  # epoch seconds, exclusive
    created_before: float | None = None  # epoch seconds, exclusive

    def matches(self, doc: dict[str, Any]) -> bool:
        if self.state is not None and doc["state"] != self.state.value:
            return False
        if self.label is not None:
            k, sep, v = self.label.partition("=")
            labels = doc["labels"]
            if k not in labels or (sep and labels[k] != v):
                return False
        return True


def list_jobs(
    client: redis.Redis,
    tenant: str,
    flt: JobFilter,
    *,
    after: JobCursor | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """The tenant's jobs, newest first, one page, after the job `after` names.

    Reads one index (the job-state set, the label set or all of the tenant's jobs),
    then the summaries of the candidates in one pipelined round trip per batch.
    Index entries whose job expired are dropped as they are met.
    """
    if flt.state is not None:
        index = keys.tenant_jobs_key(tenant, flt.state.value)
    elif flt.label is not None and "=" in flt.label:
        index = keys.tenant_label_key(tenant, flt.label)
    else:
        index = keys.tenant_jobs_key(tenant)
    high: float | str = "+inf" if flt.created_before is None else f"({flt.created_before!r}"
    low: float | str = "-inf" if flt.created_after is None else f"({flt.created_after!r}"
    pos: tuple[float, str] | None = (after.score, after.job_id) if after else None
    if pos is not None and (flt.created_before is None or pos[0] < flt.created_before):
        high = pos[0]  # a cursor never widens the filter's window
    out: list[dict[str, Any]] = []
    batch = min(MAX_PAGE, limit * 2 + 10)
    last: tuple[float, str] | None = None
    for _ in range(20):  # bounded work per request, whatever the filters drop
        rows = cast(
            "list[tuple[bytes, float]]",
            client.zrevrangebyscore(index, high, low, start=0, num=batch, withscores=True),
        )
        fresh = [
            (_s(m), float(sc))
            for m, sc in rows
            if pos is None or sc < pos[0] or (sc == pos[0] and _s(m) < pos[1])
        ]
        p = client.pipeline(transaction=False)
        for job_id, _ in fresh:
            _queue_summary(p, job_id)
        res = p.execute() if fresh else []
        gone: list[str] = []
        for i, (job_id, score) in enumerate(fresh):
            s = _summary_from(job_id, res[2 * i], res[2 * i + 1])
            last = (score, job_id)
            if s is None or s.tenant != tenant:
                gone.append(job_id)
                continue
            if flt.matches(s.doc):
                out.append(s.doc)
                if len(out) == limit:
                    break
        if gone:
            client.zrem(index, *gone)
        if len(out) == limit or len(rows) < batch or last is None:
            break
        pos, high = last, last[0]
    more = len(out) == limit and last is not None
    return {"jobs": out, "next_cursor": JobCursor(*last).encode() if more and last else None}
