"""The operator's /ui/fleet page, its JSON (polled by fleet.js) and its bulk-action form.

The page and its JSON read `FleetDesk.snapshot`, the one read /v1/fleet and
/metrics use. A bulk action is a dry run first (the page shows the count and the
first ids); the confirm button carries that count, so the action runs only on
the set the operator saw (else 409, shown as a notice).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import ValidationError

from genblaze_s3.api.fleet import FleetActionRequest, FleetDesk
from genblaze_s3.api.ui import fleet_render, render
from genblaze_s3.api.ui.door import OperatorJson, OperatorPage, UiUser, check_form
from genblaze_s3.api.ui.door import require_same_origin as same_origin
from genblaze_s3.ingest.errors import IngestError
from genblaze_s3.ingest.submit.bulk import BulkAction


def fleet_ui_router(desk: FleetDesk) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def view(user: UiUser, **extra: object) -> HTMLResponse:
        op = user.who.operator
        assert op is not None
        body = fleet_render.fleet(
            fleet_render.FleetPage(
                operator=op.name,
                can_act=op.can_act,
                csrf=user.csrf,
                snap=desk.snapshot(),
                audit=desk.fleet.audit_log(limit=20),
                tenants=desk.fleet.tenants(),
                **extra,  # type: ignore[arg-type]
            )
        )
        return HTMLResponse(body, headers=render.SECURITY_HEADERS)

    @router.get("/ui/fleet")
    def fleet_page(
        user: OperatorPage,
        done: Annotated[BulkAction | None, Query()] = None,
        n: Annotated[int, Query(ge=0, le=10**6)] = 0,
        of: Annotated[int, Query(ge=0, le=10**6)] = 0,
        refused: Annotated[int, Query(ge=0, le=10**6)] = 0,
    ) -> HTMLResponse:
        # The notice after an action is built from numbers, never from reflected text.
        notice = ""
        if done is not None:
            notice = f"{done.value}: {n} of {of} jobs" + (f", {refused} refused" if refused else "")
        return view(user, notice=notice)

    @router.get("/ui/fleet.json")
    def fleet_json(_: OperatorJson) -> JSONResponse:
        return JSONResponse(desk.snapshot().model_dump(mode="json"))

    @router.post("/ui/fleet/actions", dependencies=[Depends(same_origin)])
    def act(
        request: Request,
        user: OperatorPage,
        csrf: Annotated[str, Form()] = "",
        action: Annotated[str, Form(max_length=10)] = "retry",
        tenant: Annotated[str, Form(max_length=63)] = "",
        error_code: Annotated[str, Form(max_length=64)] = "",
        label: Annotated[str, Form(max_length=300)] = "",
        dry_run: Annotated[str, Form(max_length=1)] = "1",
        expected_count: Annotated[str, Form(max_length=10)] = "",
    ) -> Response:
        check_form(user, csrf)
        op = user.who.operator
        assert op is not None
        try:
            req = FleetActionRequest(
                action=action,  # type: ignore[arg-type]
                tenant=tenant.strip() or None,
                error_code=error_code.strip() or None,
                label=label.strip() or None,
                dry_run=dry_run != "0",
                expected_count=int(expected_count) if expected_count.isdigit() else None,
            )
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            return view(user, notice=f"refused: {where}: {first['msg']}")
        try:
            result = desk.act(op, req)
        except (IngestError, PermissionError) as exc:
            return view(user, request=req, notice=f"refused: {exc}")
        if result.dry_run:
            return view(user, request=req, result=result)
        query = urlencode(
            {
                "done": req.action.value,
                "n": result.done,
                "of": result.matched,
                "refused": len(result.refused),
            }
        )
        return RedirectResponse(f"/ui/fleet?{query}", status_code=303)

    return router
