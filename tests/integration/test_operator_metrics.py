"""/metrics reports the ingest queue's depth on RabbitMQ too (the real broker)."""

from __future__ import annotations

import uuid

from kombu import Connection, Exchange, Producer, Queue

from genblaze_s3.api.broker import BrokerProbe

RABBIT = "amqp://guest:guest@127.0.0.1:5672//"


def test_queue_depth_is_read_from_rabbitmq() -> None:
    name = f"genblaze-depth-{uuid.uuid4().hex[:8]}"  # the broker is shared: a unique queue
    queue = Queue(name, Exchange(""), routing_key=name, durable=False, auto_delete=False)
    with Connection(RABBIT, connect_timeout=5) as conn:
        bound = queue(conn.default_channel)
        bound.declare()
        try:
            producer = Producer(conn.default_channel)
            for i in range(3):
                producer.publish({"n": i}, routing_key=name, exchange="")
            probe = BrokerProbe(RABBIT, [name])
            assert probe.ping() is True
            assert probe.depth() == 3
            # Messages from elsewhere carry no sent-at stamp: no age, never an error.
            assert probe.stats()[0].oldest_age_seconds is None and probe.depth() == 3
        finally:
            bound.delete()
