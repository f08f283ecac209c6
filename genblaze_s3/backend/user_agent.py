"""User-Agent for every S3 request this package makes.

Backblaze attributes B2 traffic from genblaze by the ``b2ai-genblaze/<version>``
token, so every client we build (sync, async, region probes) must carry it.
The version is genblaze-core's, read from the installed wheel, so it never
drifts from what is actually running.
"""

from __future__ import annotations

from genblaze_core._version import __version__ as _CORE_VERSION

USER_AGENT_BASE = f"b2ai-genblaze/{_CORE_VERSION}"


def build_user_agent(extra: str | None = None) -> str:
    """Return ``b2ai-genblaze/<version>``, plus ``extra`` (``app/1.0``) when given."""
    return f"{USER_AGENT_BASE} {extra}" if extra else USER_AGENT_BASE


__all__ = ["USER_AGENT_BASE", "build_user_agent"]
