"""The joining side of ``-join URL -join-token T``: ask a member for this node's place, once.

The answer (cluster id, members, and the cluster secret if one is set) is kept
in the data dir (``join.json``, and the secret in ``cluster.secret``, both
readable by the owner only), so a restart of a joined node starts from what it
was told and never presents its used token again. The node then starts as the
learner the leader already has in its membership and catches up from it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from pathlib import Path

import requests

from badkv.config import Config

logger = logging.getLogger(__name__)

JOIN_FILE = "join.json"
SECRET_FILE = "cluster.secret"
RETRY_SECONDS = 30.0  # a pending change or an election in the cluster: worth waiting for
RETRIED = ("membership_change_pending", "unavailable", "not_leader", "timeout")


class JoinError(Exception):
    """The cluster refused this node, or could not be reached: one line for the operator."""


def joined_config(config: Config, *, post=requests.post, sleep=time.sleep) -> Config:
    """``config`` with the membership, cluster id and secret the cluster gave this node (asked for now, or
    remembered from an earlier start)."""
    folder = None if config.in_memory else Path(config.data_dir)
    saved = folder / JOIN_FILE if folder else None
    if saved is not None and saved.exists():
        answer = json.loads(saved.read_text())
        logger.info("%s: joined cluster %s before (%s); starting from what it said then", config.name,
                    answer["cluster_id"], saved)
    else:
        if not config.join_token:
            raise JoinError("-join needs -join-token (the token 'badkvctl member add' printed)")
        answer = _ask(config, post, sleep)
        if folder is not None:
            _save(folder, answer)
        logger.info("%s: joined cluster %s through %s as a learner; voters %s", config.name, answer["cluster_id"],
                    config.join, ", ".join(answer["voters"]))
    members = {**answer["voters"], **answer["learners"]}
    if members.get(config.name) not in (None, config.listen):
        logger.warning("%s: the cluster reaches this node at %s; it listens on %s", config.name,
                       members[config.name], config.listen)
    secret_file, secret = config.cluster_secret_file, config.cluster_secret
    if not (secret_file or secret):  # (a secret given to this node by hand wins)
        if answer.get("has_secret"):
            secret_file = str(folder / SECRET_FILE)
        elif answer.get("cluster_secret"):  # in memory: nowhere to keep it
            secret = bytes.fromhex(answer["cluster_secret"]).decode()
    changed = dataclasses.replace(config, cluster=tuple(members.items()), learners=tuple(answer["learners"]),
                                  cluster_id=answer["cluster_id"], cluster_secret_file=secret_file,
                                  cluster_secret=secret)
    return changed.validate()


def _ask(config: Config, post, sleep) -> dict:
    url = config.join.rstrip("/") + "/cluster/v1/join"
    tls = {"verify": config.ca_file or True, "cert": (config.cert_file, config.key_file)} if config.cert_file else {}
    body = {"name": config.name, "token": config.join_token, "cluster_id": _claimed_cluster(config),
            "has_secret": bool(config.cluster_secret_file or config.cluster_secret)}  # (then it is not sent)
    deadline = time.monotonic() + RETRY_SECONDS
    while True:
        try:
            response = post(url, json=body, timeout=10, **tls)
        except requests.RequestException as error:
            raise JoinError(f"cannot reach {url}: {error.__class__.__name__}: {error}") from None
        if response.status_code == 200:
            return response.json()
        code, reason = _reason(response)
        if code not in RETRIED or time.monotonic() > deadline:
            raise JoinError(f"{url} refused this node ({response.status_code}): {reason}")
        logger.info("%s: %s answered %d (%s); trying again", config.name, url, response.status_code, reason)
        sleep(1.0)


def _reason(response) -> tuple[str, str]:
    """The error code and a line saying why."""
    try:
        answer = response.json()
        return answer["error"], f"{answer['error']}: {answer['message']}"
    except (ValueError, KeyError, TypeError):
        return "", response.text[:200]


def _claimed_cluster(config: Config) -> str | None:
    """The cluster this node's data dir already belongs to, if any (a node of another cluster is refused)."""
    if config.in_memory:
        return None
    try:
        return json.loads((Path(config.data_dir) / "meta.json").read_text())["cluster_id"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _save(folder: Path, answer: dict) -> None:
    """Keep the answer (the secret in a file of its own), readable by the owner only."""
    folder.mkdir(parents=True, exist_ok=True)
    secret = answer.pop("cluster_secret", None)
    answer["has_secret"] = bool(secret)
    if secret:
        _write_private(folder / SECRET_FILE, bytes.fromhex(secret))
    _write_private(folder / JOIN_FILE, json.dumps(answer).encode())


def _write_private(path: Path, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
