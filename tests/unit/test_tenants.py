"""The tenant model: tokens, placement, overlap refusal, limits, config files."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from genblaze_s3 import runtime
from genblaze_s3.ingest.errors import DestinationNotAllowedError, InvalidJobError
from genblaze_s3.ingest.models import DestinationSpec
from genblaze_s3.ingest.tenants import (
    TenantConfigError,
    TenantRegistry,
    registry_from,
    token_digest,
)
from genblaze_s3.ingest.validation import check_retention, is_job_id

TOML = """
[tenants.acme]
tokens = ["acme-old", "acme-new"]
buckets = ["media"]
webhook_secret = "whsec_c2VjcmV0LWFjbWU="
allow_compliance = true
max_assets_per_job = 2
max_concurrent_jobs = 3

[tenants.globex]
token_sha256 = ["%s"]
prefix_root = "customers/globex"
"""


def _registry(tmp_path: Path) -> TenantRegistry:
    path = tmp_path / "tenants.toml"
    path.write_text(TOML % token_digest("globex-tok").hex())
    return TenantRegistry.from_file(path)


def test_toml_file_gives_each_tenant_its_tokens_root_and_limits(tmp_path: Path) -> None:
    reg = _registry(tmp_path)
    for tok in ("acme-old", "acme-new"):  # rotation: both tokens open the same tenant
        assert reg.authenticate(f"Bearer {tok}").name == "acme"  # type: ignore[union-attr]
    assert reg.authenticate("Bearer globex-tok").name == "globex"  # type: ignore[union-attr]
    assert reg.authenticate("Bearer nope") is None and reg.authenticate(None) is None
    acme = reg.get("acme")
    assert acme.prefix_root == "acme" and acme.allow_compliance and acme.max_assets_per_job == 2
    placed = reg.place(acme, DestinationSpec(bucket="media", prefix="shared"))
    assert placed.prefix == "acme/shared"
    assert reg.get("globex").place(DestinationSpec(bucket="any")).prefix == (
        "customers/globex/genblaze"
    )


def test_json_file_reads_the_same_shape(tmp_path: Path) -> None:
    path = tmp_path / "tenants.json"
    path.write_text(json.dumps({"tenants": {"solo": {"tokens": ["t"], "prefix_root": ""}}}))
    reg = TenantRegistry.from_file(path)
    assert reg.place(reg.get("solo"), DestinationSpec(bucket="abc")).prefix == "genblaze"


def test_a_bucket_outside_the_tenants_list_is_refused(tmp_path: Path) -> None:
    acme = _registry(tmp_path).get("acme")
    with pytest.raises(DestinationNotAllowedError):
        acme.place(DestinationSpec(bucket="other-bucket"))
    assert not acme.owns(DestinationSpec(bucket="other-bucket", prefix="acme/x"))
    assert not acme.owns(DestinationSpec(bucket="media", prefix="globex/x"))
    assert acme.owns(DestinationSpec(bucket="media", prefix="acme/x"))


@pytest.mark.parametrize(
    ("a", "b"),
    [("shared", "shared"), ("shared", "shared/sub"), ("", "b")],
)
def test_overlapping_prefix_roots_are_refused_unless_both_opt_in(a: str, b: str) -> None:
    spec = {"tenants": {"a": {"tokens": ["1"], "prefix_root": a}, "b": {"prefix_root": b}}}
    with pytest.raises(TenantConfigError, match="overlapping"):
        TenantRegistry.from_mapping(spec)
    for t in spec["tenants"].values():
        t["shared_prefix"] = True  # type: ignore[index]
    TenantRegistry.from_mapping(spec)


def test_one_token_for_two_tenants_is_refused() -> None:
    spec = {"tenants": {"a": {"tokens": ["same"]}, "b": {"tokens": ["same"]}}}
    with pytest.raises(TenantConfigError, match="one token"):
        TenantRegistry.from_mapping(spec)


@pytest.mark.parametrize(
    "bad",
    [
        {"tenants": {}},
        {"tenants": {"a": {"tokens": "not-a-list"}}},
        {"tenants": {"a": {"max_assets_per_job": 0}}},
        {"tenants": {"a": {"prefix_root": "../up"}}},
        {"tenants": {"a": {"surprise": 1}}},
        {"tenants": {"bad name": {}}},
    ],
)
def test_malformed_tenant_config_is_refused(bad: dict) -> None:
    with pytest.raises(TenantConfigError):
        TenantRegistry.from_mapping(bad)


def test_legacy_token_list_single_tenant_keeps_todays_layout() -> None:
    reg = TenantRegistry.from_api_tokens("acme:t1")
    assert reg.place(reg.get("acme"), DestinationSpec(bucket="abc")).prefix == "genblaze"


def test_legacy_token_list_several_tenants_get_their_own_roots() -> None:
    reg = TenantRegistry.from_api_tokens("acme:t1,globex:t2,acme:t3")
    assert reg.authenticate("Bearer t3").name == "acme"  # type: ignore[union-attr]
    dest = DestinationSpec(bucket="abc", prefix="shared")
    assert reg.place(reg.get("acme"), dest).prefix == "acme/shared"
    assert reg.place(reg.get("globex"), dest).prefix == "globex/shared"


def test_an_open_tenant_cannot_write_under_a_configured_root() -> None:
    reg = TenantRegistry.from_api_tokens("acme:t1,globex:t2")
    with pytest.raises(DestinationNotAllowedError):
        reg.place(reg.get("sink-user"), DestinationSpec(bucket="abc", prefix="acme/x"))
    assert reg.place(reg.get("sink-user"), DestinationSpec(bucket="abc")).prefix == "genblaze"
    assert not reg.owns(reg.get("sink-user"), DestinationSpec(bucket="abc", prefix="acme/x"))


def test_file_and_token_list_together_are_ambiguous(tmp_path: Path) -> None:
    with pytest.raises(TenantConfigError):
        registry_from(str(tmp_path / "t.toml"), "a:b", None)
    assert not registry_from(None, None, None).configured


def test_limits_and_lock_mode(tmp_path: Path) -> None:
    reg = _registry(tmp_path)
    reg.get("acme").check_lock_mode("COMPLIANCE")
    with pytest.raises(InvalidJobError) as info:
        reg.get("globex").check_lock_mode("COMPLIANCE")
    assert info.value.field == "manifest_lock.mode"
    with pytest.raises(InvalidJobError):
        reg.get("acme").check_asset_count(3)


def test_retention_must_be_future_and_bounded() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    check_retention(now + timedelta(days=1), now=now, max_days=30)
    for when in (now - timedelta(seconds=1), now + timedelta(days=31)):
        with pytest.raises(InvalidJobError) as info:
            check_retention(when, now=now, max_days=30)
        assert info.value.field == "manifest_lock.retain_until"


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("ab" * 16, True),
        ("AB" * 16, False),
        ("x:y", False),
        ("ab" * 17, False),
        ("", False),
        ("ab" * 16 + "\n", False),
    ],
)
def test_job_id_format(value: str, ok: bool) -> None:
    assert is_job_id(value) is ok


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("endpoint_url", "http://127.0.0.1:8333.evil"),
        ("endpoint_url", "http://127.0.0.1:99999"),
        ("endpoint_url", "http://u:p@127.0.0.1:8333"),
        ("endpoint_url", "http://127.0.0.1:8333/path"),
        ("endpoint_url", "ftp://127.0.0.1"),
        ("region", "x" * 200),
        ("region", "us east"),
        ("region", "us-east-1\n"),
        ("bucket", "media\n"),
        ("prefix", "a/../b"),
        ("prefix", "a//b"),
        ("prefix", "/a"),
        ("prefix", "a\x00b"),
        ("prefix", "p" * 600),
        ("bucket", "UPPER"),
        ("bucket", "192.168.1.1"),
    ],
)
def test_every_destination_field_is_checked(field: str, value: str) -> None:
    from pydantic import ValidationError

    args = {"bucket": "media", field: value}
    with pytest.raises(ValidationError) as info:
        DestinationSpec(**args)
    assert info.value.errors()[0]["loc"] == (field,)


def test_tenant_settings_fail_naming_the_variable(tmp_path: Path) -> None:
    from genblaze_s3.settings import SettingsError, load_settings

    bad = tmp_path / "t.json"
    bad.write_text('{"tenants": {"a": {"tokens": ["x"]}, "b": {"tokens": ["x"]}}}')
    with pytest.raises(SettingsError, match="GENBLAZE_TENANTS_FILE"):
        runtime.tenant_registry(load_settings({"GENBLAZE_TENANTS_FILE": str(bad)}))
    good = tmp_path / "g.toml"
    good.write_text(TOML % token_digest("g").hex())
    config = load_settings({"GENBLAZE_TENANTS_FILE": str(good), "GENBLAZE_MAX_BODY_BYTES": "2048"})
    assert sorted(runtime.tenant_registry(config).tenants) == ["acme", "globex"]
    assert config.max_body_bytes == 2048 and config.max_retention_days == 3650
    with pytest.raises(SettingsError, match="GENBLAZE_MAX_RETENTION_DAYS"):
        load_settings({"GENBLAZE_MAX_RETENTION_DAYS": "0"})
