"""The process's pool of warm source fetchers: one borrower at a time, reused across threads."""

from __future__ import annotations

import threading

import pytest

from genblaze_s3.transfer import fetcher_pool
from genblaze_s3.transfer.config import CopyConfig, FetchPolicy
from genblaze_s3.transfer.fetcher_pool import borrowed_fetcher


@pytest.fixture(autouse=True)
def empty_pool() -> None:
    with fetcher_pool._lock:
        fetcher_pool._idle.clear()


def test_a_returned_fetcher_is_lent_again_on_another_thread() -> None:
    policy, config = FetchPolicy(), CopyConfig()
    with borrowed_fetcher(policy, config) as first:
        pass
    assert fetcher_pool.idle_count() == 1
    seen: list[object] = []

    def copy() -> None:
        with borrowed_fetcher(policy, config) as f:
            seen.append(f)

    t = threading.Thread(target=copy)
    t.start()
    t.join()
    assert seen == [first]  # the thread that ended did not take its connections with it


def test_two_copies_at_once_never_share_a_fetcher() -> None:
    policy, config = FetchPolicy(), CopyConfig()
    with borrowed_fetcher(policy, config) as a, borrowed_fetcher(policy, config) as b:
        assert a is not b
    assert fetcher_pool.idle_count() == 2


def test_a_failed_copy_closes_its_fetcher_instead_of_returning_it() -> None:
    policy, config = FetchPolicy(), CopyConfig()
    with pytest.raises(RuntimeError), borrowed_fetcher(policy, config):
        raise RuntimeError("source broke mid-read")
    assert fetcher_pool.idle_count() == 0


def test_idle_fetchers_are_capped() -> None:
    policy, config = FetchPolicy(), CopyConfig()
    n = fetcher_pool.MAX_IDLE + 3
    stack = [borrowed_fetcher(policy, config) for _ in range(n)]
    for cm in stack:
        cm.__enter__()
    for cm in stack:
        cm.__exit__(None, None, None)
    assert fetcher_pool.idle_count() == fetcher_pool.MAX_IDLE
