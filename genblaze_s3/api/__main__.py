"""`python -m genblaze_s3.api > genblaze_s3/api/openapi.json`: print the API's OpenAPI document.

The app is built over a store it never contacts: the document depends on the
routes only (tests/unit/test_api_app.py checks the saved file is current).
"""

from __future__ import annotations

import json

import redis

from genblaze_s3.api.app import create_app
from genblaze_s3.ingest.destinations import DestinationPolicy
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.submit.enqueue import MemorySender
from genblaze_s3.ingest.submit.service import IngestService


def main() -> None:
    store = StatusStore(redis.Redis.from_url("redis://127.0.0.1:1/0"))
    app = create_app(IngestService(store, MemorySender(), "q", DestinationPolicy()), {})
    print(json.dumps(app.openapi(), indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
