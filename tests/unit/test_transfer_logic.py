"""Pure pieces of the copy engine: backoff, part sizing, checkpoints, errors, settings."""

from __future__ import annotations

import json
import threading

import pytest

from genblaze_s3.backoff import backoff_delay
from genblaze_s3.settings import load_settings
from genblaze_s3.transfer import (
    Checkpoint,
    CheckpointStore,
    CopyConfig,
    FetchPolicy,
    FileCheckpointStore,
    MemoryCheckpointStore,
    PartRecord,
    SourceValidators,
)
from genblaze_s3.transfer.config import GiB, MiB
from genblaze_s3.transfer.errors import (
    SourceExpired,
    SourceNotFound,
    SourceUnavailable,
    error_for_status,
    is_retryable_storage_error,
    map_source_error,
    map_storage_error,
)
from genblaze_s3.transfer.multipart import call_with_retries, choose_part_size


def test_backoff_is_capped_exponential_with_equal_jitter() -> None:
    """The one policy: ceiling doubles per retry up to the cap; delay in [ceiling/2, ceiling]."""
    top = [backoff_delay(a, base=0.5, cap=4.0, rand=lambda: 1.0) for a in range(1, 8)]
    assert top == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    assert backoff_delay(3, base=0.5, cap=4.0, rand=lambda: 0.0) == 1.0  # the floor
    assert backoff_delay(0, base=1, cap=3) == 0.0
    assert backoff_delay(10_000, base=1, cap=3, rand=lambda: 0.5) == 2.25


def test_part_size_grows_to_stay_under_ten_thousand_parts() -> None:
    assert choose_part_size(1 * GiB, minimum=16 * MiB, fallback_max=5 * GiB) == 16 * MiB
    big = choose_part_size(500 * GiB, minimum=16 * MiB, fallback_max=5 * GiB)
    assert big == 64 * MiB and 500 * GiB / big <= 10_000
    assert choose_part_size(None, minimum=16 * MiB, fallback_max=5 * GiB) == 16 * MiB
    assert choose_part_size(None, minimum=64 * 1024, fallback_max=5 * GiB) * 10_000 >= 5 * GiB


def test_checkpoint_round_trips_through_json() -> None:
    cp = Checkpoint(
        bucket="b",
        key="k/x.mp4",
        upload_id="u-1",
        part_size=16 * MiB,
        source=SourceValidators(etag='"abc"', last_modified="Wed, 01 Jan 2026", length=42),
        parts=(PartRecord(1, '"e1"', 16 * MiB, "c1=="), PartRecord(2, '"e2"', 3)),
        checksum_sha256=True,
    )
    raw = cp.to_json()
    assert json.loads(raw)["upload_id"] == "u-1"
    assert Checkpoint.from_json(raw) == cp
    with pytest.raises(ValueError):
        Checkpoint.from_json(json.dumps({**json.loads(raw), "version": 99}))


def test_source_validators_match_only_on_equal_known_fields() -> None:
    a = SourceValidators('"x"', "lm", 10)
    assert a.matches(SourceValidators('"x"', "lm", 10))
    assert not a.matches(SourceValidators('"y"', "lm", 10))
    assert not a.matches(SourceValidators('"x"', "lm", 11))
    assert not SourceValidators(None, None, 10).matches(SourceValidators(None, None, 10))


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_checkpoint_stores_save_load_clear(kind: str, tmp_path) -> None:
    store: CheckpointStore = (
        MemoryCheckpointStore() if kind == "memory" else FileCheckpointStore(tmp_path)
    )
    assert isinstance(store, CheckpointStore)
    cp = Checkpoint("b", "k", "u", 5 * MiB, parts=(PartRecord(1, '"e"', 5),))
    assert store.load("job:a/1") is None
    store.save("job:a/1", cp)
    assert store.load("job:a/1") == cp
    store.clear("job:a/1")
    store.clear("job:a/1")
    assert store.load("job:a/1") is None


