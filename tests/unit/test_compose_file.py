"""docker-compose.yml is right for users, checked without a docker engine (none runs here).

The file is read as `docker compose` reads it (tests/support/compose.py): images pinned,
the bucket created with Object Lock before any worker starts, no secret with a default
(compose refuses to start without them), every variable a real setting, and endpoints
that containers and the host both reach. The commands are the Procfile's
(tests/unit/test_ingest_deploy.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from genblaze_s3.settings_doc import describe
from tests.support.compose import (
    MissingVariableError,
    interpolate,
    load_compose,
    raw_compose,
    shell_expand,
)

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
SECRETS = {
    "GENBLAZE_API_TOKENS": "acme:tok-0123456789",
    "GENBLAZE_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "GENBLAZE_SOURCE_KEY": "dGVzdC1vbmx5LWtleS1ub3QtYS1zZWNyZXQtMDAwMDA=",
    "MINIO_ROOT_PASSWORD": "a-long-password",
}
# A release, not a moving tag: x.y.z (redis:7.4.2-alpine) or MinIO's RELEASE.<date>.
PINNED_TAG = re.compile(r"^(\d+\.\d+\.\d+(-[a-z0-9.]+)?|RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ)$")
# Variables compose sets that are not ours: boto3's region.
FOREIGN = {"AWS_DEFAULT_REGION"}


@pytest.fixture
def services() -> dict[str, Any]:
    compose, missing = load_compose(COMPOSE, SECRETS)
    assert missing == []
    result: dict[str, Any] = compose["services"]
    return result


def _env(service: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in (service.get("environment") or {}).items()}


def test_every_image_is_pinned_to_a_release(services: dict[str, Any]) -> None:
    images = {name: s["image"] for name, s in services.items() if "image" in s}
    assert images, "compose runs third-party images"
    for name, image in images.items():
        repo, sep, tag = image.rpartition(":")
        assert sep and "/" not in tag, f"{name}: {image} has no tag"
        assert PINNED_TAG.match(tag), f"{name}: {image} is not pinned to a release"
    built = [name for name, s in services.items() if "build" in s]
    assert sorted(built) == ["api", "worker"]


def test_compose_refuses_to_start_without_its_secrets() -> None:
    _, missing = load_compose(COMPOSE, {})
    assert set(SECRETS) <= set(missing)
    for name in SECRETS:  # any one left unset still stops it
        _, missing = load_compose(COMPOSE, {k: v for k, v in SECRETS.items() if k != name})
        assert missing == [name]
    with pytest.raises(MissingVariableError, match="GENBLAZE_WEBHOOK_SECRET"):
        interpolate(raw_compose(COMPOSE)["x-genblaze-env"]["GENBLAZE_WEBHOOK_SECRET"], {})


def test_no_secret_setting_has_a_default() -> None:
    # Key ids name an identity (MinIO's user); the secrets are what signs.
    secret_settings = {n for n, kind, _, _ in describe() if kind == "secret"}
    secret_settings.discard("AWS_ACCESS_KEY_ID")
    seen = set()
    for service in raw_compose(COMPOSE)["services"].values():
        for key, value in (service.get("environment") or {}).items():
            if key in secret_settings or "PASSWORD" in key:
                seen.add(key)
                with pytest.raises(MissingVariableError):
                    interpolate(str(value), {})
    assert {"GENBLAZE_WEBHOOK_SECRET", "GENBLAZE_SOURCE_KEY", "AWS_SECRET_ACCESS_KEY"} <= seen


def test_every_variable_the_product_reads_is_a_setting(services: dict[str, Any]) -> None:
    settings = {name for name, _, _, _ in describe()}
    for name in ("api", "worker"):
        for key in _env(services[name]):
            if key.startswith(("GENBLAZE_", "AWS_", "B2_")) or key == "PORT":
                assert key in settings | FOREIGN, f"{name}: {key} is not a setting"


def test_a_one_shot_step_creates_the_locked_bucket_before_any_worker(
    services: dict[str, Any],
) -> None:
    worker = services["worker"]
    done = [
        name
        for name, c in worker["depends_on"].items()
        if c["condition"] == "service_completed_successfully"
    ]
    assert len(done) == 1
    init = services[done[0]]
    script = shell_expand(" ".join(init["command"]), _env(init))
    bucket = _env(worker)["GENBLAZE_BUCKET"]
    assert f'mc mb --ignore-existing --with-lock "local/{bucket}"' in script
    assert _env(worker)["GENBLAZE_ALLOWED_BUCKETS"] == bucket
    # It talks to the same S3 the workers write to, with the same credentials.
    assert f"mc alias set local {_env(worker)['AWS_ENDPOINT_URL']} " in script
    assert _env(init)["MINIO_ROOT_PASSWORD"] == _env(worker)["AWS_SECRET_ACCESS_KEY"]
    assert init.get("restart") == "no"
    assert init["depends_on"]["minio"]["condition"] == "service_healthy"


def _published(service: dict[str, Any], container_port: int) -> str:
    """The host address:port a service's container port is published on."""
    for spec in service.get("ports", []):
        parts = str(spec).split(":")
        if int(parts[-1]) == container_port:
            return ":".join(parts[:-1])
    raise AssertionError(f"port {container_port} is not published")


def test_endpoints_are_reachable_from_containers_and_the_host(services: dict[str, Any]) -> None:
    for name in ("api", "worker"):
        env = _env(services[name])
        s3 = urlsplit(env["AWS_ENDPOINT_URL"])
        assert s3.hostname in services, "containers reach S3 by its service name"
        assert env["GENBLAZE_ALLOWED_ENDPOINTS"] == env["AWS_ENDPOINT_URL"]
        assert _published(services[s3.hostname], s3.port or 80) == f"127.0.0.1:{s3.port}"
        store = urlsplit(env["GENBLAZE_REDIS_URL"])
        assert store.hostname in services
        assert _published(services[store.hostname], store.port or 6379) == "127.0.0.1:6379"
    api_port = int(_env(services["api"])["PORT"])
    assert _published(services["api"], api_port) == f"127.0.0.1:{api_port}"
