"""A finished copy leaves nothing that holds its bytes (SeaweedFS, the test CDN).

Why: an exception kept in a local (the lean HEAD's 404, the copy's "is the key free?"
check) makes a cycle -- frame, error, traceback, frame -- and a frame keeps its
callers' frames, one of which holds the copy's part buffer. Nothing leaks for good
(the collector's next full pass frees it), but eight parallel 4 MiB copies held 26
buffers at once and peaked 30 MB higher. Checked with the collector off, so only
reference counting frees anything.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest
from genblaze_core.storage.base import KeyStrategy

from genblaze_s3.transfer import Destination, FetchPolicy, copy_url
from tests.support.cdn import CDNServer

MiB = 1024 * 1024
POLICY = FetchPolicy(allow_http=True, allow_private_hosts=frozenset({"127.0.0.1"}))


@pytest.fixture
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _big_buffers() -> int:
    return sum(
        1
        for o in gc.get_objects()
        if isinstance(o, bytearray | memoryview)
        and (o.nbytes if isinstance(o, memoryview) else len(o)) >= 2 * MiB
    )


@pytest.mark.parametrize("strategy", [KeyStrategy.HIERARCHICAL, KeyStrategy.CONTENT_ADDRESSABLE])
def test_a_finished_copy_holds_no_buffer(
    cdn: CDNServer, backend: Any, collector_off: None, strategy: KeyStrategy
) -> None:
    before = _big_buffers()
    for i in range(3):  # key free (HEAD 404, then PUT), for each of three copies
        url = cdn.add(f"/m{i}.png", bytes([i]) * (3 * MiB), content_type="image/png")
        dest = Destination(
            key_strategy=strategy, asset_id=f"a{i}", run_id="mem", date_str="2026-12-06"
        )
        result = copy_url(backend, url, dest, policy=POLICY)
        assert result.size == 3 * MiB and not result.deduplicated
    assert _big_buffers() == before
