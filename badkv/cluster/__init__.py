"""One cluster member: the consensus core wired to its store, its disk and its peers.

``node.Node`` is the facade the HTTP layer calls. Behind it, one module per job:

- ``driver``: carries out the core's Readys (persist, apply, send) under the node lock;
- ``writer``: admits a client's write on the leader and waits for its acknowledgement;
- ``reader``: reads at each consistency level (ReadIndex for ``linearizable``);
- ``applier``: applies committed entries, keeps the records of writes in flight, wakes waiters;
- ``replicator``: one thread per peer that carries this node's calls (appends, votes, TimeoutNow);
- ``leadership``: waiting for a leader, serving only while current, moving leadership, time without one;
- ``follower``: the answering side of appends, votes and TimeoutNow;
- ``snapshotter``: snapshots, log compaction, copying the leader's state, backups;
- ``take_sync``: a follower's periodic anti-entropy pull of the leader's take feed;
- ``forwarder``: relaying a client's request to the leader;
- ``transport``: calls to other nodes (msgpack over HTTP);
- ``status``: members, readiness and stats for the admin API;
- ``members``: membership changes, joins, and the peer links (client and replicator) that follow them;
- ``threads``: starting the node's threads, its own loops (tick, prune, take sync), joining them at stop.
"""
