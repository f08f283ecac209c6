"""Encryption, presigned URLs and URL policy against a real SeaweedFS."""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

import pytest
import requests
from genblaze_core.exceptions import StorageError
from genblaze_core.storage.errors import StorageErrorCode

from genblaze_s3 import Encryption, PresignedURL, S3StorageBackend, URLPolicy, URLPolicyError
from genblaze_s3.local.services import SeaweedS3
from tests.support.helpers import user_backend

MiB = 1024 * 1024


def test_sse_c_is_symmetric_on_every_operation(backend: S3StorageBackend) -> None:
    enc = Encryption.sse_c(secrets.token_bytes(32))
    data = secrets.token_bytes(20 * MiB + 3)  # multipart path
    backend.put("enc.bin", data, encryption=enc)
    backend.put("enc-small", b"tiny secret", encryption=enc)
    assert backend.get("enc.bin", encryption=enc) == data
    meta = backend.head("enc.bin", encryption=enc)
    assert meta is not None and meta.size == len(data)
    assert backend.get_range("enc.bin", offset=10, length=5, encryption=enc) == data[10:15]
    assert b"".join(backend.stream("enc.bin", chunk_size=4 * MiB, encryption=enc)) == data
    backend.copy("enc-small", "enc-copy", encryption=enc)
    assert backend.get("enc-copy", encryption=enc) == b"tiny secret"
    assert backend.exists("enc-small", encryption=enc)


def test_sse_c_object_without_key_fails_typed(backend: S3StorageBackend) -> None:
    enc = Encryption.sse_c(secrets.token_bytes(32))
    backend.put("locked", b"data", encryption=enc)
    with pytest.raises(StorageError):
        backend.get("locked")
    with pytest.raises(StorageError) as exc:
        backend.head("locked")
    assert exc.value.error_code is StorageErrorCode.ENCRYPTION_REQUIRED
    assert backend.exists("locked")  # it exists, it is just encrypted
    wrong = Encryption.sse_c(secrets.token_bytes(32))
    with pytest.raises(StorageError):
        backend.get("locked", encryption=wrong)


def test_sse_c_key_never_in_repr_logs_or_errors(
    backend: S3StorageBackend, caplog: pytest.LogCaptureFixture
) -> None:
    raw = secrets.token_bytes(32)
    enc = Encryption.sse_c(raw)
    forms = enc.secrets()
    caplog.set_level(logging.DEBUG)
    backend.put("k", b"payload", encryption=enc)
    backend.get("k", encryption=enc)
    backend.head("k", encryption=enc)
    backend.copy("k", "k2", encryption=enc)
    with pytest.raises(StorageError) as exc:
        backend.get("missing", encryption=enc)
    text = caplog.text + repr(enc) + str(enc) + str(exc.value) + repr(exc.value)
    assert "x-amz-server-side-encryption-customer-key" in caplog.text.lower()  # logs were on
    for form in forms:
        assert form not in text


def test_sse_s3_round_trip(backend: S3StorageBackend, s3_client: Any) -> None:
    enc = Encryption.sse_s3()
    backend.put("s3enc", b"abc", encryption=enc)
    assert backend.get("s3enc", encryption=enc) == b"abc"
    head = s3_client.head_object(Bucket=backend.bucket, Key="s3enc")
    assert head["ServerSideEncryption"] == "AES256"
    backend.copy("s3enc", "s3enc2", encryption=enc)
    assert s3_client.head_object(Bucket=backend.bucket, Key="s3enc2")["ServerSideEncryption"] == (
        "AES256"
    )


