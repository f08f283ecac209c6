"""The status store: everything the ingest side keeps in Redis, behind one boundary.

What lives here: ``keys`` (every key, its type and TTL, in one screen), ``status``
(StatusStore, the one truth for job and asset state), ``records`` (compare-and-set of
one asset), ``counters`` and ``stats``, ``document`` and ``listing`` (the job document
and pages, built once), ``leases`` and ``delivery_counts`` (what makes redelivery
harmless), ``checkpoints`` (the copy engine's CheckpointStore on Redis), ``quotas`` (a tenant's
concurrent jobs), ``delivery_state`` (what workers keep beside the records: leases,
counters, the in-flight and finalize-due sets), ``placement`` (the workers' published
tenant placement rules), ``boundary`` (the error mapping), ``fleet`` (worker heartbeats,
the per-minute series, the operators' audit log: the fleet view's reads) and
``sessions`` (the /ui page's server-side sessions).

Every Redis error raised here is mapped to one ``StoreUnavailableError``. It may import
``ingest`` models/errors/transitions, ``transfer`` (for the checkpoint protocol) and
redis; never the submit, worker, finalize or client rooms.
"""
