"""Clients of a job: the job handle (through the store or over HTTP) and the HTTP API
clients with their typed error tree.

What lives here: ``handle`` (JobHandle / job_handle), ``http`` (IngestClient and
AsyncIngestClient, which differ only by their transport call), ``calls`` (each request
built and each answer parsed once, for both; server-sent events), ``errors`` (the typed
API error tree, mapped once from the answers). It may import ``ingest`` models/errors
and the ``store`` room; httpx is imported by ``http``, ``calls`` and ``errors`` only, and
``handle`` reaches them lazily (httpx is the ``queue`` extra).
"""
