"""Queue depth and oldest-message age on the real brokers (Redis and RabbitMQ).

Messages are sent the way the API sends them (CelerySender, a stamped header) to a
fresh queue no worker consumes; the probe must count them, tell the head's age,
and leave every message where it was (reading the head is not taking it).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator

import pytest

from genblaze_s3.api.broker import BrokerProbe
from genblaze_s3.ingest.submit.enqueue import INGEST_ASSET, CelerySender
from genblaze_s3.local.services import EmbeddedRedis

AMQP_URL = os.environ.get("GENBLAZE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


@pytest.fixture(params=["redis", "amqp"])
def broker(request: pytest.FixtureRequest, redis_server: EmbeddedRedis) -> Iterator[str]:
    if request.param == "redis":
        yield redis_server.url
        return
    from kombu import Connection

    try:
        with Connection(AMQP_URL, connect_timeout=5) as conn:
            conn.ensure_connection(max_retries=2)
    except Exception as exc:  # fail loudly: this row must run, never skip
        pytest.fail(f"RabbitMQ at {AMQP_URL} is unreachable: {exc!r}")
    yield AMQP_URL


def _drain(url: str, queue: str) -> list[str]:
    """Take every message off `queue`, in order; returns their first task argument
    (with a "*" when RabbitMQ flags the message redelivered)."""
    from kombu import Connection

    got: list[str] = []
    with Connection(url) as conn:
        channel = conn.channel()
        while True:
            msg = channel.basic_get(queue=queue, no_ack=True)
            if msg is None:
                break
            # py-amqp hands raw JSON bytes; kombu's Redis channel a kombu Message.
            raw = getattr(msg, "body", None)
            payload = json.loads(raw) if isinstance(raw, (bytes, str)) else msg.decode()
            info = getattr(msg, "delivery_info", None) or {}
            got.append(str(payload[0][0]) + ("*" if info.get("redelivered") else ""))
        if url.startswith("amqp"):
            channel.queue_delete(queue)
        channel.close()
    return got


def test_depth_and_oldest_age_without_taking_a_message(broker: str) -> None:
    queue = f"fleet-probe-{uuid.uuid4().hex[:8]}"
    sender = CelerySender(broker)
    probe = BrokerProbe(broker, [queue])
    try:
        sender.send(INGEST_ASSET, ["first", "a"], queue)
        sent_first = time.time()
        for i in range(4):
            sender.send(INGEST_ASSET, [f"later-{i}", "a"], queue)
        deadline = time.monotonic() + 10
        while (stats := probe.stats()[0]).depth != 5:
            assert time.monotonic() < deadline, f"depth never reached 5: {stats}"
            time.sleep(0.1)
        assert stats.name == queue
        assert stats.oldest_age_seconds is not None
        assert 0 <= stats.oldest_age_seconds <= time.time() - sent_first + 1.5
        # The head's age grows with time: it is the same (oldest) message each time.
        first_age = stats.oldest_age_seconds
        time.sleep(1.2)
        later = probe.stats()[0]
        assert later.depth == 5 and later.oldest_age_seconds is not None
        assert later.oldest_age_seconds >= first_age + 1
        assert probe.depth() == 5
        # Nothing was taken, and the peeked head is still first. On RabbitMQ the head was
        # read once (reading flags it redelivered: at most once per AMQP_PEEK_SECONDS).
        head = "first*" if broker.startswith("amqp") else "first"
        assert _drain(broker, queue) == [head] + [f"later-{i}" for i in range(4)]
    finally:
        sender.close()


def test_a_silent_broker_gives_no_figure_not_an_error() -> None:
    probe = BrokerProbe("redis://127.0.0.1:9/0", ["q"])
    assert probe.stats()[0].depth is None and probe.depth() is None
    amqp = BrokerProbe("amqp://guest:guest@127.0.0.1:9//", ["q"])
    assert amqp.stats()[0].oldest_age_seconds is None
