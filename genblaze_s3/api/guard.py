"""The API's front door: who is calling, how often, and how much they may send.

Why an ASGI middleware and not only a FastAPI dependency: FastAPI reads a
request's whole body before it runs dependencies, so a 64 MiB body without a
token used to be read (and held) before its 401. Here, a request that carries a
body is authenticated from its headers first; only then is the body read, and
never beyond GENBLAZE_MAX_BODY_BYTES (413). Failed authentications count
against a rate limit keyed by the client address, so guessing tokens is as
slow as using one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from fastapi import HTTPException

from genblaze_s3.api.problems import PROBLEM_MEDIA_TYPE, problem_bytes
from genblaze_s3.api.ratelimit import RateLimiter, retry_after
from genblaze_s3.ingest.tenants import Tenant, TenantRegistry

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

UNAUTHORIZED = ("missing or invalid bearer token", {"WWW-Authenticate": 'Bearer realm="genblaze"'})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class Gate:
    """Authentication plus the per-token and per-address rate limits, shared by the
    middleware (requests with a body) and the route dependency (the rest)."""

    def __init__(self, tenants: TenantRegistry, limiter: RateLimiter | None) -> None:
        self.tenants = tenants
        self.limiter = limiter

    def admit(self, authorization: str | None, client: str) -> Tenant:
        """The caller's tenant; HTTPException 401 (bad token) or 429 (over its rate)."""
        tenant = self.tenants.authenticate(authorization)
        if tenant is None:
            # A wrong token costs the address a token of its bucket: guessing is rate limited.
            self._limit("unauthenticated:" + client, "too many failed authentications")
            raise HTTPException(401, UNAUTHORIZED[0], headers=UNAUTHORIZED[1])
        # Per token, not per tenant: one tenant's leaked or runaway token must not starve
        # its other clients. Keyed by a digest: the limiter's table holds no usable secret.
        self._limit(hashlib.sha256((authorization or "").encode()).hexdigest(), None)
        return tenant

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


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


UI_LOGIN_PATH = "/ui/login"
UI_COOKIE = "genblaze_ui"  # the /ui page's session: the tenant's token, HttpOnly


def _ui_authorization(cookie_header: str) -> str | None:
    """`Bearer <token>` from the /ui page's cookie, or None."""
    from http.cookies import CookieError, SimpleCookie

    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(cookie_header)
    except CookieError:
        return None
    morsel = jar.get(UI_COOKIE)
    return f"Bearer {morsel.value}" if morsel is not None and morsel.value else None


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
        tenant: Tenant | None = None
        # The /ui page's forms: its sign-in form carries the token in the body (the
        # route checks it through this gate); the others carry it in the page's cookie.
        if path != UI_LOGIN_PATH:
            authorization = headers.get("authorization")
            if path.startswith("/ui/"):
                authorization = _ui_authorization(headers.get("cookie", ""))
            try:
                tenant = self.gate.admit(authorization, client_address(scope))
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
        if tenant is not None:
            scope.setdefault("state", {})["tenant"] = tenant
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
