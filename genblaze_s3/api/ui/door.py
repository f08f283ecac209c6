"""The /ui page's side of the one door (api/guard.py): sessions, CSRF, Origin.

Every /ui route declares one of these dependencies; none checks a cookie its own
way. The session cookie holds an opaque id (ingest/store/sessions.py) and goes
through `Gate.admit_session`: a wrong or expired cookie costs the address a token
of its failure bucket (429 once spent), and every request of a signed-in user
costs the token the session was opened with, exactly like a bearer request.

Forms carry a CSRF token derived from the session id, and every POST must come
from this origin (its `Origin`, else `Referer`, names the host the request was
sent to): a cross-site form can neither act for a signed-in user nor sign a
victim in as the attacker (login CSRF).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request

from genblaze_s3.api.guard import Principal, client_address, session_cookie

LOGIN = "/ui/login"


@dataclass(frozen=True)
class UiUser:
    """A signed-in /ui caller: who, and the CSRF token of their session."""

    who: Principal
    session_id: str
    csrf: str

    @property
    def label(self) -> str:
        return f"{self.who.kind} {self.who.name}"


def csrf_token(session_id: str) -> str:
    return hmac.new(session_id.encode(), b"genblaze-ui-csrf", hashlib.sha256).hexdigest()[:32]


def same_origin(request: Request) -> bool:
    """The request names this server as its origin (Origin, else Referer); absent: no."""
    host = request.headers.get("host", "")
    source = request.headers.get("origin") or request.headers.get("referer") or ""
    try:
        netloc = urlsplit(source).netloc
    except ValueError:
        return False
    return bool(host) and hmac.compare_digest(netloc.lower(), host.lower())


def require_same_origin(request: Request) -> None:
    if not same_origin(request):
        raise HTTPException(403, "cross-origin form refused (Origin does not match)")


def _user(request: Request) -> UiUser:
    sid = session_cookie(request.headers.get("cookie", "")) or ""
    who = getattr(request.state, "principal", None)  # a POST: BodyGuard already admitted it
    if who is None:
        who = request.app.state.gate.admit_session(sid, client_address(request.scope))
    return UiUser(who, sid, csrf_token(sid))


def page_user(request: Request) -> UiUser:
    """A signed-in user for an HTML page: not signed in -> the sign-in page (303)."""
    try:
        return _user(request)
    except HTTPException as exc:
        if exc.status_code == 401:
            raise HTTPException(303, headers={"Location": LOGIN}) from exc
        raise


def tenant_page(user: Annotated[UiUser, Depends(page_user)]) -> UiUser:
    """A tenant's page; an operator is sent to the fleet view."""
    if user.who.kind != "tenant":
        raise HTTPException(303, headers={"Location": "/ui/fleet"})
    return user


def operator_page(user: Annotated[UiUser, Depends(page_user)]) -> UiUser:
    if user.who.kind != "operator":
        raise HTTPException(403, "the fleet view is for operators")
    return user


def json_user(request: Request) -> UiUser:
    """A signed-in user for the page's JSON and event streams (401 when not)."""
    return _user(request)


def tenant_json(user: Annotated[UiUser, Depends(json_user)]) -> UiUser:
    if user.who.kind != "tenant":
        raise HTTPException(403, "a tenant's page")
    return user


def operator_json(user: Annotated[UiUser, Depends(json_user)]) -> UiUser:
    if user.who.kind != "operator":
        raise HTTPException(403, "the fleet view is for operators")
    return user


def check_form(user: UiUser, csrf: str) -> None:
    """A form that changes something: its CSRF token must be this session's."""
    if not hmac.compare_digest(csrf.encode(), user.csrf.encode()):
        raise HTTPException(403, "stale form: reload the page")


TenantPage = Annotated[UiUser, Depends(tenant_page)]
OperatorPage = Annotated[UiUser, Depends(operator_page)]
TenantJson = Annotated[UiUser, Depends(tenant_json)]
OperatorJson = Annotated[UiUser, Depends(operator_json)]
