"""What the fleet view reads from the store, at a cost that does not grow with jobs.

Why in the store and not in Celery's broadcast (`inspect`) or event stream: those
answer only while someone listens (Flower loses its history on restart) and cost
every worker a reply per refresh. Here each worker's main process writes its own
heartbeat (workers/heartbeat.py, from Celery's own worker state), every finished
asset adds to a per-minute counter in the same atomic write that records it
(counters.ASSET_CAS), and operator actions append to a capped stream. A refresh
of the fleet view is then a fixed handful of commands whether the store holds ten
jobs or a million (bench/bench_fleet.py measures it):

- HGETALL of the workers hash (one field per worker host);
- HGETALL of the stats hash (the /metrics counters: same numbers, same source);
- HGETALL of `hours + 1` series hashes (the chart);

all in one pipeline. The audit log is read separately (XREVRANGE, bounded).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import redis
from pydantic import BaseModel, Field

from genblaze_s3.ingest.models import AssetState
from genblaze_s3.ingest.store import keys
from genblaze_s3.ingest.store import stats as stat_names
from genblaze_s3.ingest.store.boundary import store_boundary
from genblaze_s3.ingest.store.stats import SERIES_NAMES

WORKER_ALIVE_SECONDS = 10.0  # dead after five missed heartbeats, and never sooner than this
WORKER_FORGET_SECONDS = 24 * 3600.0  # a host silent this long leaves the table
AUDIT_MAX = 10_000  # entries kept (approximately: XADD MAXLEN ~)


class WorkerBeat(BaseModel):
    """One worker host as its main process last described itself (Celery's own state)."""

    host: str = Field(max_length=255)
    pid: int
    pool: str
    concurrency: int
    active: int  # deliveries running now (Celery's active requests)
    active_jobs: list[str] = Field(default_factory=list)  # job ids of those deliveries
    processed: int = 0  # deliveries finished since the worker started
    queues: list[str] = Field(default_factory=list)
    started_at: float
    heartbeat_at: float
    interval: float = 2.0  # seconds between its heartbeats (GENBLAZE_HEARTBEAT_INTERVAL)


class WorkerView(WorkerBeat):
    alive: bool
    seconds_since_heartbeat: float


class SeriesPoint(BaseModel):
    """One minute of finished assets, fleet-wide."""

    minute: int  # epoch seconds // 60
    ok: int = 0
    failed: int = 0
    bytes: int = 0


class FleetData(BaseModel):
    """Everything a fleet refresh reads from the store (the broker's queues come apart)."""

    workers: list[WorkerView]
    stats: dict[str, float]
    series: list[SeriesPoint]  # oldest first, one per minute, gaps filled with zeros
    now: float


class AuditEntry(BaseModel):
    """One operator action: who, what, when, on which filter, with what outcome."""

    id: str = ""
    at: float
    operator: str
    action: str
    detail: dict[str, Any] = Field(default_factory=dict)


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


@store_boundary
class FleetStore:
    """Heartbeats, the finished-asset series, the audit log; receives its Redis.
    Redis errors surface as StoreUnavailableError, as from the StatusStore."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    # -- workers (written by each worker's main process) ---------------------------
    def beat(self, worker: WorkerBeat) -> None:
        self.redis.hset(keys.workers_key(), worker.host, worker.model_dump_json())

    def leave(self, host: str) -> None:
        """A worker that shuts down cleanly says so (no 15 s of a ghost)."""
        self.redis.hdel(keys.workers_key(), host)

    # -- one refresh ------------------------------------------------------------------
    def read(self, *, hours: int = 6, now: float | None = None) -> FleetData:
        """One pipeline: workers, stats, and `hours` of per-minute series."""
        now = time.time() if now is None else now
        hour_now = int(now) // 3600
        first_hour = hour_now - hours
        p = self.redis.pipeline(transaction=False)
        p.hgetall(keys.workers_key())
        p.hgetall(keys.stats_key())
        for h in range(first_hour, hour_now + 1):
            p.hgetall(keys.series_key(h))
        workers_raw, stats_raw, *hours_raw = p.execute()
        workers, gone = _workers(workers_raw, now)
        if gone:  # hosts silent for a day: drop them so the hash stays the fleet's size
            self.redis.hdel(keys.workers_key(), *gone)
        stats = {_s(k): float(_s(v)) for k, v in stats_raw.items()}
        return FleetData(
            workers=workers,
            stats=stats,
            series=_series(hours_raw, now, hours),
            now=now,
        )

    # -- audit log --------------------------------------------------------------------
    def audit(self, entry: AuditEntry) -> str:
        fields = {
            "at": repr(entry.at),
            "operator": entry.operator,
            "action": entry.action,
            "detail": json.dumps(entry.detail, separators=(",", ":"), sort_keys=True),
        }
        return _s(
            self.redis.xadd(
                keys.audit_key(), dict[Any, Any](fields), maxlen=AUDIT_MAX, approximate=True
            )
        )

    def audit_log(self, *, limit: int = 50) -> list[AuditEntry]:
        """The newest `limit` entries, newest first."""
        rows: Any = self.redis.xrevrange(keys.audit_key(), count=limit)
        out = []
        for entry_id, fields in rows or []:
            f = {_s(k): _s(v) for k, v in (fields or {}).items()}
            out.append(
                AuditEntry(
                    id=_s(entry_id),
                    at=float(f.get("at", "0")),
                    operator=f.get("operator", ""),
                    action=f.get("action", ""),
                    detail=json.loads(f.get("detail") or "{}"),
                )
            )
        return out

    def tenants(self) -> list[str]:
        return sorted(_s(t) for t in self.redis.smembers(keys.tenants_key()))


def failures_by_code(stats: Mapping[str, float]) -> dict[str, int]:
    """Assets failed per error code, all tenants, since the counters began (pure)."""
    prefix = stat_names.FAILED_CODE_PREFIX
    return {k[len(prefix) :]: int(v) for k, v in sorted(stats.items()) if k.startswith(prefix)}


def _workers(raw: Mapping[Any, Any], now: float) -> tuple[list[WorkerView], list[str]]:
    out: list[WorkerView] = []
    gone: list[str] = []
    for host, value in raw.items():
        try:
            beat = WorkerBeat.model_validate_json(value)
        except ValueError:
            gone.append(_s(host))  # not ours to show; never a 500 for a bad field
            continue
        age = max(0.0, now - beat.heartbeat_at)
        if age > WORKER_FORGET_SECONDS:
            gone.append(beat.host)
            continue
        out.append(
            WorkerView(
                **beat.model_dump(),
                alive=age <= max(WORKER_ALIVE_SECONDS, 5 * beat.interval),
                seconds_since_heartbeat=round(age, 1),
            )
        )
    out.sort(key=lambda w: (not w.alive, w.host))
    return out, gone


def _series(hours_raw: list[Mapping[Any, Any]], now: float, hours: int) -> list[SeriesPoint]:
    by_minute: dict[int, dict[str, int]] = {}
    for raw in hours_raw:
        for k, v in raw.items():
            minute, _, name = _s(k).partition(":")
            if name in SERIES_NAMES and minute.isascii() and minute.isdigit():
                by_minute.setdefault(int(minute), {})[name] = int(float(_s(v)))
    last = int(now) // 60
    return [
        SeriesPoint(minute=m, **by_minute.get(m, {}))
        for m in range(last - hours * 60 + 1, last + 1)
    ]


class QueueStats(BaseModel):
    """One broker queue: messages waiting and the age of the oldest (None: no answer)."""

    name: str
    depth: int | None
    oldest_age_seconds: float | None


class Rates(BaseModel):
    """Finished assets per second over a window, and the share that failed."""

    window_seconds: int
    assets_per_second: float
    bytes_per_second: float
    failure_rate: float  # failed / (stored + failed), 0 when nothing finished


class Totals(BaseModel):
    """The /metrics counters the fleet view shows, read from the same stats hash."""

    jobs_submitted: int
    assets_stored: int  # stored + deduplicated
    assets_failed: int
    bytes_ingested: int


class FleetSnapshot(BaseModel):
    """What the fleet view, `genblaze-ingest fleet` and /metrics show: one shape."""

    at: float
    workers: list[WorkerView]
    queues: list[QueueStats]
    totals: Totals
    rates: list[Rates]  # last 5 minutes, last hour
    failures_by_code: dict[str, int]
    series: list[SeriesPoint]  # one per minute, oldest first


def _rates(series: list[SeriesPoint], minutes: int) -> Rates:
    window = series[-minutes:]
    ok = sum(p.ok for p in window)
    failed = sum(p.failed for p in window)
    seconds = minutes * 60
    return Rates(
        window_seconds=seconds,
        assets_per_second=round(ok / seconds, 4),
        bytes_per_second=round(sum(p.bytes for p in window) / seconds, 1),
        failure_rate=round(failed / (ok + failed), 4) if ok + failed else 0.0,
    )


def snapshot(data: FleetData, queues: list[QueueStats]) -> FleetSnapshot:
    """The fleet as one value (pure): store data plus the broker's queue figures."""
    s = data.stats
    totals = Totals(
        jobs_submitted=int(s.get(stat_names.JOBS_SUBMITTED, 0)),
        assets_stored=int(
            s.get(stat_names.assets_finished(AssetState.STORED), 0)
            + s.get(stat_names.assets_finished(AssetState.DEDUPLICATED), 0)
        ),
        assets_failed=int(s.get(stat_names.assets_finished(AssetState.FAILED), 0)),
        bytes_ingested=int(s.get(stat_names.BYTES_INGESTED, 0)),
    )
    return FleetSnapshot(
        at=data.now,
        workers=data.workers,
        queues=queues,
        totals=totals,
        rates=[_rates(data.series, 5), _rates(data.series, 60)],
        failures_by_code=failures_by_code(s),
        series=data.series,
    )
