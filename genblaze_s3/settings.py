"""Settings read from the environment -- called only at entry points (worker, API, CLI).

Library objects receive typed values (``FetchPolicy``); only this module reads
``os.environ``, so defaults stay safe: SSRF guard on, no plain http, no private hosts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from genblaze_s3.transfer.config import DEFAULT_MAX_SOURCE_BYTES, FetchPolicy

_TRUE = frozenset({"1", "true", "yes", "on"})


def fetch_policy_from_env(environ: Mapping[str, str] | None = None) -> FetchPolicy:
    """Build a FetchPolicy from GENBLAZE_ALLOW_HTTP, GENBLAZE_ALLOW_PRIVATE_HOSTS,
    GENBLAZE_MAX_SOURCE_BYTES and GENBLAZE_CA_BUNDLE (all optional)."""
    env = os.environ if environ is None else environ
    hosts = env.get("GENBLAZE_ALLOW_PRIVATE_HOSTS", "")
    max_bytes = env.get("GENBLAZE_MAX_SOURCE_BYTES", "").strip()
    return FetchPolicy(
        allow_http=env.get("GENBLAZE_ALLOW_HTTP", "").strip().lower() in _TRUE,
        allow_private_hosts=frozenset(h for h in hosts.split(",") if h.strip()),
        max_source_bytes=int(max_bytes) if max_bytes else DEFAULT_MAX_SOURCE_BYTES,
        ca_bundle=env.get("GENBLAZE_CA_BUNDLE") or None,
    )
