"""Load what every task needs once, in the worker's main process, before the pool forks.

Why: a prefork child otherwise imports the copy engine, requests and botocore's
S3 service model on its first task, and again every ``worker_max_tasks_per_child``
tasks when it is replaced. Measured with py-spy on a 500 x 64 KiB job (2 workers x
4 children): imports and botocore's JSON model load were the largest share of the
children's CPU. Forked children share these pages copy-on-write.

Then ``gc.freeze()``: everything loaded so far (boto3's models, Celery, pydantic
schemas: most of the heap) moves to the collector's permanent generation, as the
gc module's documentation advises before a fork. A child's full collections then
walk only what it allocated itself, and never write the reference counts of the
shared pages (which would copy them).
"""

from __future__ import annotations

import gc
import logging

from celery.signals import worker_init

logger = logging.getLogger("genblaze_s3.workers")


def warm() -> None:
    """Import the task path and cache botocore's S3 model in boto3's default session."""
    import boto3

    import genblaze_s3.backend
    import genblaze_s3.ingest.worker.asset_copy
    import genblaze_s3.transfer.copy  # noqa: F401 - pulls fetch, hashing, multipart, requests

    # Creating a client makes no request; it loads (and caches) the service model,
    # paginators and endpoint rules that every backend's client will reuse.
    boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="warmup",
        aws_secret_access_key="warmup",
    )
    gc.collect()
    gc.freeze()


@worker_init.connect
def _warm_before_fork(**_: object) -> None:
    try:
        warm()
    except Exception:  # a slower first task is better than a worker that will not start
        logger.exception("worker warm-up failed; continuing cold")
