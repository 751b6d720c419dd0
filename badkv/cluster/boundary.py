"""The cluster's boundary: who may make peer calls to this node, and what this node's own calls carry.

A call is admitted when it names this cluster, a member other than this node, a
valid fresh signature (with a cluster secret), an instance that is not a second
process under a known name, and the data dir the member was first heard with
(``badkv/security/data_ids.py``); otherwise it is refused before any view touches the
core, so nothing changes. Every refusal is logged, at most once per reason and
caller every few seconds, so a flood of bad calls cannot flood the log.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Callable, Mapping

from badkv.config import Config
from badkv.errors import BadkvError, DataDirChanged, DuplicateMember, NotAMember, Unauthenticated, WrongCluster
from badkv.security.data_ids import DATA_DIR_CHANGED, DATA_ID, DataIds
from badkv.security.instances import InstanceTracker
from badkv.security.peer_auth import CLUSTER, DUPLICATE, INSTANCE, SENDER, SignatureError, Signer, Verifier

logger = logging.getLogger(__name__)

LOG_EVERY_SECONDS = 5.0


class LogLimiter:
    """Says whether a line with a given key may be logged now, and how many were held back since."""

    def __init__(self, clock: Callable[[], float], interval: float = LOG_EVERY_SECONDS):
        self.clock = clock
        self.interval = interval
        self.last: dict[tuple, tuple[float, int]] = {}
        self.lock = threading.Lock()

    def allow(self, key: tuple) -> tuple[bool, int]:
        now = self.clock()
        with self.lock:
            when, held = self.last.get(key, (float("-inf"), 0))
            if now - when < self.interval:
                self.last[key] = (when, held + 1)
                return False, 0
            if len(self.last) > 10_000:  # keys include caller addresses: keep the table bounded
                self.last.clear()
            self.last[key] = (now, 0)
            return True, held


class PeerBoundary:
    """Admits or refuses the peer calls one node receives; signs the ones it sends."""

    def __init__(self, config: Config, secret: bytes | None, *, instance: str, data_id: str | None = None,
                 data_ids: DataIds | None = None,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic):
        self.name = config.name
        self.cluster_id = config.cluster_id
        self.members = frozenset(name for name, _ in config.cluster)
        self.instance = instance
        self.own_data = {DATA_ID: data_id} if data_id else {}  # named in every call and answer
        self.data_ids = data_ids or DataIds({}, lambda known: None)
        self.open = not secret and not config.cert_file
        self.signer = Signer(secret, cluster=config.cluster_id, sender=config.name, instance=instance, clock=clock)
        self.verifier = Verifier(secret, receiver=config.name, clock=clock) if secret else None
        self.instances = InstanceTracker(config.name, instance, clock=monotonic)
        self.instances_lock = threading.Lock()
        self.log_limit = LogLimiter(monotonic)

    def warn_if_open(self) -> None:
        if self.open:
            logger.warning("%s: the peer API (/cluster/v1) is open to anyone who can reach this port: start every "
                           "member with -cluster-secret-file (or BADKV_CLUSTER_SECRET) or with TLS", self.name)

    def set_members(self, names: frozenset) -> None:
        """The membership changed: admit exactly these senders (voters, learners, members being removed)."""
        self.members = frozenset(names)
        self.data_ids.keep_only(self.members)

    # ---- the receiving side -----------------------------------------------------------
    def admit(self, method: str, path: str, body, headers: Mapping[str, str], remote: str) -> None:
        """Return if the call may go on; else log and raise the error to answer with. ``body`` is the body, or
        a function that reads it: it is read only once the call names this cluster and a member, so that
        nobody else can make the node take in a large body."""
        sender = headers.get(SENDER, "")
        try:
            self._check(method, path, body, headers, sender, remote)
        except BadkvError as error:
            self._log_refusal(error, sender, remote, getattr(error, "reason", error.message))
            raise

    def _check(self, method, path, body, headers, sender: str, remote: str) -> None:
        cluster = headers.get(CLUSTER)
        if cluster != self.cluster_id:
            raise WrongCluster(f"this node is in cluster {self.cluster_id}; the call names "
                               f"{'no cluster' if cluster is None else 'cluster ' + repr(cluster)}")
        if sender not in self.members:
            raise NotAMember(f"{'the call names no sender' if not sender else repr(sender) + ' is not'} a member "
                             f"of cluster {self.cluster_id} (members: {', '.join(sorted(self.members))})")
        if self.verifier is not None:
            try:
                self.verifier.verify(method, path, body() if callable(body) else body, headers)
            except SignatureError as error:
                refusal = Unauthenticated("this peer call is not signed with this cluster's secret, or its "
                                          "signature is stale or used before")
                refusal.reason = error.reason
                raise refusal from None
        with self.instances_lock:
            self.instances.observe(sender, headers.get(INSTANCE, ""), remote)
        self.data_ids.check(sender, headers.get(DATA_ID, ""))
        if headers.get(DUPLICATE) and self.log_limit.allow(("duplicate-reported", sender))[0]:
            logger.error("%s: %s reports another process under this node's name (%s); stop one of them",
                         self.name, sender, headers[DUPLICATE])
        if headers.get(DATA_DIR_CHANGED) and self.log_limit.allow(("data-dir-reported", sender))[0]:
            logger.error("%s: %s knew this node with another data dir (data id %s, this one is %s) and ignores its "
                         "answers: this node's state is not the one its peers count on; remove it "
                         "(DELETE /admin/members/%s) and add it again with a join token", self.name, sender,
                         headers[DATA_DIR_CHANGED], self.own_data.get(DATA_ID), self.name)

    def _log_refusal(self, error: BadkvError, sender: str, remote: str, reason: str) -> None:
        kind = reason.partition(":")[0] if isinstance(error, Unauthenticated) else ""  # missing, bad, expired...
        allowed, held = self.log_limit.allow((error.code, kind, sender, remote.rpartition(":")[0]))
        if not allowed:
            return
        more = f" ({held} more like it since the last line)" if held else ""
        log = logger.error if isinstance(error, (DuplicateMember, DataDirChanged)) else logger.warning
        log("%s: refused a peer call from %s (sender %r): %s: %s%s", self.name, remote, sender or None,
            error.code, reason, more)

    def answer_headers(self) -> dict:
        """What every peer answer carries, so the caller can tell this process from another of this name."""
        return {CLUSTER: self.cluster_id, SENDER: self.name, INSTANCE: self.instance, **self.own_data}

    # ---- the sending side -------------------------------------------------------------
    def headers_for(self, method: str, path: str, body: bytes, receiver: str) -> dict:
        """The headers of a call to ``receiver``; they tell it when another process claims its name."""
        headers = self.signer.headers(method, path, body, receiver)
        headers.update(self.own_data)
        known = self.data_ids.changed(receiver)
        if known:
            headers[DATA_DIR_CHANGED] = known
        with self.instances_lock:
            others = self.instances.others_than_first(receiver)
        if others:
            headers[DUPLICATE] = others
        return headers

    def answer_heard(self, peer: str, headers: Mapping[str, str], address: str) -> bool:
        """Note the instance an answer from ``peer`` came from; log if that shows a second process. False if
        the answer must be ignored: it comes from another data dir than ``peer`` had (its promises are gone)."""
        try:
            self.data_ids.check(peer, headers.get(DATA_ID, ""))
        except DataDirChanged as error:
            if self.log_limit.allow(("data-dir-answer", peer))[0]:
                logger.error("%s: ignoring the answers of %s at %s: %s", self.name, peer, address, error.message)
            return False
        instance = headers.get(INSTANCE)
        if not instance:
            return True
        try:
            with self.instances_lock:
                self.instances.observe(peer, instance, address)
        except DuplicateMember as error:
            if self.log_limit.allow(("duplicate-answer", peer))[0]:
                logger.error("%s: %s", self.name, error.message)
        return True

    def refused_by(self, peer: str, status: int, body: bytes) -> None:
        """Log, as an error, that ``peer`` refused this node's call at its boundary (a 401 or 409)."""
        try:
            answer = json.loads(body)
            code, message = answer["error"], answer["message"]
        except (ValueError, KeyError, TypeError):
            return  # not a boundary refusal (e.g. a proxy's page); the caller reports the status
        if not self.log_limit.allow(("refused-by", peer, code))[0]:
            return
        if code == "duplicate_member":
            logger.error("%s: %s refused this node as a duplicate: %s; another process is running with this "
                         "node's name, stop one of them", self.name, peer, message)
        elif code == "data_dir_changed":
            logger.error("%s: %s refused this node: it knew this node with another data dir (%s); this node's "
                         "state is not the one its peers count on, so it must be removed and added again",
                         self.name, peer, message)
        else:
            logger.error("%s: %s refused this node's peer call (%d %s): %s", self.name, peer, status, code, message)
