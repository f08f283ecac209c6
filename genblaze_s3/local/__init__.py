"""Development services: everything needed to run the product on one machine with only Python.

- `services`: embedded SeaweedFS (`weed mini`, S3 with Object Lock) and Valkey (Redis)
  from pip packages, on free loopback ports;
- `supervisor`: the one process supervisor (spawn in a process group, log file,
  readiness wait, group stop) the demo, the tests and the benchmarks share;
- `stack`: the API and Celery workers, started from the Procfile's lines;
- `media` and `demo`: `genblaze-ingest demo`.

Nothing here is used in production, and nothing outside this package (but the CLI's
`demo` command, the tests and bench/) imports it.
"""
