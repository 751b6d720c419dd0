"""Leadership as the rest of the node sees it: waiting for a leader, serving only while current,
moving leadership on request or before a stop, and how long the node went without a leader."""

from __future__ import annotations

import logging

from badkv.errors import BadkvError, BadRequest, NotLeader, Timeout, Unavailable

logger = logging.getLogger(__name__)

# How long a leader that got SIGTERM keeps trying to hand over: within gunicorn's graceful timeout (4 s,
# badkv/http/serving.py), which must also leave time for the requests in flight to finish.
HAND_OVER_SECONDS = 3.0


class Leadership:
    """The leadership side of ``node``; the waits run on the applier's condition (the node lock)."""

    def __init__(self, node):
        self.node = node
        self.leaderless_since: float | None = node.monotonic()  # None while a leader is known
        self.leaderless_seconds = 0.0  # time without a known leader, before leaderless_since
        self.known_leader: str | None = None  # the leader last passed to leader_changed

    def leader_changed(self, now: str | None) -> None:
        """(Lock held.) Keep the time without a leader, and say who leads."""
        node = self.node
        moment = node.monotonic()
        self.known_leader = now
        if now is None and self.leaderless_since is None:
            self.leaderless_since = moment
        elif now is not None and self.leaderless_since is not None:
            self.leaderless_seconds += moment - self.leaderless_since
            self.leaderless_since = None
        if now is not None:
            logger.info("%s: %s leads term %d", node.name, "this node" if now == node.name else now,
                        node.core.current_term)

    def wait_until_serving(self, timeout: float) -> None:
        """(Lock held.) Return once this node leads and has applied its term's no-op, so its state is
        current; raise NotLeader if it does not lead (or is handing over), Unavailable on a failed disk
        or if the no-op does not apply within ``timeout``."""
        node = self.node
        core, store = node.core, node.store
        node.applier.changed.wait_for(lambda: not core.is_leader or core.transferring or node.stopping.is_set()
                                      or store.applied_index >= core.term_start_index, timeout=timeout)
        if node.storage_error is not None:
            raise Unavailable(f"this node's storage failed: {node.storage_error}", retry_after=5)
        if not core.is_leader or core.transferring:
            raise NotLeader("this node is not the leader", leader=core.leader)
        if store.applied_index < core.term_start_index:
            raise Unavailable("the leader is still applying its log at the start of its term", retry_after=1)

    def wait_for_leader(self, timeout: float, *, other_than: set | frozenset = frozenset()) -> str | None:
        """The leader this node knows of, waiting up to ``timeout`` for one (other than ``other_than``)."""
        node = self.node
        with node.lock:
            node.applier.changed.wait_for(lambda: node.core.leader is not None and node.core.leader not in other_than
                                          or node.stopping.is_set(), timeout=timeout)
            leader = node.core.leader
        return None if leader in other_than else leader

    def wait_for_leader_in_term(self, timeout: float, refused: set | frozenset) -> tuple[str, int] | None:
        """The leader and its term, waiting up to ``timeout`` for one not in ``refused`` ((leader, term)
        pairs): a node that refused a request in one term may lead again in a later one."""
        node = self.node
        core = node.core
        with node.lock:
            node.applier.changed.wait_for(lambda: core.leader is not None and (core.leader, core.current_term)
                                          not in refused or node.stopping.is_set(), timeout=timeout)
            found = (core.leader, core.current_term)
        return None if found[0] is None or found in refused else found

    def transfer(self, to: str | None, timeout: float) -> str:
        """Hand leadership to ``to`` (None: the most caught-up follower) and wait until another node leads;
        returns it. Raises BadRequest, NotLeader, or Timeout if it did not happen in time."""
        node = self.node
        if to == node.name and node.core.is_leader:
            return node.name
        chosen = []
        try:
            node.advance(lambda: chosen.append(node.core.transfer_leadership(to)))
        except ValueError as error:
            if not node.core.is_leader:
                raise NotLeader(str(error), leader=node.core.leader) from None
            raise BadRequest(str(error)) from None
        new_leader = self.wait_for_leader(timeout, other_than={node.name})
        if new_leader is None:
            raise Timeout(f"leadership did not move to {chosen[0]} within {timeout:g}s")
        return new_leader

    def hand_over(self) -> None:
        """Before this node stops: if it leads, move leadership to the most caught-up follower, so the
        cluster does not wait for an election timeout to notice. One try may time out (the follower it
        picked had just restarted, or a disk stalled: seen in rolling restarts); it tries again, with the
        then most caught-up follower, for up to ``HAND_OVER_SECONDS``."""
        node = self.node
        deadline = node.monotonic() + HAND_OVER_SECONDS
        while node.core.is_leader and node.core.voter_peers:
            remaining = deadline - node.monotonic()
            try:
                new_leader = self.transfer(None, timeout=min(2 * node.config.election_timeout, remaining))
                logger.info("%s: handed leadership to %s before stopping", node.name, new_leader)
                return
            except Timeout as error:
                if deadline - node.monotonic() <= 0:
                    logger.warning("%s: could not hand leadership over before stopping: %s", node.name, error)
                    return
                logger.info("%s: %s; trying again", node.name, error)
            except BadkvError as error:
                logger.warning("%s: could not hand leadership over before stopping: %s", node.name, error)
                return

    def seconds_without_leader(self) -> float:
        """How long this node has known no leader since it started, in all."""
        with self.node.lock:
            since = self.leaderless_since
            return self.leaderless_seconds + (self.node.monotonic() - since if since is not None else 0.0)
