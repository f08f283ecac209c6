"""Clients of a job: the job handle (through the store or over HTTP) and the HTTP API
clients with their typed error tree.

What lives here: ``handle`` (JobHandle / job_handle), ``http`` (IngestClient,
AsyncIngestClient, the typed API errors). It may import ``ingest`` models/errors and the
``store`` room; httpx is imported only by ``http``.
"""
