"""Webhooks: Standard Webhooks signatures, retries with one id, SSRF pinning, per tenant."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks import Webhook

from genblaze_s3.ingest.finalize.notify import notify_job
from genblaze_s3.ingest.finalize.webhooks import (
    WebhookVerificationError,
    deliver,
    new_secret,
    sign_headers,
    verify,
)
from genblaze_s3.ingest.models import DestinationSpec, JobMeta
from genblaze_s3.ingest.sealing import SourceSealer
from genblaze_s3.ingest.tenants import TenantRegistry
from genblaze_s3.transfer import FetchPolicy

BODY = b'{"job_id":"j1","state":"succeeded"}'
LOOPBACK = FetchPolicy(allow_http=True, allow_private_hosts=frozenset({"127.0.0.1"}))


class _Receiver(BaseHTTPRequestHandler):
    fail_first = 0
    seen: list[tuple[bytes, dict[str, str]]] = []
    hosts: list[str] = []

    def log_message(self, *a: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append((body, {k.lower(): v for k, v in self.headers.items()}))
        type(self).hosts.append(self.headers.get("Host", ""))
        code = 503 if len(type(self).seen) <= type(self).fail_first else 204
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("R", (_Receiver,), {"seen": [], "hosts": [], "fail_first": 2})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    server.shutdown()
    server.server_close()


def test_retries_keep_one_webhook_id_and_the_upstream_verifier_accepts_them(
    receiver: tuple[str, type[_Receiver]],
) -> None:
    url, handler = receiver
    secret = new_secret()
    assert deliver(url, BODY, secret=secret, policy=LOOPBACK, sleep=lambda s: None)
    assert len(handler.seen) == 3
    assert {h["webhook-id"] for _, h in handler.seen} == {"j1.succeeded"}
    got, headers = handler.seen[-1]
    assert got == BODY
    assert Webhook(secret).verify(got, headers) == {"job_id": "j1", "state": "succeeded"}
    assert verify(got, headers, secret=secret)["state"] == "succeeded"


def test_a_plain_string_secret_is_used_as_its_bytes_by_both_sides() -> None:
    headers = sign_headers(BODY, secret="legacy-secret", msg_id="m")
    assert verify(BODY, headers, secret="legacy-secret")["job_id"] == "j1"
    Webhook(b"legacy-secret").verify(BODY, headers)  # the upstream spelling of the same


@pytest.mark.parametrize(
    "tamper",
    ["body", "secret", "old", "future", "missing", "garbage"],
)
def test_verify_refuses_what_was_not_signed_now_by_this_secret(tamper: str) -> None:
    secret, body = new_secret(), BODY
    now = datetime.now(UTC)
    when = {"old": now - timedelta(minutes=6), "future": now + timedelta(minutes=6)}.get(tamper)
    headers = sign_headers(body, secret=secret, msg_id="m", now=when)
    if tamper == "body":
        body = BODY.replace(b"succeeded", b"failed")
    if tamper == "secret":
        secret = new_secret()  # another tenant's secret cannot forge this tenant's hooks
    if tamper == "missing":
        del headers["webhook-signature"]
    if tamper == "garbage":
        headers["webhook-signature"] = "v1"
    with pytest.raises(WebhookVerificationError):
        verify(body, headers, secret=secret)


def test_dead_receiver_gives_up_quietly() -> None:
    ok = deliver(
        "http://127.0.0.1:1/none",
        BODY,
        secret=None,
        policy=LOOPBACK,
        attempts=2,
        sleep=lambda s: None,
        timeout=0.5,
    )
    assert ok is False


def test_a_loopback_notify_url_is_refused_by_the_default_guard(
    receiver: tuple[str, type[_Receiver]],
) -> None:
    url, handler = receiver
    assert deliver(url, BODY, secret="s", policy=FetchPolicy(), sleep=lambda s: None) is False
    assert handler.seen == []


def test_webhook_resolves_once_and_every_retry_goes_to_the_checked_address(
    receiver: tuple[str, type[_Receiver]],
) -> None:
    """DNS rebinding: the name is resolved once, by the SSRF guard; the retries (two
    503s here) connect to that address, with the name in the Host header."""
    from genblaze_s3.transfer.fetch import pin_url

    url, handler = receiver
    port = url.split(":")[2].split("/")[0]
    answers = iter([["127.0.0.1"], ["169.254.169.254"]])  # a second answer would be a trap
    calls: list[str] = []

    def resolver(host: str, p: int) -> list[str]:
        calls.append(host)
        return next(answers)

    policy = FetchPolicy(allow_http=True, allow_private_hosts=frozenset({"hooks.test"}))
    ok = deliver(
        f"http://hooks.test:{port}/hook",
        BODY,
        secret="s",
        policy=policy,
        pin_url=lambda u: pin_url(u, policy, resolver),
        sleep=lambda s: None,
    )
    assert ok and len(handler.seen) == 3 and calls == ["hooks.test"]
    assert handler.hosts == [f"hooks.test:{port}"] * 3


def test_notify_job_opens_the_sealed_url_and_signs_with_the_tenants_secret(
    receiver: tuple[str, type[_Receiver]],
) -> None:
    from cryptography.fernet import Fernet

    url, handler = receiver
    handler.fail_first = 0
    sealer = SourceSealer(Fernet.generate_key().decode())
    secrets = {"acme": new_secret(), "globex": new_secret()}
    tenants = TenantRegistry.from_mapping(
        {"tenants": {n: {"tokens": [f"tok-{n}"], "webhook_secret": s} for n, s in secrets.items()}}
    )
    meta = JobMeta(
        job_id="j1",
        tenant="acme",
        run_id="r",
        created_at=datetime.now(UTC),
        destination=DestinationSpec(bucket="media"),
        notify_url=sealer.seal(url + "?token=hush"),
        asset_ids=[],
        run_date="2026-12-01",
    )
    assert "hush" not in (meta.notify_url or "")
    assert notify_job(meta, BODY.decode(), tenants=tenants, sealer=sealer, policy=LOOPBACK)
    body, headers = handler.seen[-1]
    verify(body, headers, secret=secrets["acme"])
    with pytest.raises(WebhookVerificationError):
        verify(body, headers, secret=secrets["globex"])


def test_the_readme_receiver_example_works_on_a_real_signature() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = next(b for b in readme.split("```python")[1:] if "def receive" in b)
    code = block.split("```")[0]
    secret = new_secret()
    scope: dict = {}
    exec(code.replace('"whsec_..."', repr(secret)), scope)  # noqa: S102 - our own README
    body = b'{"job_id":"j1","state":"succeeded","manifest":{"key":"m.json"}}'
    headers = sign_headers(body, secret=secret, msg_id="j1.succeeded")
    headers = {k.title(): v for k, v in headers.items()}  # frameworks vary the case
    assert scope["receive"](body, headers) == 204
    assert scope["seen"] == {"j1.succeeded"}
    assert scope["receive"](body + b" ", headers) == 400


def test_a_rotating_tenant_signs_with_both_secrets(
    receiver: tuple[str, type[_Receiver]],
) -> None:
    """`webhook_secret = [new, old]`: receivers still on the old secret keep verifying."""
    url, handler = receiver
    handler.fail_first = 0
    new, old = new_secret(), new_secret()
    tenants = TenantRegistry.from_mapping(
        {"tenants": {"acme": {"tokens": ["t"], "webhook_secret": [new, old]}}}
    )
    assert tenants.get("acme").webhook_secret == new
    meta = JobMeta(
        job_id="j1",
        tenant="acme",
        run_id="r",
        created_at=datetime.now(UTC),
        destination=DestinationSpec(bucket="media"),
        notify_url=url,
        asset_ids=[],
        run_date="2026-12-01",
    )
    assert notify_job(
        meta, BODY.decode(), tenants=tenants, sealer=SourceSealer(None), policy=LOOPBACK
    )
    body, headers = handler.seen[-1]
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (new, old):
        Webhook(secret).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        verify(body, headers, secret=new_secret())
