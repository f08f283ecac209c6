"""Retry or cancel a filtered set of jobs across tenants: the operator's bulk action.

Why a dry run first, enforced: "retry every failed job with code source_expired"
should say how many jobs that is before it touches one. `plan` counts and lists;
`run` repeats the selection and refuses (CountChangedError) unless the caller
states the count it saw, so a set that grew since the dry run is not acted on
blindly. Each job goes through the same `retry` / `cancel` a tenant uses: no
second path with its own rules. Selection reads the per-tenant state indexes
(one ZRANGE per tenant, capped) and one HMGET per candidate in a pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Any

from genblaze_s3.ingest.errors import CountChangedError, IngestError
from genblaze_s3.ingest.models import JobState
from genblaze_s3.ingest.store import keys
from genblaze_s3.ingest.transitions import REOPENABLE_JOB_STATES

if TYPE_CHECKING:
    from genblaze_s3.ingest.submit.service import IngestService

BULK_MAX = 10_000  # jobs one action may touch (the rest: run it again)


class BulkAction(StrEnum):
    RETRY = "retry"
    CANCEL = "cancel"


# Which job states each action picks from (what retry and cancel accept).
ACTION_STATES: dict[BulkAction, tuple[JobState, ...]] = {
    BulkAction.RETRY: tuple(sorted(REOPENABLE_JOB_STATES)),
    BulkAction.CANCEL: (JobState.QUEUED, JobState.RUNNING),
}


@dataclass(frozen=True)
class JobSelection:
    """Which jobs a bulk action is for; every field optional except the action."""

    action: BulkAction
    state: JobState | None = None  # one of ACTION_STATES[action]; None: all of them
    tenant: str | None = None
    error_code: str | None = None  # jobs with at least one asset failed with this code
    label: str | None = None  # "key=value"

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action.value}
        for name in ("state", "tenant", "error_code", "label"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.value if isinstance(value, Enum) else value
        return out


@dataclass
class BulkOutcome:
    matched: int
    job_ids: list[str]
    truncated: bool = False
    done: int = 0
    refused: dict[str, str] = field(default_factory=dict)  # job id -> error code


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def select(service: IngestService, sel: JobSelection, *, limit: int = BULK_MAX) -> BulkOutcome:
    """The jobs `sel` names, newest first (at most `limit`)."""
    redis = service.store.redis
    states = [sel.state] if sel.state is not None else list(ACTION_STATES[sel.action])
    if any(s not in ACTION_STATES[sel.action] for s in states):
        return BulkOutcome(0, [])
    tenants = (
        [sel.tenant] if sel.tenant else sorted(_s(t) for t in redis.smembers(keys.tenants_key()))
    )
    p = redis.pipeline(transaction=False)
    for t in tenants:
        for st in states:
            p.zrevrange(keys.tenant_jobs_key(t, st.value), 0, limit, withscores=True)
        if sel.label:
            p.zrange(keys.tenant_label_key(t, sel.label), 0, -1)
    rows = p.execute()
    candidates: list[tuple[float, str]] = []
    per = len(states) + (1 if sel.label else 0)
    for i in range(len(tenants)):
        chunk = rows[i * per : (i + 1) * per]
        labelled = {_s(m) for m in chunk[-1]} if sel.label else None
        for res in chunk[: len(states)]:
            for member, score in res:
                job = _s(member)
                if labelled is None or job in labelled:
                    candidates.append((score, job))
    candidates.sort(reverse=True)
    ids = [j for _, j in candidates]
    # Confirm each against its job hash: the index may lag a state change or an expiry.
    p = redis.pipeline(transaction=False)
    fields = ["state"] + ([f"e:{sel.error_code}"] if sel.error_code else [])
    for j in ids:
        p.hmget(keys.job_key(j), fields)
    wanted = {s.value for s in states}
    picked = []
    for j, found in zip(ids, p.execute(), strict=True):
        if found[0] is None or _s(found[0]) not in wanted:
            continue
        if sel.error_code and int(_s(found[1] or 0)) <= 0:
            continue
        picked.append(j)
    return BulkOutcome(min(len(picked), limit), picked[:limit], truncated=len(picked) > limit)


def run(service: IngestService, sel: JobSelection, *, expected_count: int) -> BulkOutcome:
    """Act on the selection if it still has `expected_count` jobs; per-job refusals
    (a job that moved on meanwhile) are reported, never raised."""
    plan = select(service, sel)
    if plan.matched != expected_count:
        raise CountChangedError(
            f"{plan.matched} jobs match now, not {expected_count}: run the dry run again"
        )
    for job_id in plan.job_ids:
        try:
            if sel.action is BulkAction.RETRY:
                service.retry(job_id)
            else:
                service.cancel(job_id)
            plan.done += 1
        except IngestError as exc:
            plan.refused[job_id] = getattr(exc, "code", type(exc).__name__)
    return plan
