"""The store's boundary: every Redis error leaves the store as one StoreUnavailableError.

Why one mapping: the workers decide "the store went away: hand the message back" on
exactly one exception type (``ingest.worker.asset_copy.STORE_DOWN``), and the API
answers 503 on it; a raw ``redis.RedisError`` escaping from a lease, a counter or a
checkpoint would take another path (an asset failed, a manifest retried) for the same
outage. Every class here that talks to Redis is decorated with :func:`store_boundary`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import redis

from genblaze_s3.ingest.errors import StoreUnavailableError

_F = TypeVar("_F", bound=Callable[..., Any])
_C = TypeVar("_C", bound=type)


def store_errors_mapped(method: _F) -> _F:
    """Raise StoreUnavailableError (from the redis error) instead of a redis-py error.

    Every redis error but DataError, which redis-py raises before sending anything
    (a value it cannot encode: our bug, not the store's state), so it stays itself.
    """

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except redis.DataError:
            raise
        except redis.RedisError as exc:
            raise StoreUnavailableError(f"status store unavailable ({type(exc).__name__})") from exc

    return wrapper  # type: ignore[return-value]


def store_boundary(cls: _C) -> _C:
    """Apply :func:`store_errors_mapped` to every public method the class defines: the
    boundary cannot be forgotten by a method added later."""
    for name, value in list(vars(cls).items()):
        if not name.startswith("_") and callable(value) and not isinstance(value, type):
            setattr(cls, name, store_errors_mapped(value))
    return cls
