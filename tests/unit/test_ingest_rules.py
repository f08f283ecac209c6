"""Pure ingest rules: transitions, redaction, allow-list, submission, backoff, signing."""

from __future__ import annotations

import sys

import pytest

from genblaze_s3.ingest.destinations import DestinationPolicy, normalize_endpoint
from genblaze_s3.ingest.errors import DestinationNotAllowedError, InvalidJobError
from genblaze_s3.ingest.finalize.webhooks import WebhookVerificationError, sign_headers, verify
from genblaze_s3.ingest.models import AssetState, DestinationSpec, JobState
from genblaze_s3.ingest.redact import redact_url
from genblaze_s3.ingest.submit.submission import build_submission, new_job_id
from genblaze_s3.ingest.transitions import can_transition_asset, can_transition_job, job_outcome
from genblaze_s3.ingest.worker.asset_copy import redact_text
from genblaze_s3.settings import load_settings
from tests.unit.ingest_fixtures import make_manifest


def test_terminal_job_states_never_change() -> None:
    for terminal in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED):
        assert not any(can_transition_job(terminal, s) for s in JobState)


def test_finalizing_job_cannot_be_canceled() -> None:
    assert can_transition_job(JobState.RUNNING, JobState.CANCELED)
    assert not can_transition_job(JobState.FINALIZING, JobState.CANCELED)


def test_terminal_assets_never_change() -> None:
    assert can_transition_asset(AssetState.QUEUED, AssetState.COPYING)
    assert not can_transition_asset(AssetState.STORED, AssetState.FAILED)


def test_job_outcome_prefers_cancel_then_failure() -> None:
    assert job_outcome([AssetState.STORED, AssetState.DEDUPLICATED]) == JobState.SUCCEEDED
    assert job_outcome([AssetState.STORED, AssetState.FAILED]) == JobState.FAILED
    assert job_outcome([AssetState.FAILED, AssetState.CANCELED]) == JobState.CANCELED


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://cdn.x/a.png?X-Amz-Signature=abc&X-Amz-Credential=k",
            "https://cdn.x/a.png?REDACTED",
        ),
        ("https://user:pw@cdn.x:8443/a.mp4#frag", "https://cdn.x:8443/a.mp4"),
        ("https://cdn.x/a.png", "https://cdn.x/a.png"),
    ],
)
def test_redact_url_drops_query_and_userinfo(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_redact_text_redacts_every_url() -> None:
    msg = "HTTP 403 from https://cdn.x/v.mp4?Signature=CANARY and http://a:CANARY@h/x"
    assert "CANARY" not in redact_text(msg)


def test_allow_list_defaults_to_configured_endpoint_and_official() -> None:
    policy = DestinationPolicy.from_settings(
        load_settings({"AWS_ENDPOINT_URL": "http://127.0.0.1:8333/"})
    )
    policy.check(DestinationSpec(bucket="abc", endpoint_url="http://127.0.0.1:8333"))
    policy.check(DestinationSpec(bucket="abc", endpoint_url="https://s3.us-west-2.amazonaws.com"))
    policy.check(
        DestinationSpec(bucket="abc", endpoint_url="https://s3.us-west-004.backblazeb2.com")
    )
    policy.check(DestinationSpec(bucket="abc"))
    with pytest.raises(DestinationNotAllowedError):
        policy.check(DestinationSpec(bucket="abc", endpoint_url="http://evil.example:8333"))
    with pytest.raises(DestinationNotAllowedError):
        policy.check(DestinationSpec(bucket="abc", endpoint_url="https://s3.amazonaws.com.evil.io"))


def test_allowed_buckets_restrict_destinations() -> None:
    policy = DestinationPolicy.from_settings(
        load_settings({"GENBLAZE_ALLOWED_BUCKETS": "media,logs"})
    )
    policy.check(DestinationSpec(bucket="media"))
    with pytest.raises(DestinationNotAllowedError):
        policy.check(DestinationSpec(bucket="other"))


def test_normalize_endpoint_drops_default_port_and_path() -> None:
    assert normalize_endpoint("HTTPS://S3.Example.com:443/x") == "https://s3.example.com"


def test_destination_refuses_credentials_in_endpoint() -> None:
    with pytest.raises(ValueError):
        DestinationSpec(bucket="abc", endpoint_url="https://k:s@s3.example.com")


def test_submission_keeps_raw_urls_out_of_records() -> None:
    m = make_manifest(["https://cdn.x/a.png?token=SECRET"])
    sub = build_submission(m, DestinationSpec(bucket="abc"), tenant="t")
    assert "SECRET" not in sub.assets[0].model_dump_json()
    assert "SECRET" in sub.sources[sub.assets[0].asset_id].url
    assert sub.meta.run_id == m.run.run_id and sub.meta.asset_ids == [sub.assets[0].asset_id]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://x/y", "https://x/a b", "notaurl"])
def test_submission_refuses_non_http_sources(url: str) -> None:
    with pytest.raises(InvalidJobError):
        build_submission(make_manifest([url]), DestinationSpec(bucket="abc"), tenant="t")


def test_job_ids_are_128_bit_random() -> None:
    ids = {new_job_id() for _ in range(100)}
    assert len(ids) == 100 and all(len(i) == 32 for i in ids)


def test_webhook_signature_round_trips() -> None:
    body = b'{"job_id":"x"}'
    headers = sign_headers(body, secret="s3cr3t", msg_id="x.succeeded")
    assert verify(body, headers, secret="s3cr3t") == {"job_id": "x"}
    with pytest.raises(WebhookVerificationError):
        verify(body + b" ", headers, secret="s3cr3t")


def test_importing_the_library_does_not_import_celery() -> None:
    import subprocess

    code = (
        "import sys, genblaze_s3, genblaze_s3.ingest, genblaze_s3.api;"
        "print('celery' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_sealed_sources_round_trip_and_hide_the_signature() -> None:
    from cryptography.fernet import Fernet

    from genblaze_s3.ingest.sealing import SourceSealer

    sealer = SourceSealer(Fernet.generate_key().decode())
    raw = '{"url": "https://cdn.x/a.png?X-Amz-Signature=CANARY"}'
    sealed = sealer.seal(raw)
    assert "CANARY" not in sealed and sealer.unseal(sealed) == raw
    assert SourceSealer(None).unseal(raw) == raw  # unsealed values still read
    with pytest.raises(ValueError):
        SourceSealer(None).unseal(sealed)


def test_source_records_round_trip_sealed_and_unsealed() -> None:
    from cryptography.fernet import Fernet

    from genblaze_s3.ingest.sealing import SourceRecord, SourceSealer

    record = SourceRecord(url="https://cdn.x/a.png?X-Amz-Signature=CANARY", sha256="ab" * 32)
    for sealer in (SourceSealer(Fernet.generate_key().decode()), SourceSealer(None)):
        stored = sealer.seal_source(record)
        assert ("CANARY" in stored) != sealer.enabled
        assert sealer.unseal_source(stored) == record
    # Records stored before the typed record existed (plain JSON) still read.
    legacy = '{"url": "https://cdn.x/b.png", "sha256": null}'
    assert SourceSealer(None).unseal_source(legacy) == SourceRecord(url="https://cdn.x/b.png")


def test_stored_payload_has_no_source_secrets() -> None:
    m = make_manifest(["https://cdn.x/a.png?Signature=CANARY"])
    sub = build_submission(m, DestinationSpec(bucket="abc"), tenant="t")
    assert "CANARY" not in sub.payload
    assert "CANARY" in m.run.steps[0].assets[0].url  # the caller's objects are untouched