def test_file_store_survives_concurrent_saves_and_ignores_garbage(tmp_path) -> None:
    store = FileCheckpointStore(tmp_path)
    cps = [Checkpoint("b", "k", f"u{i}", 5 * MiB) for i in range(20)]
    threads = [threading.Thread(target=store.save, args=("id", cp)) for cp in cps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.load("id") in cps
    (tmp_path / "bad.json").write_text("{not json")
    assert store.load("bad") is None


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (404, "source_not_found", False),
        (401, "source_expired", False),
        (403, "source_expired", False),
        (410, "source_expired", False),
        (429, "source_unavailable", True),
        (500, "source_unavailable", True),
        (503, "source_unavailable", True),
        (412, "source_changed", True),
        (400, "source_not_found", False),
    ],
)
def test_status_codes_map_to_stable_error_codes(status: int, code: str, retryable: bool) -> None:
    err = error_for_status(status)
    assert err is not None and err.code == code and err.retryable is retryable
    assert error_for_status(200) is None and error_for_status(206) is None


def test_lower_errors_are_mapped_in_one_place() -> None:
    import botocore.exceptions as bce
    import requests
    import urllib3.exceptions as u3

    assert map_source_error(requests.exceptions.ReadTimeout()).code == "source_too_slow"
    assert map_source_error(u3.ProtocolError("reset")).code == "source_truncated"
    assert map_source_error(ConnectionResetError()).code == "source_reset"
    assert isinstance(map_source_error(SourceExpired("x")), SourceExpired)
    slow = bce.ClientError({"Error": {"Code": "SlowDown"}}, "UploadPart")
    denied = bce.ClientError({"Error": {"Code": "AccessDenied"}}, "UploadPart")
    assert is_retryable_storage_error(slow) and not is_retryable_storage_error(denied)
    assert map_storage_error(slow, "x").retryable and not map_storage_error(denied, "x").retryable
    assert map_storage_error(denied, "x").code == "storage_error"
    assert isinstance(SourceNotFound("x"), Exception) and SourceUnavailable.retryable


def test_http_client_errors_keep_their_codes() -> None:
    """The source is fetched on http.client: its errors map as urllib3's wrappers of the
    same errors did (a body cut short is truncated; no answer at all is a reset)."""
    import http.client
    import ssl

    from genblaze_s3.transfer.errors import map_body_error

    assert map_source_error(http.client.RemoteDisconnected("closed")).code == "source_reset"
    assert map_source_error(http.client.IncompleteRead(b"x", 5)).code == "source_truncated"
    assert map_source_error(http.client.BadStatusLine("junk")).code == "source_unavailable"
    assert map_source_error(TimeoutError("timed out")).code == "source_too_slow"
    assert map_body_error(ConnectionResetError(104, "reset")).code == "source_truncated"
    assert map_body_error(http.client.IncompleteRead(b"x", 5)).code == "source_truncated"
    assert map_body_error(TimeoutError("timed out")).code == "source_too_slow"
    assert map_body_error(ssl.SSLError(1, "bad record mac")).code == "source_tls_failed"


def test_call_with_retries_retries_transient_then_raises_last_cause() -> None:
    import botocore.exceptions as bce

    calls = []
    sleeps: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise bce.ClientError({"Error": {"Code": "SlowDown"}}, "UploadPart")
        return "ok"

    cfg = CopyConfig(max_part_attempts=5)
    assert call_with_retries(flaky, what="x", config=cfg, sleep=sleeps.append) == "ok"
    assert len(calls) == 3 and len(sleeps) == 2

    def always() -> str:
        raise bce.ClientError({"Error": {"Code": "InternalError"}}, "UploadPart")

    with pytest.raises(Exception) as info:
        call_with_retries(always, what="x", config=cfg, sleep=sleeps.append)
    assert info.value.code == "storage_error" and info.value.retryable  # type: ignore[attr-defined]


def test_fetch_policy_defaults_are_strict_and_env_opens_them() -> None:
    strict = FetchPolicy()
    assert not strict.allow_http and not strict.allow_private_hosts
    assert strict.max_source_bytes == 5 * GiB and strict.max_redirects == 5
    env = {
        "GENBLAZE_ALLOW_HTTP": "1",
        "GENBLAZE_ALLOW_PRIVATE_HOSTS": "127.0.0.1, Localhost.",
        "GENBLAZE_MAX_SOURCE_BYTES": "1000",
    }
    p = FetchPolicy.from_settings(load_settings(env))
    assert p.allow_http and p.allow_private_hosts == {"127.0.0.1", "localhost"}
    assert p.max_source_bytes == 1000
    assert FetchPolicy.from_settings(load_settings({})) == FetchPolicy()


def test_copy_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        CopyConfig(part_size=10)
    with pytest.raises(ValueError):
        CopyConfig(concurrency=0)
    with pytest.raises(ValueError):
        CopyConfig(read_timeout=0)
