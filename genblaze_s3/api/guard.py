"""The API's front door: who is calling, how often, and how much they may send.

Why an ASGI middleware and not only a FastAPI dependency: FastAPI reads a
request's whole body before it runs dependencies, so a 64 MiB body without a
token used to be read (and held) before its 401. Here, a request that carries a
body is authenticated from its headers first; only then is the body read, and
never beyond GENBLAZE_MAX_BODY_BYTES (413). Failed authentications count
against a rate limit keyed by the client address, so guessing tokens is as
slow as using one. The /ui page's session cookie goes through the same door as a
bearer token (`Gate.admit_session`): same limits, same failure counting.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from fastapi import HTTPException

from genblaze_s3.api.problems import PROBLEM_MEDIA_TYPE, problem_bytes
from genblaze_s3.api.ratelimit import RateLimiter, retry_after
from genblaze_s3.ingest.operators import Operator, OperatorRegistry
from genblaze_s3.ingest.store.sessions import Kind, SessionStore
from genblaze_s3.ingest.tenants import Tenant, TenantRegistry, token_digest

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

UNAUTHORIZED = ("missing or invalid bearer token", {"WWW-Authenticate": 'Bearer realm="genblaze"'})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

UI_LOGIN_PATH = "/ui/login"
UI_COOKIE = "genblaze_ui"  # the /ui page's session id (opaque; the session is in the store)
FLEET_PREFIX = "/v1/fleet"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a tenant or an operator, and the digest of the token they used
    (the per-token rate limit's key; a /ui session keeps it too)."""

    kind: Kind
    name: str
    token_sha256: str
    tenant: Tenant | None = None
    operator: Operator | None = None


class Gate:
    """The one door: authentication plus the per-token and per-address rate limits,
    for the API's bearer tokens and the /ui page's sessions alike. Used by the body
    middleware (requests with a body) and by every route's dependency (the rest)."""

    def __init__(
        self,
        tenants: TenantRegistry,
        limiter: RateLimiter | None,
        *,
        operators: OperatorRegistry | None = None,
        sessions: SessionStore | None = None,
    ) -> None:
        self.tenants = tenants
        self.limiter = limiter
        self.operators = operators or OperatorRegistry()
        self.sessions = sessions

    def admit(self, authorization: str | None, client: str) -> Tenant:
        """The calling tenant; HTTPException 401 (bad token) or 429 (over its rate)."""
        who = self.admit_any(authorization, client)
        if who.tenant is None:  # an operator token is not a tenant's: it owns no jobs
            raise HTTPException(401, UNAUTHORIZED[0], headers=UNAUTHORIZED[1])
        return who.tenant

    def admit_operator(self, authorization: str | None, client: str) -> Operator:
        """The calling operator; 401 (bad token), 403 (a tenant's token), 429."""
        who = self.admit_any(authorization, client)
        if who.operator is None:
            raise HTTPException(403, "an operator token is required")
        return who.operator

    def admit_any(self, authorization: str | None, client: str) -> Principal:
        """A tenant or an operator by bearer token (401 / 429 as `admit`)."""
        token = _bearer(authorization)
        who = self.principal(token_digest(token).hex()) if token else None
        if who is None:
            self._refuse(client)
        assert who is not None
        self._use(who)
        return who

    def admit_session(self, session_id: str | None, client: str) -> Principal:
        """The /ui page's caller by session id: the same limits as a bearer token (a
        wrong or expired cookie costs the address, use costs the session's token)."""
        session = self.sessions.get(session_id) if self.sessions and session_id else None
        # The token the session was opened with must still be valid: removing a token
        # from the config closes its sessions too.
        who = self.principal(session.token_sha256) if session is not None else None
        if who is None or session is None or (who.kind, who.name) != (session.kind, session.name):
            self._refuse(client)
        assert who is not None
        self._use(who)
        return who

    def principal(self, token_sha256: str) -> Principal | None:
        """Who holds a token of this (hex) digest, without counting anything."""
        try:
            digest = bytes.fromhex(token_sha256)
        except ValueError:
            return None
        tenant = self.tenants.by_digest(digest)
        if tenant is not None:
            return Principal("tenant", tenant.name, token_sha256, tenant=tenant)
        op = self.operators.by_digest(digest)
        if op is not None:
            return Principal("operator", op.name, token_sha256, operator=op)
        return None

    def _refuse(self, client: str) -> None:
        # A wrong token costs the address a token of its bucket: guessing is rate limited.
        self._limit("unauthenticated:" + client, "too many failed authentications")
        raise HTTPException(401, UNAUTHORIZED[0], headers=UNAUTHORIZED[1])

    def _use(self, who: Principal) -> None:
        # Per token, not per tenant: one tenant's leaked or runaway token must not starve
        # its other clients. Keyed by a digest: the limiter's table holds no usable secret.
        self._limit("token:" + who.token_sha256, None)

    def _limit(self, key: str, message: str | None) -> None:
        if self.limiter is None:
            return
        wait = self.limiter.acquire(key)
        if wait > 0:
            raise HTTPException(
                429,
                message or "rate limit exceeded for this token",
                headers={"Retry-After": retry_after(wait)},
            )


def _bearer(authorization: str | None) -> str | None:
    if not authorization or not authorization.lower().startswith("bearer "):
        return None
    return authorization[7:].strip() or None


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def session_cookie(cookie_header: str) -> str | None:
    """The /ui session id from a Cookie header, or None."""
    from http.cookies import CookieError, SimpleCookie

    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(cookie_header)
    except CookieError:
        return None
    morsel = jar.get(UI_COOKIE)
    return morsel.value if morsel is not None and morsel.value else None


class BodyGuard:
    """ASGI middleware: authenticate requests with a body before reading it; cap the body."""

    def __init__(self, app: Any, *, gate: Gate, max_body_bytes: int) -> None:
        self.app = app
        self.gate = gate
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path = str(scope.get("path", ""))
        who: Principal | None = None
        # The /ui page's forms: its sign-in form carries the token in the body (the
        # route checks it through this gate); the others carry the page's session cookie.
        if path != UI_LOGIN_PATH:
            client = client_address(scope)
            try:
                if path.startswith("/ui/"):
                    sid = session_cookie(headers.get("cookie", ""))
                    who = await anyio.to_thread.run_sync(self.gate.admit_session, sid, client)
                else:
                    who = self.gate.admit_any(headers.get("authorization"), client)
            except HTTPException as exc:
                await _problem(send, exc.status_code, exc.detail, exc.headers)
                return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await _too_large(send, self.max_body_bytes)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await _too_large(send, self.max_body_bytes)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        # The route dependency must not count this request against the rate limit twice.
        if who is not None:
            scope.setdefault("state", {})["principal"] = who
        await self.app(scope, replay, send)


async def _too_large(send: Send, limit: int) -> None:
    await _problem(
        send,
        413,
        f"request body larger than {limit} bytes (GENBLAZE_MAX_BODY_BYTES)",
        {"Connection": "close"},
        code="body_too_large",
    )


async def _problem(
    send: Send,
    status: int,
    detail: str,
    headers: Mapping[str, str] | None,
    *,
    code: str | None = None,
) -> None:
    body = problem_bytes(status, detail, code)
    raw = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
