"""The SSRF table through the queue: real API, real workers, strict fetch policy.

The workers here run with the *production* guard: only `127.0.0.2` (a test
redirect server standing in for a public CDN) is opened; 127.0.0.1, ::1 and
every other private / metadata address are refused. A recording listener on
127.0.0.1 and ::1 proves that no vector, direct or via redirect, ever caused a
connection. Each URL either is refused at submit (422) or fails its job with
`url_blocked` / `invalid_url`; then the shared invariants run on every job.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from genblaze_s3.local.services import SeaweedS3
from tests.support.invariants import Services, assert_invariants, wait_terminal
from tests.support.workers import QueueStack, StartStack

PUBLIC = "127.0.0.2"  # the one host the workers may reach: plays a public CDN
REFUSED_CODES = {"url_blocked", "invalid_url"}


class Recorder:
    """Listening sockets on 127.0.0.1 and ::1 (same port) that count connections."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self._socks: list[socket.socket] = []
        v4 = socket.socket()
        v4.bind(("127.0.0.1", 0))
        self.port = v4.getsockname()[1]
        self._socks.append(v4)
        with contextlib.suppress(OSError):
            v6 = socket.socket(socket.AF_INET6)
            v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            v6.bind(("::1", self.port))
            self._socks.append(v6)
        self._stop = threading.Event()
        self._threads = []
        for s in self._socks:
            s.listen(16)
            s.settimeout(0.1)
            t = threading.Thread(target=self._run, args=(s,), daemon=True)
            t.start()
            self._threads.append(t)

    def _run(self, s: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                conn, addr = s.accept()
            except OSError:
                continue
            self.hits.append(str(addr))
            conn.close()

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(2)
        for s in self._socks:
            s.close()


class _Trampoline(BaseHTTPRequestHandler):
    """/r?to=URL -> 302 URL; /hop?n=K -> K self-redirects then 200; /ok -> 200."""

    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        q = parse_qs(parts.query)
        self.server.seen.append(self.path)
        if parts.path == "/r":
            self._reply(302, b"", {"Location": q["to"][0]})
        elif parts.path == "/hop":
            n = int(q["n"][0])
            if n > 0:
                self._reply(302, b"", {"Location": f"/hop?n={n - 1}"})
            else:
                self._reply(200, b"x" * 100)
        elif parts.path == "/ok":
            self._reply(200, b"y" * 100)
        else:
            self._reply(404, b"")

    def _reply(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Trampoline:
    def __init__(self, tls_cert: tuple[Path, Path] | None = None) -> None:
        self.server = ThreadingHTTPServer((PUBLIC, 0), _Trampoline)
        self.server.daemon_threads = True
        self.server.seen = []  # type: ignore[attr-defined]
        scheme = "http"
        if tls_cert is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls_cert)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.base = f"{scheme}://{PUBLIC}:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def seen(self) -> list[str]:
        return list(self.server.seen)  # type: ignore[attr-defined]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def _cert_for(ip: str, directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for an IP address (the https trampoline)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ssrf-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    c, k = directory / "cert.pem", directory / "key.pem"
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return c, k


@pytest.fixture(scope="module")
def ssrf_env(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Recorder, Trampoline, Trampoline]]:
    rec = Recorder()
    cert = _cert_for(PUBLIC, tmp_path_factory.mktemp("ssrf-cert"))
    plain, tls = Trampoline(), Trampoline(cert)
    tls.ca = str(cert[0])  # type: ignore[attr-defined]
    try:
        yield rec, plain, tls
    finally:
        plain.close()
        tls.close()
        rec.close()


@pytest.fixture(scope="module")
def ssrf_stack(
    start_module_stack: StartStack, ssrf_env: tuple[Recorder, Trampoline, Trampoline]
) -> QueueStack:
    _, _, tls = ssrf_env
    return start_module_stack(
        queue="genblaze-ssrf",
        n_workers=1,
        concurrency=4,
        extra_env={
            "GENBLAZE_ALLOW_PRIVATE_HOSTS": PUBLIC,
            "GENBLAZE_ALLOW_HTTP": "1",
            "GENBLAZE_CA_BUNDLE": tls.ca,  # type: ignore[attr-defined]
            "GENBLAZE_MAX_RETRIES": "0",
        },
    )


def _vectors(p: int) -> dict[str, str]:
    """Direct SSRF vectors; `p` is the recording port on 127.0.0.1 / ::1."""
    return {
        "decimal": f"http://2130706433:{p}/a",
        "hex_short": f"http://0x7f.1:{p}/a",
        "octal": f"http://0177.0.0.1:{p}/a",
        "short": f"http://127.1:{p}/a",
        "loopback": f"http://127.0.0.1:{p}/a",
        "unspecified": f"http://0.0.0.0:{p}/a",
        "v6_loopback": f"http://[::1]:{p}/a",
        "v4_mapped": f"http://[::ffff:127.0.0.1]:{p}/a",
        "nat64_metadata": "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
        "metadata": "http://169.254.169.254/latest/meta-data/",
        "metadata_v6": "http://[fd00:ec2::254]/latest/meta-data/",
        "rfc1918_10": "http://10.0.0.1/a",
        "rfc1918_172": "http://172.16.0.1/a",
        "rfc1918_192": "http://192.168.0.1/a",
        "cgnat": "http://100.64.0.1/a",
        "localhost_dot": f"http://localhost.:{p}/a",
        "sub_localhost": f"http://x.localhost:{p}/a",
        "userinfo": f"http://cdn@127.0.0.1:{p}/a",
        "userinfo_public": f"http://cdn@{PUBLIC}/ok",
        "fragment_at": f"http://127.0.0.1:{p}#@{PUBLIC}/ok",
        "control_char": f"http://{PUBLIC}/o\r\nk",
        "space": f"http://{PUBLIC}/o k",
        "huge_url": f"http://{PUBLIC}/ok?" + "a" * 100_000,
        "file": "file:///etc/passwd",
        "gopher": f"gopher://127.0.0.1:{p}/_INFO",
        "ftp": f"ftp://127.0.0.1:{p}/a",
        "dict": f"dict://127.0.0.1:{p}/info",
    }


