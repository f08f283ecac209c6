"""The lean requests' SigV4 signer signs exactly as botocore's S3 signer does."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from genblaze_s3.backend.lean.signing import KnownPayloadSigner

NOW = dt.datetime(2026, 12, 6, 23, 59, 58, tzinfo=dt.UTC)
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


class _BotocoreKnownPayload(S3SigV4Auth):
    """botocore's S3 signer, keeping the caller's X-Amz-Content-SHA256 (the lean path's
    former signer)."""

    def _modify_request_before_signing(self, request: Any) -> None:
        SigV4Auth._modify_request_before_signing(self, request)


def _botocore(
    creds: Credentials, region: str, method: str, url: str, headers: dict[str, str]
) -> dict[str, str]:
    request = AWSRequest(method=method, url=url, headers={**headers, "X-Amz-Content-SHA256": SHA})
    signer = _BotocoreKnownPayload(creds.get_frozen_credentials(), "s3", region)
    import botocore.auth

    real = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = lambda: NOW.replace(tzinfo=None)  # type: ignore[assignment]
    try:
        signer.add_auth(request)
    finally:
        botocore.auth.get_current_datetime = real
    return dict(request.headers.items())


@pytest.mark.parametrize("token", [None, "session-token/with+chars="])
@pytest.mark.parametrize(
    ("method", "endpoint", "path", "headers"),
    [
        (
            "PUT",
            "http://127.0.0.1:8333",
            "/bucket/cas/ab/cd/abcdef.png",
            {
                "User-Agent": "Botocore/1 genblaze-s3",
                "Content-Length": "65536",
                "Content-Type": "image/png",
                "Cache-Control": "public,  max-age=31536000,   immutable",
                "If-None-Match": "*",
                "x-amz-checksum-sha256": "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=",
            },
        ),
        ("HEAD", "https://s3.us-west-004.backblazeb2.com", "/b/run%20x/a~b.json", {}),
        ("PUT", "http://[::1]:9000", "/b/k", {"Content-Length": "0"}),
        ("HEAD", "https://s3.example.test:443", "/b/k", {"User-Agent": "x"}),
    ],
)
def test_headers_and_signature_match_botocore(
    token: str | None, method: str, endpoint: str, path: str, headers: dict[str, str]
) -> None:
    from botocore.auth import _host_from_url

    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    ours = KnownPayloadSigner(creds, "us-west-004", clock=NOW.timestamp).sign(
        method, path, {**headers, "Host": _host_from_url(endpoint)}, SHA
    )
    theirs = _botocore(creds, "us-west-004", method, endpoint + path, headers)
    ours.pop("Host")  # botocore signs the host it derives from the URL; so do we
    assert ours == theirs


def test_the_signing_key_follows_the_day_and_a_rotated_secret() -> None:
    now = [NOW.timestamp()]
    creds = Credentials("AK", "first-secret")
    signer = KnownPayloadSigner(creds, "us-east-1", clock=lambda: now[0])

    def auth() -> str:
        return signer.sign("HEAD", "/b/k", {"Host": "h"}, SHA)["Authorization"]

    def expected() -> str:
        stamp = dt.datetime.fromtimestamp(now[0], dt.UTC)
        return _botocore_at(creds, stamp)

    assert auth() == expected()
    now[0] += 3  # past midnight: a new day, a new key
    assert auth() == expected()
    creds.secret_key = "second-secret"  # rotated in place (refreshable credentials do)
    assert auth() == expected()


def _botocore_at(creds: Credentials, when: dt.datetime) -> str:
    import botocore.auth

    request = AWSRequest(method="HEAD", url="http://h/b/k", headers={"X-Amz-Content-SHA256": SHA})
    real = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = lambda: when.replace(tzinfo=None)  # type: ignore[assignment]
    try:
        _BotocoreKnownPayload(creds.get_frozen_credentials(), "s3", "us-east-1").add_auth(request)
    finally:
        botocore.auth.get_current_datetime = real
    return str(request.headers["Authorization"])
