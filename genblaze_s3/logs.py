"""Logging for the processes: plain text, or one JSON object per line.

Why JSON: an operator's log pipeline (Loki, CloudWatch, Elastic) indexes fields, so
"every line about job X" is a query, not a grep. With GENBLAZE_LOG_FORMAT=json each
line is one object with `ts`, `level`, `logger`, `message` and, where known, the
`job_id`, `asset_id` and `tenant` the code was working on: `log_context` puts them
in a context variable, so every log call under it carries them without passing them.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

CONTEXT_FIELDS = ("job_id", "asset_id", "tenant")
_context: ContextVar[dict[str, str] | None] = ContextVar("genblaze_log_context", default=None)


def _current() -> dict[str, str]:
    return _context.get() or {}


@contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Add `fields` (job_id, asset_id, tenant) to every log record inside the block."""
    token = _context.set({**_current(), **{k: v for k, v in fields.items() if v}})
    try:
        yield
    finally:
        _context.reset(token)


def bind_log_context(**fields: str | None) -> None:
    """Add fields to the current context (until the enclosing `log_context` ends)."""
    _context.set({**_current(), **{k: v for k, v in fields.items() if v}})


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (exceptions included as a string)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update(_current())
        for name in CONTEXT_FIELDS:  # explicit `extra={...}` wins over the context
            value = getattr(record, name, None)
            if value:
                out[name] = str(value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_logging(fmt: str, level: str = "INFO") -> None:
    """Root logging for a process: `json` (JsonFormatter) or `text`, to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # warnings become log records (JSON lines too)
