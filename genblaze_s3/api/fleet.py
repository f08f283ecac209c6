"""The operator's desk: one place that reads the fleet and acts on it, with an audit.

The fleet routes (routes_fleet.py), the /ui fleet page (ui/fleet_routes.py) and
/metrics (metrics.py) all read through `FleetDesk.snapshot`, so the three show the
same numbers from the same reads; `genblaze-ingest fleet` reads /v1/fleet. Every
operator action (a dry run too: someone looked at that set) is appended to the
store's audit log with who, what and when, before its outcome is returned.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pydantic import BaseModel, Field

from genblaze_s3.ingest.errors import CountChangedError, InvalidJobError
from genblaze_s3.ingest.models import JobState
from genblaze_s3.ingest.operators import Operator
from genblaze_s3.ingest.store.fleet import (
    AuditEntry,
    FleetSnapshot,
    FleetStore,
    QueueStats,
    snapshot,
)
from genblaze_s3.ingest.submit import bulk
from genblaze_s3.ingest.submit.service import IngestService

SHOWN_IDS = 100  # job ids an action's answer lists (the count is exact)


class FleetActionRequest(BaseModel):
    """A bulk retry or cancel of the jobs a filter names; a dry run unless told."""

    action: bulk.BulkAction
    state: JobState | None = Field(
        default=None, description="retry: failed or canceled; cancel: queued or running"
    )
    tenant: str | None = Field(default=None, max_length=63, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    error_code: str | None = Field(default=None, max_length=64, pattern=r"^[a-z0-9_]+$")
    label: str | None = Field(default=None, max_length=300, description="key=value")
    dry_run: bool = True
    expected_count: int | None = Field(
        default=None, ge=0, description="the dry run's count; required to act"
    )

    def selection(self) -> bulk.JobSelection:
        return bulk.JobSelection(
            action=self.action,
            state=self.state,
            tenant=self.tenant,
            error_code=self.error_code,
            label=self.label,
        )


class FleetActionResult(BaseModel):
    dry_run: bool
    matched: int
    job_ids: list[str]  # the first SHOWN_IDS
    truncated: bool
    done: int
    refused: dict[str, str]
    audit_id: str


class AuditLog(BaseModel):
    entries: list[AuditEntry]


class FleetDesk:
    """Reads (snapshot, audit log) and bulk actions for operators."""

    def __init__(
        self,
        service: IngestService,
        fleet: FleetStore,
        queues: Callable[[], list[QueueStats]],
    ) -> None:
        self.service = service
        self.fleet = fleet
        self.queues = queues

    def snapshot(self, hours: int = 6) -> FleetSnapshot:
        return snapshot(self.fleet.read(hours=hours), self.queues())

    def audit_log(self, limit: int = 50) -> AuditLog:
        return AuditLog(entries=self.fleet.audit_log(limit=limit))

    def act(self, operator: Operator, req: FleetActionRequest) -> FleetActionResult:
        """A dry run (count and list) or the action itself; either is audited.

        Raises PermissionError for a viewer acting, InvalidJobError without the
        dry run's count, CountChangedError when the set moved since the dry run.
        """
        sel = req.selection()
        if req.dry_run:
            outcome = bulk.select(self.service, sel)
        else:
            if not operator.can_act:
                raise PermissionError("a viewer operator cannot retry or cancel")
            if req.expected_count is None:
                raise InvalidJobError(
                    "expected_count: give the dry run's count to act", field="expected_count"
                )
            try:
                outcome = bulk.run(self.service, sel, expected_count=req.expected_count)
            except CountChangedError:
                detail = {**sel.describe(), "expected_count": req.expected_count}
                self.fleet.audit(
                    AuditEntry(
                        at=time.time(),
                        operator=operator.name,
                        action=f"{req.action.value}_refused_count_changed",
                        detail=detail,
                    )
                )
                raise
        detail = {
            **sel.describe(),
            "dry_run": req.dry_run,
            "matched": outcome.matched,
            "done": outcome.done,
            "refused": len(outcome.refused),
        }
        action = f"{req.action.value}{'_dry_run' if req.dry_run else ''}"
        audit_id = self.fleet.audit(
            AuditEntry(at=time.time(), operator=operator.name, action=action, detail=detail)
        )
        return FleetActionResult(
            dry_run=req.dry_run,
            matched=outcome.matched,
            job_ids=outcome.job_ids[:SHOWN_IDS],
            truncated=outcome.truncated,
            done=outcome.done,
            refused=outcome.refused,
            audit_id=audit_id,
        )
