"""Job handles: status and wait from Python, through the store or over HTTP."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Protocol

from genblaze_s3.ingest.errors import JobNotFoundError, JobWaitTimeoutError
from genblaze_s3.ingest.models import TERMINAL_JOB_STATES, JobState, JobView
from genblaze_s3.ingest.store.status import StatusStore


class _Source(Protocol):
    def fetch(self, job_id: str) -> JobView: ...

    def state(self, job_id: str) -> JobState: ...

    def changes(self, job_id: str) -> AbstractContextManager[Callable[[float], object]]:
        """A call that sleeps up to its argument (seconds), returning early when the job
        may have changed."""
        ...


class StoreSource:
    """Reads the status store directly (same process or a host with Redis access)."""

    def __init__(self, store: StatusStore) -> None:
        self._store = store

    def fetch(self, job_id: str) -> JobView:
        view = self._store.get_job(job_id)
        if view is None:
            raise JobNotFoundError(job_id)
        return view

    def state(self, job_id: str) -> JobState:
        """One HGET: waiting on a 500-asset job must not cost a 500-asset read per poll."""
        state = self._store.job_state(job_id)
        if state is None:
            raise JobNotFoundError(job_id)
        return state

    @contextlib.contextmanager
    def changes(self, job_id: str) -> Iterator[Callable[[float], object]]:
        """Wakes on the job's events channel: a wait ends ~1 ms after the job does."""
        with self._store.job_changes(job_id) as changes:
            yield changes.wait


class HTTPSource:
    """Reads `GET /v1/jobs/{id}` with a bearer token (no Redis access needed), through
    the one HTTP client (`IngestClient`), so its errors are the typed API errors
    (`JobNotFoundAPIError` is a `JobNotFoundError`, `UnauthorizedError`, ...)."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 10.0) -> None:
        # httpx is the `queue` extra: imported when an HTTP handle is made, not with us.
        from genblaze_s3.ingest.client.http import IngestClient

        self._client = IngestClient(base_url, token, timeout=timeout)

    def fetch(self, job_id: str) -> JobView:
        return self._client.get(job_id)

    def state(self, job_id: str) -> JobState:
        return self.fetch(job_id).state

    def changes(self, job_id: str) -> AbstractContextManager[Callable[[float], object]]:
        """Over HTTP a wait polls (the API's SSE stream is for browsers and `watch`)."""
        return contextlib.nullcontext(time.sleep)


class JobHandle:
    """`sink.last_job`: the id of an enqueued job plus `status()` / `wait()`."""

    def __init__(self, job_id: str, source: _Source) -> None:
        self.id = job_id
        self._source = source

    def __repr__(self) -> str:
        return f"JobHandle(id={self.id!r})"

    def status(self) -> JobView:
        return self._source.fetch(self.id)

    def wait(self, timeout: float | None = None, *, poll_interval: float = 0.2) -> JobView:
        """Block until the job is terminal; returns its final status.

        Raises JobWaitTimeoutError (a TimeoutError) when `timeout` passes first;
        the job itself keeps running.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        # Subscribed before the first read: a change between the read and the wait
        # wakes the wait instead of being missed; `poll_interval` is the floor.
        with self._source.changes(self.id) as changed:
            while True:
                state = self._source.state(self.id)
                if state in TERMINAL_JOB_STATES:
                    return self._source.fetch(self.id)
                pause = poll_interval
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise JobWaitTimeoutError(self.id, timeout or 0, state.value)
                    pause = min(pause, left)
                changed(pause)


def job_handle(
    job_id: str,
    *,
    store: StatusStore | None = None,
    api_url: str | None = None,
    token: str | None = None,
) -> JobHandle:
    """A handle on any job id, via the store or via the HTTP API."""
    if store is not None:
        return JobHandle(job_id, StoreSource(store))
    if api_url is None or token is None:
        raise ValueError("pass store=, or api_url= and token=")
    return JobHandle(job_id, HTTPSource(api_url, token))
