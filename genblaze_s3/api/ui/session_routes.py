"""Signing in and out of /ui, and its static files.

Sign-in checks the token through the API's gate (a wrong token costs this address
a token of its failure bucket, like a wrong bearer token), refuses a form posted
from another origin (login CSRF), and opens a server-side session: the cookie
holds only its random id. Sign-out deletes the session, so a copied cookie stops
working at once.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from genblaze_s3.api.guard import UI_COOKIE, client_address
from genblaze_s3.api.ui import render
from genblaze_s3.api.ui.door import LOGIN, UiUser, check_form, page_user, require_same_origin
from genblaze_s3.ingest.store.fleet import AuditEntry, FleetStore
from genblaze_s3.ingest.store.sessions import SessionStore

# Plain files next to this module, no build step; served from /ui/static/.
STATIC = Path(__file__).parent / "static"
_ASSETS = {p.name: p.read_bytes() for p in STATIC.iterdir() if p.suffix in {".css", ".js"}}
_TYPES = {".css": "text/css", ".js": "text/javascript"}


def session_router(sessions: SessionStore, fleet: FleetStore) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    def root() -> RedirectResponse:
        """Someone opening the API in a browser lands on the operator's page."""
        return RedirectResponse("/ui", status_code=307)

    @router.get("/ui/static/{name}")
    def static(name: str) -> Response:
        body = _ASSETS.get(name)
        if body is None:
            raise HTTPException(404, "not found")
        return Response(
            body,
            media_type=_TYPES[Path(name).suffix],
            # nosniff: a browser runs it only as the type we say, never sniffs a script.
            headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"},
        )

    @router.get(LOGIN)
    def login_form(error: str = "") -> HTMLResponse:
        return HTMLResponse(render.login(error[:200]), headers=render.SECURITY_HEADERS)

    @router.post(LOGIN, dependencies=[Depends(require_same_origin)])
    def login(request: Request, token: Annotated[str, Form(max_length=512)]) -> Response:
        try:  # the API's gate: a wrong token costs this address a rate-limit token too
            who = request.app.state.gate.admit_any(f"Bearer {token}", client_address(request.scope))
        except HTTPException as exc:
            why = "unknown token" if exc.status_code == 401 else "too many attempts; wait"
            return RedirectResponse(f"{LOGIN}?error=" + quote(why), status_code=303)
        session_id, _ = sessions.create(who.kind, who.name, who.token_sha256)
        if who.kind == "operator":
            fleet.audit(AuditEntry(at=time.time(), operator=who.name, action="sign_in"))
        r = RedirectResponse("/ui/fleet" if who.kind == "operator" else "/ui", status_code=303)
        r.set_cookie(
            UI_COOKIE,
            session_id,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/ui",
            max_age=sessions.lifetime,
        )
        return r

    @router.post("/ui/logout", dependencies=[Depends(require_same_origin)])
    def logout(
        user: Annotated[UiUser, Depends(page_user)], csrf: Annotated[str, Form()] = ""
    ) -> Response:
        check_form(user, csrf)
        sessions.revoke(user.session_id)
        if user.who.kind == "operator":
            fleet.audit(AuditEntry(at=time.time(), operator=user.who.name, action="sign_out"))
        r = RedirectResponse(LOGIN, status_code=303)
        r.delete_cookie(UI_COOKIE, path="/ui")
        return r

    return router
