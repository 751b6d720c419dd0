"""The consensus core: Raft as a pure, deterministic state machine.

``core.Core`` takes messages (``step``) and ticks (``tick``) and hands back a
``Ready``: what to persist, what to send, what to apply. Disk, network, time
and randomness belong to the caller (``badkv.cluster``); this package imports
only the standard library, so its hardest cases run on the simulated network
of ``badkv.testing.sim`` in milliseconds.

- ``log``: the in-memory log of entries.
- ``messages``: what nodes say to each other, and their wire form.
- ``progress``: the leader's view of each follower, quorums and the in-sync set.
- ``membership``: who votes and who learns, and the one-server-at-a-time rule.
- ``reconfiguration``: config entries, promotion of learners, removal.
- ``core``: roles, the step and tick rules, and ``Ready``.
"""
