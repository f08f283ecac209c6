"""The Celery app and its settings: each one named, each with the reason it is set.

Jobs are long (a multi-GB copy) but no delivery is: a copy runs in bounded slices
(GENBLAZE_SLICE_SECONDS) and hands on a continuation, and steps are idempotent
(leases + checkpoints). So the settings favour "run again" over "lose": acknowledge
late, re-queue on worker death, take one task at a time, and keep the Redis
visibility timeout short, so a dead host's message is back within minutes; a
redelivered duplicate of a delivery still running finds the lease held and stops.
"""

from __future__ import annotations

import logging

from celery import Celery

from genblaze_s3.runtime import check_worker_settings
from genblaze_s3.settings import TASK_TIME_LIMIT, Settings, SettingsError, load_settings

logger = logging.getLogger("genblaze_s3.workers")

# TASK_TIME_LIMIT (6 h, from settings): the hard kill. Only a copy that cannot be sliced
# (a source without a length or a validator, a CAS spool) runs long in one delivery;
# 6 h means stuck, not slow.
TASK_SOFT_TIME_LIMIT = TASK_TIME_LIMIT - 300  # lets the task checkpoint/abort before the kill


def worker_settings() -> Settings:
    """The worker's environment, read once: the Celery app is the worker's entry point.

    A bad value stops the worker before it connects anywhere (SystemExit, naming the
    variable): a worker that started would fail every copy instead. CopyConfig's own
    cross-field checks run here too, for the same reason.
    """
    try:
        config = load_settings()
        # A malformed tenants file, copy override or signing key would fail every job.
        check_worker_settings(config)
    except SettingsError as exc:
        logger.critical("invalid worker setting: %s", exc)
        raise SystemExit(f"genblaze worker: invalid setting: {exc}") from exc
    return config


CONFIG = worker_settings()


if CONFIG.log_format == "json":
    from celery.signals import setup_logging

    from genblaze_s3.logs import configure_logging

    @setup_logging.connect
    def _json_logging(loglevel: object = None, **_: object) -> None:
        """GENBLAZE_LOG_FORMAT=json: Celery's own lines and ours, one object per line
        (connecting this signal is how Celery is told not to configure logging)."""
        level = loglevel if isinstance(loglevel, str) else logging.getLevelName(loglevel or 20)
        configure_logging("json", str(level))


KOMBU_UNACKED_MUTEX_EXPIRE = 300  # kombu's own default: never lengthen it


def transport_options(config: Settings) -> dict[str, int]:
    """The Redis broker's redelivery knobs (kombu ignores them on RabbitMQ).

    - ``visibility_timeout``: an unacked message comes back after this.
    - ``unacked_restore_interval``: how often a worker sweeps for such messages; on a
      Redis broker the only way the task of a worker killed as a whole comes back.
    - ``unacked_restore_throttle`` 1: every sweep scans (the interval alone sets the pace).
    - ``unacked_mutex_expire``: the sweep runs under a Redis lock that a worker killed
      mid-sweep never releases. kombu's default expiry (300 s) then stops every sweep
      in the fleet for 5 minutes, longer than the visibility timeout it serves (found
      by tests/integration/test_faults_worker.py's whole-worker kill in CI). A sweep
      takes milliseconds; bounding the lock by the visibility timeout keeps "a dead
      host's message is back within about two visibility timeouts" true.
    """
    return {
        "visibility_timeout": config.visibility_timeout,
        "unacked_restore_interval": config.unacked_restore_interval,
        "unacked_restore_throttle": 1,
        "unacked_mutex_expire": min(config.visibility_timeout, KOMBU_UNACKED_MUTEX_EXPIRE),
    }


SETTINGS: dict[str, object] = {
    # Ack after the task ends: a worker that dies mid-copy leaves the message for another.
    "task_acks_late": True,
    # ...and also when the pool child is killed (SIGKILL, OOM): re-queue instead of ack.
    "task_reject_on_worker_lost": True,
    # One message per process: a long copy must not hold other tasks hostage.
    "worker_prefetch_multiplier": 1,
    # Redis broker: unacked messages come back after GENBLAZE_VISIBILITY_TIMEOUT (120 s).
    # Deliveries are bounded by the slice; a longer, unsliceable copy is redelivered
    # meanwhile and the duplicate backs off on the lease (settings.py says why).
    # The restore sweep and its lock: transport_options says why each is set.
    "broker_transport_options": transport_options(CONFIG),
    "task_time_limit": TASK_TIME_LIMIT,
    "task_soft_time_limit": TASK_SOFT_TIME_LIMIT,
    # If the broker connection drops, the unacked task will be redelivered: stop ours
    # (the lease then makes any overlap harmless).
    "worker_cancel_long_running_tasks_on_connection_loss": True,
    # Celery's consumer plus one fix: the main process survives Redis dying mid-task
    # (kombu 5.7 re-closes a collected channel; root cause in workers/consumer.py).
    "worker_consumer": "workers.consumer:Consumer",
    # Status lives in the StatusStore; Celery results would be a second, stale truth.
    "task_ignore_result": True,
    "result_backend": None,
    # JSON only: no pickle from the broker (a broker write must not become code execution).
    "task_serializer": "json",
    "accept_content": ["json"],
    # Tasks sent without a queue (finalize from a worker) stay on the ingest queue.
    "task_default_queue": CONFIG.queue,
    # Keep retrying the broker at startup instead of crashing the worker on a slow Redis.
    "broker_connection_retry_on_startup": True,
    # Memory hygiene for long-lived pool children copying large files.
    "worker_max_tasks_per_child": 200,
    # Warm shutdown waits for running tasks; nothing is lost on redeploy.
    "worker_hijack_root_logger": False,
    # Task events on (as `celery worker -E`): Flower and `celery events` show each copy,
    # and a copy that failed for good shows as FAILURE there. The StatusStore stays
    # the truth for job state; events are for the people watching the fleet.
    "worker_send_task_events": True,
    "task_send_sent_event": True,
}


def create_app(config: Settings) -> Celery:
    """The Celery app on the configured broker, with SETTINGS applied."""
    app = Celery(
        "genblaze",
        broker=config.effective_broker_url,
        include=[
            "workers.tasks",
            "workers.warmup",
            "workers.sweeping",
            "workers.placement",
            "workers.heartbeat",
        ],
    )
    app.conf.update(SETTINGS)
    return app


app = create_app(CONFIG)
