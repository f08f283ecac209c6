"""Webhooks: signed, retried, and never able to change a job's outcome."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from genblaze_s3.ingest.notify import SIGNATURE_HEADER, send_webhook, verify_signature


class _Receiver(BaseHTTPRequestHandler):
    fail_first = 0
    seen: list[tuple[bytes, str]] = []

    def log_message(self, *a: object) -> None:
        pass

    hosts: list[str] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append((body, self.headers.get(SIGNATURE_HEADER, "")))
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


def test_webhook_is_signed_and_retried(receiver: tuple[str, type[_Receiver]]) -> None:
    url, handler = receiver
    body = b'{"job_id":"j","state":"succeeded"}'
    assert send_webhook(url, body, secret="shh", sleep=lambda s: None)
    assert len(handler.seen) == 3
    got, sig = handler.seen[-1]
    assert got == body and verify_signature(body, "shh", sig)


def test_dead_receiver_gives_up_quietly() -> None:
    assert (
        send_webhook(
            "http://127.0.0.1:1/none",
            b"{}",
            secret=None,
            attempts=2,
            sleep=lambda s: None,
            timeout=0.5,
        )
        is False
    )


def test_blocked_webhook_url_is_never_contacted(receiver: tuple[str, type[_Receiver]]) -> None:
    url, handler = receiver

    def refuse(u: str) -> tuple[str, str]:
        raise PermissionError("private address")

    assert send_webhook(url, b"{}", secret="s", pin=refuse, sleep=lambda s: None) is False
    assert handler.seen == []


def test_webhook_resolves_once_and_every_retry_goes_to_the_checked_address(
    receiver: tuple[str, type[_Receiver]],
) -> None:
    """DNS rebinding: the name is resolved once, by the SSRF guard; the retries (two
    503s here) connect to that address, with the name in the Host header."""
    from genblaze_s3.transfer import FetchPolicy
    from genblaze_s3.transfer.fetch import pin_url

    url, handler = receiver
    port = url.split(":")[2].split("/")[0]
    answers = iter([["127.0.0.1"], ["169.254.169.254"]])  # a second answer would be a trap
    calls: list[str] = []

    def resolver(host: str, p: int) -> list[str]:
        calls.append(host)
        return next(answers)

    policy = FetchPolicy(allow_http=True, allow_private_hosts=frozenset({"hooks.test"}))
    ok = send_webhook(
        f"http://hooks.test:{port}/hook",
        b"{}",
        secret="s",
        pin=lambda u: pin_url(u, policy, resolver),
        sleep=lambda s: None,
    )
    assert ok and len(handler.seen) == 3 and calls == ["hooks.test"]
    assert handler.hosts == [f"hooks.test:{port}"] * 3
