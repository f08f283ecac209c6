"""Which requests the lean small PutObject takes, and that it speaks botocore's model."""

from __future__ import annotations

import hashlib
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from genblaze_s3.backend.client import EXPECT_MIN_BODY
from genblaze_s3.backend.lean import LeanS3, lean_s3_for
from genblaze_s3.backend.lean import operations as lean_requests


def _client(**config: Any) -> Any:
    return boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url="https://s3.example.test",
        aws_access_key_id="ak",
        aws_secret_access_key="sk",
        config=Config(signature_version="s3v4", **config),
    )


def test_every_header_is_the_one_botocore_models() -> None:
    shape = boto3.client("s3", region_name="us-east-1").meta.service_model
    members = shape.operation_model("PutObject").input_shape.members
    for param, header in lean_requests._HEADERS.items():
        serialization = dict(members[param].serialization)
        # The one timestamp is spelled as its model says (`_header_value`): iso8601.
        assert serialization.pop("timestampFormat", "iso8601") == "iso8601"
        assert serialization == {"location": "header", "name": header}


def test_only_path_style_signed_clients_take_it() -> None:
    assert lean_s3_for(_client(s3={"addressing_style": "path"})) is not None
    assert lean_s3_for(_client(s3={"addressing_style": "virtual"})) is None
    assert lean_s3_for(_client()) is None  # auto: may be virtual-hosted
    anonymous = boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url="https://s3.example.test",
        config=Config(signature_version=UNSIGNED, s3={"addressing_style": "path"}),
    )
    assert lean_s3_for(anonymous) is None
    assert lean_s3_for(object()) is None  # a test double: put_object


@pytest.mark.parametrize(
    ("params", "ok"),
    [
        ({"Key": "cas/ab12.png"}, True),
        ({"Key": "p/2026-12-06/run/asset-1.mp4", "ContentType": "video/mp4"}, True),
        ({"Key": "a/../b"}, False),  # a dot segment a normalizer would fold
        ({"Key": "a//b"}, False),
        ({"Key": "./a"}, False),
        ({"Key": "a/b/"}, False),
        ({"Key": "caf\u00e9.png"}, False),
        ({"Key": "a b.png"}, False),
        ({"Key": "k", "Metadata": {"x": "y"}}, False),  # not one of the plain headers
        ({"Key": "k", "SSECustomerKey": "x"}, False),
        ({"Key": "k", "Body": b"x" * EXPECT_MIN_BODY}, False),  # owes 100-continue
        ({"Key": "k", "Body": memoryview(b"x")}, False),
    ],
)
def test_accepts_only_plain_requests(params: dict[str, Any], ok: bool) -> None:
    assert LeanS3.accepts({"Bucket": "b", "Body": b"data", **params}) is ok


