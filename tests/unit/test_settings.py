"""The settings module: one place reads the environment, a bad value names its variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from genblaze_s3 import runtime
from genblaze_s3.ingest.destinations import DestinationPolicy
from genblaze_s3.settings import (
    DEFAULT_VISIBILITY_TIMEOUT,
    Settings,
    SettingsError,
    load_b2_settings,
    load_settings,
)
from genblaze_s3.settings_doc import describe
from genblaze_s3.transfer.config import FetchPolicy

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_MODULE = ROOT / "genblaze_s3" / "settings.py"
# Any way of reading the process environment: os.environ / os.getenv / os.environb /
# `from os import environ` / os.putenv (a write that a later read depends on).
_ENV_READ = re.compile(r"\bos\.(environb?|getenv|putenv)\b|\bgetenv\(|from os import .*\benviron")


def test_only_the_settings_module_reads_the_environment() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for top in ("genblaze_s3", "workers")
        for path in sorted((ROOT / top).rglob("*.py"))
        if path != SETTINGS_MODULE
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if _ENV_READ.search(line)
    ]
    assert not offenders, "read the environment in genblaze_s3/settings.py:\n" + "\n".join(
        offenders
    )


def test_defaults_are_safe_and_documented() -> None:
    s = load_settings({})
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert s.effective_broker_url == s.redis_url
    assert s.queue == "genblaze-ingest"
    assert s.visibility_timeout == DEFAULT_VISIBILITY_TIMEOUT
    policy = FetchPolicy.from_settings(s)
    assert not policy.allow_http and not policy.allow_private_hosts
    assert runtime.copy_config(s) is None
    assert s.secret("source_key") is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GENBLAZE_MAX_RETRIES": "abc"}, "GENBLAZE_MAX_RETRIES: expected an integer, got 'abc'"),
        ({"GENBLAZE_CHUNK_THREADS": "0"}, "GENBLAZE_CHUNK_THREADS: "),
        ({"GENBLAZE_SOURCE_MIN_RATE": "fast"}, "GENBLAZE_SOURCE_MIN_RATE: expected a number"),
        ({"GENBLAZE_ALLOW_HTTP": "maybe"}, "GENBLAZE_ALLOW_HTTP: expected a boolean"),
        ({"GENBLAZE_CAS_MODE": "sometimes"}, "GENBLAZE_CAS_MODE: "),
        ({"PORT": "http"}, "PORT: expected an integer, got 'http'"),
        ({"GENBLAZE_API_RATE_LIMIT": "-1/1"}, "GENBLAZE_API_RATE_LIMIT: "),
    ],
)
def test_a_bad_value_names_its_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    assert str(info.value).startswith(message)


def test_a_bad_secret_is_named_but_never_echoed() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"GENBLAZE_API_TOKENS": "tenant-without-colon-s3cr3t"})
    assert "GENBLAZE_API_TOKENS" in str(info.value)
    assert "s3cr3t" not in str(info.value)


def test_copy_overrides_refused_by_copy_config_name_their_variables() -> None:
    with pytest.raises(SettingsError, match="GENBLAZE_SOURCE_READ_TIMEOUT"):
        runtime.copy_config(load_settings({"GENBLAZE_SOURCE_READ_TIMEOUT": "0"}))
    cfg = load_settings({"GENBLAZE_CAS_MODE": "spool", "GENBLAZE_SOURCE_DEADLINE": "60"})
    copy = runtime.copy_config(cfg)
    assert copy is not None and (copy.cas_mode, copy.total_deadline) == ("spool", 60.0)


def test_empty_variables_mean_unset_except_where_empty_is_a_value() -> None:
    s = load_settings({"GENBLAZE_BATCH_MAX": "", "GENBLAZE_BROKER_URL": ""})
    assert s.batch_max == 16 and s.broker_url is None
    # An empty allow-list means "official endpoints only", not "fall back to AWS_ENDPOINT_URL".
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9000"}
    assert DestinationPolicy.from_settings(load_settings(env)).allowed_endpoints == {
        "http://127.0.0.1:9000"
    }
    closed = DestinationPolicy.from_settings(
        load_settings({**env, "GENBLAZE_ALLOWED_ENDPOINTS": ""})
    )
    assert closed.allowed_endpoints == frozenset()
    assert load_settings({"GENBLAZE_API_RATE_LIMIT": ""}).api_rate_limit == ""


def test_worker_credentials_fall_back_to_b2_names() -> None:
    s = load_settings({"B2_KEY_ID": "kid", "B2_APP_KEY": "key"})
    assert s.worker_credentials() == ("kid", "key")
    s = load_settings({"AWS_ACCESS_KEY_ID": "a", "B2_KEY_ID": "kid", "AWS_SECRET_ACCESS_KEY": "b"})
    assert s.worker_credentials() == ("a", "b")
    assert "hunter2" not in repr(load_settings({"B2_APP_KEY": "hunter2"}))


def test_b2_settings_accept_both_spellings() -> None:
    b2 = load_b2_settings({"B2_BUCKET_NAME": "media", "B2_APPLICATION_KEY_ID": "kid"})
    assert b2.bucket == "media" and b2.key_id is not None
    assert b2.key_id.get_secret_value() == "kid"


def test_describe_lists_every_setting_with_a_description() -> None:
    rows = describe()
    names = [name for name, *_ in rows]
    assert len(names) == len(set(names))
    assert len(rows) >= len(Settings.model_fields)
    for name, type_, _default, description in rows:
        assert name.isupper() and type_ and description, name
    by_name = {row[0]: row for row in rows}
    assert by_name["GENBLAZE_MAX_RETRIES"][1:3] == ("int", "5")
    assert by_name["GENBLAZE_SOURCE_KEY"][1] == "secret"
