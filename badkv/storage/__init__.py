"""A node's storage: everything it keeps on disk, and the in-memory stand-in for ``-in-memory`` nodes.

- ``frames``: the framed-record format every file is made of, and ``CorruptLogError``;
- ``snapshot_files``: snapshot files (also the backup format) and atomic file replacement;
- ``datadir``: a data dir's identity: its LOCK flock and meta.json;
- ``hardstate``: the ``state`` file holding the term and vote;
- ``segments``: the log's segment files;
- ``wal``: ``WriteAheadLog``, the durable log with group commit, built on the modules above;
- ``memory_wal``: ``MemoryWal``, the same interface with nothing on disk;
- ``log_contract``: what both logs return from ``open`` and the bad calls both refuse;
- ``recovery``: loading the store and the log entries at start, and the store's snapshot records;
- ``backup``: downloading a backup from a node and seeding a data dir from one.

Nothing here imports the web framework, the HTTP client or the consensus code.
"""
