"""Driving a Node by hand, without its threads: the peers' side of its calls, for tests.

A Node built in a test and never started sends nothing: its calls wait in
each peer's outbox. These helpers answer them as peers would, so a test can
make a node lead, or follow a leader, in a few lines and with no sockets.
"""

from __future__ import annotations

from badkv.consensus.messages import AppendRequest, AppendResponse, VoteRequest, VoteResponse


def answer_votes(node, granted: bool = True) -> int:
    """Answer every vote and pre-vote request in the node's outboxes; returns how many were answered."""
    answered = 0
    for peer, replicator in node.replicators.items():
        while replicator.outbox and isinstance(replicator.outbox[0], VoteRequest):
            request = replicator.outbox.popleft()
            answer = VoteResponse(request.term, granted, request.pre_vote, sender=peer, reply_to=request)
            node.advance(lambda: node.core.step(answer))
            answered += 1
    return answered


def elect(node) -> None:
    """Tick the node until it stands for election, and grant it every pre-vote and vote."""
    for _ in range(10 * node.core.election_ticks):
        if node.core.campaign is not None or node.core.is_leader:
            break
        node.tick()
    while not node.core.is_leader and answer_votes(node):
        pass
    if not node.core.is_leader:
        raise AssertionError(f"{node.name} did not win the election")


def answer_appends(node, rounds: int = 1) -> None:
    """Let every peer take every append in the node's outboxes, ``rounds`` times over."""
    for _ in range(rounds):
        for peer, replicator in node.replicators.items():
            while replicator.outbox:
                request = replicator.outbox.popleft()
                if isinstance(request, AppendRequest):
                    answer = AppendResponse(request.term, True, request.last_index, request.last_index,
                                            sender=peer, reply_to=request)
                    node.advance(lambda: node.core.step(answer))


def hear_from(node, leader: str, term: int = 1) -> None:
    """Give the node an (empty) append from ``leader`` in ``term``, so it knows whom to follow."""
    node.handle_append(AppendRequest(term, leader, 0, 0, [], 0, 1).to_wire())
