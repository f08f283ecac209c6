"""copy_url never replaces an object it did not write (SeaweedFS, the test CDN).

Both ways a store can be asked are proven: the conditional write (`If-None-Match: *`
on PutObject / CompleteMultipartUpload, which `weed mini` honors with 412) and the
HEAD-first check used for stores not known to honor it, including one that
silently ignores the header (simulated by dropping it before it is sent).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from genblaze_core.storage.base import KeyStrategy

from genblaze_s3.backend.lean import LeanS3
from genblaze_s3.transfer import CopyConfig, Destination, FetchPolicy, TransferError, copy_url
from genblaze_s3.transfer import copy as copy_module
from tests.support.cdn import CDNServer
from tests.support.s3proxy import debris

MiB = 1024 * 1024
POLICY = FetchPolicy(allow_http=True, allow_private_hosts=frozenset({"127.0.0.1"}))
CFG = CopyConfig(part_size=5 * MiB, concurrency=2, backoff_base=0.01, backoff_cap=0.05)
SIZES = {"single-put": 40_000, "multipart": 11 * MiB}
DEST = Destination(
    key_strategy=KeyStrategy.HIERARCHICAL, asset_id="a1", run_id="r1", date_str="2026-12-01"
)


@pytest.fixture(params=["conditional", "head-first", "header-ignored"])
def store_mode(
    request: pytest.FixtureRequest, backend: Any, monkeypatch: pytest.MonkeyPatch
) -> str:
    if request.param == "conditional":
        # as AWS S3 / R2 are known to, and weed mini proves with its first 412
        setattr(backend, copy_module.HONORS_CONDITIONAL_PUT_ATTR, True)
    if request.param == "header-ignored":
        # A store that accepts If-None-Match and ignores it (B2 does not document it).
        for name in ("put_object", "complete_multipart_upload"):
            real = getattr(backend.client, name)

            def dropped(*a: Any, _real: Any = real, **kw: Any) -> Any:
                kw.pop("IfNoneMatch", None)
                return _real(*a, **kw)

            monkeypatch.setattr(backend.client, name, dropped)
        real_lean = LeanS3.put

        def lean_dropped(self: LeanS3, params: dict[str, Any], **kw: Any) -> Any:
            return real_lean(self, {k: v for k, v in params.items() if k != "IfNoneMatch"}, **kw)

        monkeypatch.setattr(LeanS3, "put", lean_dropped)  # the small PUT's own path
    return str(request.param)


@pytest.mark.parametrize("size", list(SIZES.values()), ids=list(SIZES))
def test_other_bytes_at_the_key_fail_key_conflict_and_stay(
    cdn: CDNServer, backend: Any, store_mode: str, size: int
) -> None:
    first, other = os.urandom(size), os.urandom(size)
    u1 = cdn.add(f"/{store_mode}-{size}-1.bin", first, content_type="video/mp4")
    u2 = cdn.add(f"/{store_mode}-{size}-2.bin", other, content_type="video/mp4")
    stored = copy_url(backend, u1, DEST, policy=POLICY, config=CFG)
    with pytest.raises(TransferError) as info:
        copy_url(backend, u2, DEST, policy=POLICY, config=CFG)
    assert info.value.code == "key_conflict" and not info.value.retryable
    body = backend.client.get_object(Bucket=backend.bucket, Key=stored.key)["Body"].read()
    assert body == first
    again = copy_url(backend, u1, DEST, policy=POLICY, config=CFG)
    assert again.deduplicated and again.key == stored.key and again.sha256 == stored.sha256
    assert debris(backend.client, backend.bucket) == ([stored.key], [])