def test_presigned_get_and_put_work_with_plain_http_and_are_sigv4(
    backend: S3StorageBackend,
) -> None:
    backend.put("doc.txt", b"presigned body")
    get = backend.presigned_get("doc.txt", expires_in=300)
    assert isinstance(get, PresignedURL)
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in get.url
    assert "AWSAccessKeyId=" not in get.url and "&Signature=" not in get.url
    assert requests.get(get.url, timeout=10).content == b"presigned body"
    assert requests.get(backend.presigned_get_url("doc.txt"), timeout=10).status_code == 200

    put = backend.presigned_put("up.png", expires_in=300, content_type="image/png")
    ok = requests.put(put.url, data=b"\x89PNG", headers={"Content-Type": "image/png"}, timeout=10)
    assert ok.status_code == 200
    assert backend.get("up.png") == b"\x89PNG"
    assert backend.head("up.png").content_type == "image/png"  # type: ignore[union-attr]
    url = backend.presigned_put_url("up2.bin")
    assert requests.put(url, data=b"raw", timeout=10).status_code == 200
    assert backend.get("up2.bin") == b"raw"


def test_tampered_or_expired_presigned_urls_are_refused(backend: S3StorageBackend) -> None:
    backend.put("t.txt", b"x")
    url = backend.presigned_get_url("t.txt")
    assert requests.get(url.replace("t.txt", "other.txt"), timeout=10).status_code == 403
    short = backend.presigned_get_url("t.txt", expires_in=1)
    time.sleep(2.5)
    assert requests.get(short, timeout=10).status_code == 403


def test_presigned_url_redacts_in_repr_str_and_fstring(backend: S3StorageBackend) -> None:
    p = backend.presigned_get("k")
    signature = p.url.split("X-Amz-Signature=")[1].split("&")[0]
    for text in (repr(p), str(p), f"{p}", "{}".format(p), "%s" % (p,)):  # noqa: UP031, UP032
        assert signature not in text
        assert backend.client._request_signer._credentials.access_key not in text
        assert "redacted" in text


def test_get_url_policies(seaweed: SeaweedS3, bucket: str) -> None:
    private = user_backend(seaweed, bucket)
    private.put("pic.png", b"img")
    auto = private.get_url("pic.png")
    assert "X-Amz-Signature=" in auto
    assert requests.get(auto, timeout=10).content == b"img"
    with pytest.raises(URLPolicyError):
        private.get_url("pic.png", policy=URLPolicy.PUBLIC)

    public = user_backend(seaweed, bucket, public_url_base="https://cdn.example.com/media/")
    assert public.public_url_base == "https://cdn.example.com/media"
    assert public.get_url("a b.png") == "https://cdn.example.com/media/a%20b.png"
    assert public.get_url("pic.png", expires_in=60) == "https://cdn.example.com/media/pic.png"
    assert public.get_url("pic.png", policy=URLPolicy.PUBLIC).startswith("https://cdn.")
    with pytest.raises(URLPolicyError):
        public.get_url("pic.png", policy=URLPolicy.PUBLIC, expires_in=60)
    forced = public.get_url("pic.png", policy=URLPolicy.PRESIGNED, expires_in=900)
    assert "X-Amz-Expires=900" in forced
    assert requests.get(forced, timeout=10).content == b"img"


def test_durable_url_round_trips_without_network(seaweed: SeaweedS3, bucket: str) -> None:
    b = user_backend(seaweed, bucket)
    calls: list[str] = []
    b.client.meta.events.register("before-send", lambda **kw: calls.append("sent"))
    url = b.get_durable_url("runs/a b/c.json")
    assert url == f"{seaweed.endpoint_url}/{bucket}/runs/a%20b/c.json"
    assert "X-Amz" not in url
    assert b.key_from_url(url) == "runs/a b/c.json"
    assert b.key_from_url(f"{seaweed.endpoint_url}/other-bucket/x") is None
    assert b.key_from_url("https://elsewhere.example.com/" + bucket + "/x") is None
    assert b.key_from_url("not a url") is None
    assert calls == []
    pub = user_backend(seaweed, bucket, public_url_base="https://cdn.example.com")
    assert pub.key_from_url(pub.get_durable_url("x/y.png")) == "x/y.png"
    assert pub.key_from_url(url) == "runs/a b/c.json"
