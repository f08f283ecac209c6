"""Server-side sessions of the /ui page: an opaque id in the cookie, the rest here.

Why not the token in the cookie (as before): a cookie is copied into browser
profiles, proxies' logs and crash reports; a stolen API token works everywhere
and for ever, and signing out could not revoke it. A session id is random, opens
only the /ui page, expires, and is deleted on sign-out. The store keeps the
digest of the id (a Redis reader cannot sign in) and the digest of the token the
session was opened with, so that a token removed from the config closes its
sessions at the next request, and the session's use counts against that token's
rate limit like the API's.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

import redis

from genblaze_s3.ingest.store import keys
from genblaze_s3.ingest.store.boundary import store_boundary

SESSION_SECONDS = 12 * 3600
Kind = Literal["tenant", "operator"]


def session_digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    """A signed-in /ui user: a tenant or an operator, by name, until `expires_at`."""

    kind: Kind
    name: str
    token_sha256: str  # hex digest of the token it was opened with
    expires_at: float


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


@store_boundary
class SessionStore:
    """Create, find and revoke /ui sessions; receives its Redis (errors: StoreUnavailableError)."""

    def __init__(self, client: redis.Redis, *, lifetime: int = SESSION_SECONDS) -> None:
        self.redis = client
        self.lifetime = lifetime

    def create(self, kind: Kind, name: str, token_sha256: str) -> tuple[str, Session]:
        """A new session; returns (its id for the cookie, the session)."""
        session_id = secrets.token_urlsafe(32)
        expires = time.time() + self.lifetime
        key = keys.ui_session_key(session_digest(session_id))
        p = self.redis.pipeline(transaction=True)
        p.hset(
            key,
            mapping={
                "kind": kind,
                "name": name,
                "token_sha256": token_sha256,
                "expires_at": repr(expires),
            },
        )
        p.expire(key, self.lifetime)
        p.execute()
        return session_id, Session(kind, name, token_sha256, expires)

    def get(self, session_id: str) -> Session | None:
        """The live session of this id, or None (unknown, expired, revoked, malformed)."""
        if not session_id or len(session_id) > 128:
            return None
        raw = self.redis.hgetall(keys.ui_session_key(session_digest(session_id)))
        if not raw:
            return None
        f = {_s(k): _s(v) for k, v in raw.items()}
        try:
            expires = float(f["expires_at"])
            kind = f["kind"]
            if kind not in ("tenant", "operator") or expires < time.time():
                return None
            return Session(kind, f["name"], f["token_sha256"], expires)  # type: ignore[arg-type]
        except (KeyError, ValueError):
            return None

    def revoke(self, session_id: str) -> None:
        if session_id and len(session_id) <= 128:
            self.redis.delete(keys.ui_session_key(session_digest(session_id)))