def _moto_bucket() -> tuple[Any, LeanS3]:
    """A path-style client on moto with bucket "bkt", and its lean requests."""
    client = boto3.client(
        "s3",
        region_name="us-east-1",
        aws_access_key_id="ak",
        aws_secret_access_key="sk",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    client.create_bucket(Bucket="bkt")
    lean = lean_s3_for(client)
    assert lean is not None
    return client, lean


def test_moto_sees_the_request_through_before_send() -> None:
    with mock_aws():
        client, lean = _moto_bucket()
        data = b"hello" * 100
        answer = lean.put(
            {"Bucket": "bkt", "Key": "x/y.txt", "Body": data, "ContentType": "text/plain"},
            sha256_hex=hashlib.sha256(data).hexdigest(),
        )
        assert answer["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'  # noqa: S324
        got = client.get_object(Bucket="bkt", Key="x/y.txt")
        assert got["Body"].read() == data and got["ContentType"] == "text/plain"
        head = lean.head("bkt", "x/y.txt")
        assert head["ContentLength"] == len(data) and head["ETag"] == answer["ETag"]
        with pytest.raises(ClientError) as missing:
            lean.head("bkt", "x/none.txt")
        assert missing.value.response["Error"]["Code"] == "404"
        with pytest.raises(client.exceptions.NoSuchBucket):
            lean.put(
                {"Bucket": "nope", "Key": "k", "Body": data},
                sha256_hex=hashlib.sha256(data).hexdigest(),
            )


def test_head_or_none_answers_a_missing_key_without_an_error() -> None:
    """An existence check's common answer (404) is None, from the lean path and from
    boto3's alike; a refusal that is not a 404 still raises as boto3 raises it."""
    from botocore.awsrequest import AWSResponse

    from genblaze_s3.backend.lean import head_object_or_none

    with mock_aws():
        client, lean = _moto_bucket()
        client.put_object(Bucket="bkt", Key="here.txt", Body=b"abc")
        assert lean.head_or_none("bkt", "gone.txt") is None
        assert head_object_or_none(client, "bkt", "gone.txt") is None
        assert head_object_or_none(client, "bkt", "a key/with space") is None  # boto3's path
        found = lean.head_or_none("bkt", "here.txt")
        assert found is not None and found["ContentLength"] == 3

        class _Empty:
            def stream(self, **_: Any) -> Any:
                yield b""

        def forbidden(request: Any, **_: Any) -> Any:
            return AWSResponse(request.url, 403, {}, _Empty())

        client.meta.events.register_first("before-send.s3.HeadObject", forbidden)
        with pytest.raises(ClientError) as refused:
            lean.head_or_none("bkt", "here.txt")
        assert refused.value.response["Error"]["Code"] == "403"


def test_a_bucket_in_another_region_sends_the_client_back_to_boto3() -> None:
    """A 301 (or a signature for the wrong region) is botocore's redirector's to follow:
    the request is sent again through boto3, and so is every later one of that client."""
    from botocore.awsrequest import AWSResponse

    with mock_aws():
        client, lean = _moto_bucket()
        lean_requests_seen: list[str] = []

        class _Raw:
            def stream(self, **_: Any) -> Any:
                yield b"<Error><Code>PermanentRedirect</Code><Message>elsewhere</Message></Error>"

        def moved(request: Any, **_: Any) -> Any:
            if "amz-sdk-invocation-id" not in request.headers:  # boto3 sends it, lean does not
                lean_requests_seen.append(request.method)
                headers = {"x-amz-bucket-region": "eu-west-1"}
                return AWSResponse(request.url, 301, headers, _Raw())
            return None  # boto3's own request: moto answers it

        client.meta.events.register_first("before-send.s3.PutObject", moved)
        client.meta.events.register_first("before-send.s3.HeadObject", moved)
        data = b"x" * 100
        digest = hashlib.sha256(data).hexdigest()
        lean.put({"Bucket": "bkt", "Key": "a.txt", "Body": data}, sha256_hex=digest)
        assert lean_requests_seen == ["PUT"]  # the lean one was moved, boto3 stored it
        assert client.get_object(Bucket="bkt", Key="a.txt")["Body"].read() == data
        assert lean.head("bkt", "a.txt")["ContentLength"] == 100
        lean.put({"Bucket": "bkt", "Key": "b.txt", "Body": data}, sha256_hex=digest)
        assert lean_requests_seen == ["PUT"]  # from then on: boto3 only


def test_the_lock_date_is_sent_as_botocore_sends_it() -> None:
    """The retain-until date in the header spelling botocore's serializer gives it."""
    from datetime import UTC, datetime, timedelta, timezone

    seen: list[Any] = []

    def record(request: Any, **_: Any) -> None:
        seen.append(
            {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        )

    for until in (
        datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(2027, 1, 2, 3, 4, 5, 678000, tzinfo=timezone(timedelta(hours=2))),
    ):
        with mock_aws():
            client, lean = _moto_bucket()
            client.create_bucket(Bucket="locked", ObjectLockEnabledForBucket=True)
            client.meta.events.register_first("before-send.s3.PutObject", record)
            params = {
                "Bucket": "locked",
                "Body": b"{}",
                "ObjectLockMode": "GOVERNANCE",
                "ObjectLockRetainUntilDate": until,
                "ChecksumAlgorithm": "SHA256",
            }
            lean.put({**params, "Key": "lean"}, sha256_hex=hashlib.sha256(b"{}").hexdigest())
            client.put_object(**params, Key="boto")
        lean_headers, boto_headers = seen[-2], seen[-1]
        for name in (
            "x-amz-object-lock-mode",
            "x-amz-object-lock-retain-until-date",
            "x-amz-sdk-checksum-algorithm",
        ):
            assert lean_headers[name] == boto_headers[name], name


def test_put_object_retries_what_the_client_would_retry() -> None:
    """Transient refusals (5xx, throttling) are sent again, up to the client's attempts;
    anything else is raised at once."""
    from genblaze_s3.backend.lean import put_object

    def refusal(code: str, status: int) -> ClientError:
        return ClientError(
            {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject"
        )

    with mock_aws():
        client, lean = _moto_bucket()
        data = b"manifest"
        params = {"Bucket": "bkt", "Key": "m.json", "Body": data}
        digest = hashlib.sha256(data).hexdigest()
        answers: list[Any] = [refusal("SlowDown", 503), refusal("InternalError", 500)]
        real_put = lean.put
        waits: list[float] = []

        def flaky(p: dict[str, Any], *, sha256_hex: str) -> dict[str, Any]:
            if answers:
                raise answers.pop(0)
            return real_put(p, sha256_hex=sha256_hex)

        lean.put = flaky  # type: ignore[method-assign]
        put_object(client, dict(params), sha256_hex=digest, sleep=waits.append)
        assert len(waits) == 2 and client.get_object(Bucket="bkt", Key="m.json")["Body"].read()
        answers[:] = [refusal("AccessDenied", 403)]
        with pytest.raises(ClientError):
            put_object(client, dict(params), sha256_hex=digest, sleep=waits.append)
        assert len(waits) == 2  # not retried
        attempts = client.meta.config.retries.get("total_max_attempts", 3)
        answers[:] = [refusal("SlowDown", 503)] * attempts
        with pytest.raises(ClientError):
            put_object(client, dict(params), sha256_hex=digest, sleep=waits.append)
        assert len(waits) == 2 + attempts - 1
        del lean.put
