"""`/v1/fleet`: the operator's JSON API (what the fleet page and `genblaze-ingest fleet` read).

Every route declares the operator dependency: an operator's bearer token through
the one gate (401 for an unknown token, 403 for a tenant's, 429 over the rate).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request

from genblaze_s3.api.fleet import AuditLog, FleetActionRequest, FleetActionResult, FleetDesk
from genblaze_s3.api.guard import client_address
from genblaze_s3.api.schemas import Problem
from genblaze_s3.ingest.operators import Operator
from genblaze_s3.ingest.store.fleet import FleetSnapshot


def operator(request: Request, authorization: Annotated[str | None, Header()] = None) -> Operator:
    """The calling operator (BodyGuard admitted requests with a body already)."""
    who = getattr(request.state, "principal", None)
    if who is None:
        return request.app.state.gate.admit_operator(  # type: ignore[no-any-return]
            authorization, client_address(request.scope)
        )
    if who.operator is None:
        raise HTTPException(403, "an operator token is required")
    return who.operator  # type: ignore[no-any-return]


Op = Annotated[Operator, Depends(operator)]


def fleet_router(desk: FleetDesk) -> APIRouter:
    errors: dict[int | str, dict[str, Any]] = {
        401: {"model": Problem},
        403: {"model": Problem, "description": "not an operator token"},
        429: {"model": Problem},
        503: {"model": Problem},
    }
    router = APIRouter(prefix="/v1/fleet", tags=["fleet"], responses=errors)

    @router.get("", response_model=FleetSnapshot)
    def fleet(_: Op, hours: Annotated[int, Query(ge=1, le=24)] = 6) -> FleetSnapshot:
        """Workers, queues, throughput and failures, fleet-wide (operators only).
        The totals are the /metrics counters, read from the same store hash."""
        return desk.snapshot(hours)

    @router.post(
        "/actions",
        response_model=FleetActionResult,
        responses={
            403: {"model": Problem, "description": "not an operator, or a viewer acting"},
            409: {"model": Problem, "description": "the set changed since the dry run"},
            422: {"model": Problem},
        },
    )
    def act(who: Op, body: FleetActionRequest) -> FleetActionResult:
        """Retry or cancel the jobs a filter names, across tenants. `dry_run` (the
        default) counts and lists them; acting needs that count as `expected_count`.
        Every call is written to the audit log."""
        try:
            return desk.act(who, body)
        except PermissionError as exc:
            raise HTTPException(403, str(exc)) from exc

    @router.get("/audit", response_model=AuditLog)
    def audit(_: Op, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> AuditLog:
        """Operator actions, newest first: who, what, when, on which filter."""
        return desk.audit_log(limit)

    return router
