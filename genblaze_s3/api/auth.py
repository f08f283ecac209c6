"""Bearer tokens -> tenant, compared in constant time.

GENBLAZE_API_TOKENS="tenant:token,tenant2:token2" is parsed by the entry point;
this module only receives the mapping.
"""

from __future__ import annotations

import hmac


def parse_tokens(raw: str) -> dict[str, str]:
    """'tenant:token,...' -> {token: tenant}; empty entries ignored."""
    out: dict[str, str] = {}
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        tenant, sep, token = item.partition(":")
        if not sep or not tenant or not token:
            raise ValueError("GENBLAZE_API_TOKENS entries must look like tenant:token")
        out[token] = tenant
    return out


def tenant_for(header: str | None, tokens: dict[str, str]) -> str | None:
    """The tenant owning the bearer token in `header`, else None.

    Every known token is compared (no early exit), so timing does not reveal
    how many leading bytes matched or which entry was close.
    """
    if not header or not header.lower().startswith("bearer "):
        return None
    presented = header[7:].strip().encode()
    found: str | None = None
    for token, tenant in tokens.items():
        if hmac.compare_digest(presented, token.encode()):
            found = tenant
    return found