def _submit(stack: QueueStack, seaweed: SeaweedS3, bucket: str, url: str) -> httpx.Response:
    body = {
        "assets": [{"url": url}],
        "destination": {"bucket": bucket, "endpoint_url": seaweed.endpoint_url},
    }
    return httpx.post(
        f"{stack.api_url}/v1/jobs",
        json=body,
        timeout=10,
        headers={"Authorization": f"Bearer {stack.tokens['acme']}"},
    )


def _run_table(
    stack: QueueStack, seaweed: SeaweedS3, bucket: str, s3: Any, urls: dict[str, str]
) -> dict[str, str]:
    """Submit each URL; return name -> outcome ('422' or the asset's error code)."""
    jobs: dict[str, str] = {}
    outcome: dict[str, str] = {}
    for name, url in urls.items():
        r = _submit(stack, seaweed, bucket, url)
        assert r.status_code in (202, 422), (name, r.status_code, r.text[:200])
        if r.status_code == 422:
            outcome[name] = "422"
        else:
            jobs[name] = r.json()["job_id"]
    svc = Services(redis_url=stack.redis_url, s3=s3)
    views = wait_terminal(svc, jobs.values(), timeout=90)
    for name, j in jobs.items():
        v = views[j]
        err = v.assets[0].error
        failed = v.state.value == "failed" and err is not None
        outcome[name] = err.code if failed and err else f"state={v.state.value}"
    assert_invariants(svc, jobs.values())
    return outcome


def test_ssrf_vectors_fail_without_any_connection(
    ssrf_stack: QueueStack,
    ssrf_env: tuple[Recorder, Trampoline, Trampoline],
    seaweed: SeaweedS3,
    bucket: str,
    s3_client: Any,
) -> None:
    stack = ssrf_stack
    rec, plain, _ = ssrf_env
    outcome = _run_table(stack, seaweed, bucket, s3_client, _vectors(rec.port))
    bad = {k: v for k, v in outcome.items() if v != "422" and v not in REFUSED_CODES}
    assert not bad, f"vectors not refused: {bad}"
    assert rec.hits == [], f"blocked addresses were connected to: {rec.hits}"
    assert plain.seen == [], f"URLs with tricks still reached the public host: {plain.seen}"


def test_redirects_to_blocked_targets_are_refused(
    ssrf_stack: QueueStack,
    ssrf_env: tuple[Recorder, Trampoline, Trampoline],
    seaweed: SeaweedS3,
    bucket: str,
    s3_client: Any,
) -> None:
    stack = ssrf_stack
    rec, plain, tls = ssrf_env
    targets = {
        k: v
        for k, v in _vectors(rec.port).items()
        if k not in ("control_char", "space", "huge_url")
    }
    urls = {f"redirect_{k}": f"{plain.base}/r?to={quote(v, safe='')}" for k, v in targets.items()}
    # https -> http downgrade, to a host that is otherwise allowed over http
    urls["downgrade"] = f"{tls.base}/r?to={quote(plain.base + '/ok', safe='')}"
    urls["ten_hops"] = f"{plain.base}/hop?n=10"
    before = len(plain.seen)
    outcome = _run_table(stack, seaweed, bucket, s3_client, urls)
    bad = {k: v for k, v in outcome.items() if v not in REFUSED_CODES}
    assert not bad, f"redirects not refused: {bad}"
    assert rec.hits == [], f"blocked addresses were connected to: {rec.hits}"
    seen = plain.seen[before:]
    assert "/ok" not in seen, "the https->http downgrade was followed"
    hops = [p for p in seen if p.startswith("/hop")]
    assert len(hops) <= 6, f"{len(hops)} redirect hops followed (limit 5)"


def test_allowed_host_still_works_under_the_strict_policy(
    ssrf_stack: QueueStack,
    ssrf_env: tuple[Recorder, Trampoline, Trampoline],
    seaweed: SeaweedS3,
    bucket: str,
    s3_client: Any,
) -> None:
    """Control row: the guard is not simply refusing everything."""
    stack = ssrf_stack
    _, plain, tls = ssrf_env
    svc = Services(redis_url=stack.redis_url, s3=s3_client)
    ids = []
    for url in (f"{plain.base}/ok", f"{tls.base}/hop?n=3"):
        r = _submit(stack, seaweed, bucket, url)
        assert r.status_code == 202, r.text
        ids.append(r.json()["job_id"])
    for view in wait_terminal(svc, ids, timeout=60).values():
        assert view.state.value == "succeeded", view.model_dump_json()
    assert_invariants(svc, ids)
