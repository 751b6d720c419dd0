"""A small Python client for badkv's HTTP API, used by badkvctl, tests and benchmarks."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterator
from urllib.parse import quote

import requests


MAX_CURSOR = 2 ** 63 - 1  # take from here shows no records, only the node's applied revision


class ClientError(Exception):
    """The server answered with an error (``status`` and ``code`` set) or could not be reached (status 0)."""

    def __init__(self, status: int, code: str, message: str, body: dict | None = None):
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.body = body or {}


@dataclass
class Value:
    value: bytes
    timestamp: int
    revision: int


def _reason(error: requests.RequestException) -> str:
    """The error's class, and for TLS failures the reason too (a wrong CA, host or protocol is worth naming)."""
    text = str(error)
    for marker in ("CERTIFICATE_VERIFY_FAILED", "WRONG_VERSION_NUMBER", "certificate required", "SSLError"):
        if marker in text:
            return f"{error.__class__.__name__}: TLS failed: {text[-240:]}"
    return error.__class__.__name__


class Client:
    """Talks to one node (any node: followers forward writes to the leader)."""

    def __init__(self, endpoint: str = "http://127.0.0.1:10001", timeout: float = 10.0, *,
                 ca_file: str | None = None, cert: str | tuple[str, str] | None = None, token: str | None = None):
        """``ca_file``: verify an https node against this CA (an endpoint without a scheme then means https);
        ``cert``: a client certificate to present, a PEM file or a (certificate, key) pair; ``token``: a
        tenant's or the admin bearer token, for a node with -auth on."""
        scheme = "https://" if ca_file else "http://"
        self.endpoint = endpoint.rstrip("/") if "://" in endpoint else scheme + endpoint.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False
        if ca_file:
            self.session.verify = ca_file
        self.session.cert = cert
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        try:
            response = self.session.request(method, self.endpoint + path, **kwargs)
        except requests.RequestException as error:
            raise ClientError(0, "unreachable", f"{self.endpoint}: {_reason(error)}") from None
        except OSError as error:  # a CA or certificate file that cannot be read
            raise ClientError(0, "unreachable", f"{self.endpoint}: {error}") from None
        if response.status_code >= 400:
            try:
                body = response.json()
                raise ClientError(response.status_code, body.get("error", "error"), body.get("message", ""), body)
            except ValueError:
                raise ClientError(response.status_code, "error", response.text[:200]) from None
        return response

    @staticmethod
    def _key_path(tenant: str, name: str, timestamp: int | None = None) -> str:
        path = f"/api/v1/keys/{quote(tenant, safe='')}/{quote(name, safe='')}"
        return path if timestamp is None else f"{path}/{timestamp}"

    def get(self, tenant: str, name: str, *, consistency: str | None = None, min_revision: int | None = None,
            timeout: float | None = None) -> Value:
        params = {k: v for k, v in (("consistency", consistency), ("min_revision", min_revision),
                                    ("timeout", timeout)) if v is not None}
        response = self._request("GET", self._key_path(tenant, name), params=params)
        return Value(response.content, int(response.headers["X-Badkv-Timestamp"]),
                     int(response.headers["X-Badkv-Revision"]))

    def put(self, tenant: str, name: str, value: bytes, *, timestamp: int | None = None,
            if_match: int | None = None, if_none_match: bool = False, lease: str | int | None = None) -> dict:
        """Write a key; ``lease``: attach it to that lease (deleted when the lease ends)."""
        headers = {"Content-Type": "application/octet-stream"}
        if if_match is not None:
            headers["If-Match"] = f'"{if_match}"'
        if if_none_match:
            headers["If-None-Match"] = "*"
        params = {"lease": str(lease)} if lease is not None else None
        return self._request("POST", self._key_path(tenant, name, timestamp), data=value, headers=headers,
                             params=params).json()

    def delete(self, tenant: str, name: str, *, timestamp: int | None = None, if_match: int | None = None) -> dict:
        headers = {"If-Match": f'"{if_match}"'} if if_match is not None else {}
        return self._request("DELETE", self._key_path(tenant, name, timestamp), headers=headers).json()

    def take(self, since: int = 0, *, limit: int | None = None, tenant: str | None = None,
             prefix: str | None = None, wait: float | None = None) -> dict:
        """One page of the take feed from ``since``; with ``wait``, a watch: the node answers once a matching
        record exists or after ``wait`` seconds."""
        params = {k: v for k, v in (("limit", limit), ("tenant", tenant), ("prefix", prefix), ("wait", wait))
                  if v is not None}
        timeout = self.timeout if wait is None else self.timeout + wait
        return self._request("GET", f"/api/v1/take/{since}", params=params, timeout=timeout).json()

    def watch(self, tenant: str | None = None, *, prefix: str | None = None, cursor: int | None = None,
              wait: float = 30.0, max_backoff: float = 5.0,
              sleep: Callable[[float], None] = time.sleep) -> Iterator[dict]:
        """Yield every record changed at or after ``cursor`` (default: from now on), for ever, each once.

        A node that cannot be reached or answers 5xx is asked again from the same cursor after a pause that
        doubles up to ``max_backoff`` seconds, so a watch goes on across restarts and failovers; another
        refusal (400, 401, 403, 410 ``cursor_expired``) raises ClientError."""
        if cursor is None:
            cursor = self._retrying(lambda: self.take(MAX_CURSOR, limit=1, tenant=tenant), max_backoff,
                                    sleep)["revision"] + 1
        while True:
            page = self._retrying(lambda: self.take(cursor, tenant=tenant, prefix=prefix, wait=wait),
                                  max_backoff, sleep)
            for record in page["records"]:
                yield record
            cursor = max(cursor, page["next"])

    @staticmethod
    def _retrying(call, max_backoff: float, sleep) -> dict:
        pause = min(0.1, max_backoff)
        while True:
            try:
                return call()
            except ClientError as error:
                if error.status not in (0, 429) and error.status < 500:
                    raise
            sleep(pause)
            pause = min(pause * 2, max_backoff)

    def range(self, tenant: str, *, prefix: str | None = None, start: str | None = None, end: str | None = None,
              limit: int | None = None, reverse: bool = False, keys_only: bool = False, count_only: bool = False,
              consistency: str | None = None) -> dict:
        """One page of the tenant's live keys in name order (``next`` starts the next one)."""
        params = {k: v for k, v in (("prefix", prefix), ("start", start), ("end", end), ("limit", limit),
                                    ("consistency", consistency)) if v is not None}
        params.update({k: "true" for k, v in (("reverse", reverse), ("keys_only", keys_only),
                                              ("count_only", count_only)) if v})
        return self._request("GET", f"/api/v1/keys/{quote(tenant, safe='')}", params=params).json()

    def txn(self, tenant: str, body: dict | None = None, *, compare: list | None = None,
            success: list | None = None, failure: list | None = None) -> dict:
        """Run a transaction (``body``, or its three lists); ``{"succeeded", "revision", "results"}``."""
        if body is None:
            body = {part: items for part, items in (("compare", compare), ("success", success),
                                                    ("failure", failure)) if items is not None}
        return self._request("POST", f"/api/v1/txn/{quote(tenant, safe='')}", json=body).json()

    # ---- leases ---------------------------------------------------------------------------------------
    def _lease_path(self, tenant: str, lease: str | int | None = None, tail: str = "") -> str:
        path = f"/api/v1/leases/{quote(tenant, safe='')}"
        return path if lease is None else f"{path}/{quote(str(lease), safe='')}{tail}"

    def lease_grant(self, tenant: str, ttl: int) -> dict:
        """A new lease of ``ttl`` seconds: ``{"id", "ttl"}`` (the id is a string of digits)."""
        return self._request("POST", self._lease_path(tenant), json={"ttl": ttl}).json()

    def lease_keepalive(self, tenant: str, lease: str | int) -> dict:
        """The lease's full TTL again: ``{"id", "ttl", "remaining"}``; ClientError 404 once it has ended."""
        return self._request("POST", self._lease_path(tenant, lease, "/keepalive")).json()

    def lease_revoke(self, tenant: str, lease: str | int) -> dict:
        """End the lease now, deleting its keys."""
        return self._request("DELETE", self._lease_path(tenant, lease)).json()

    def lease_show(self, tenant: str, lease: str | int) -> dict:
        """``{"id", "ttl", "remaining", "keys"}``: the time left by the leader's count, the attached names."""
        return self._request("GET", self._lease_path(tenant, lease)).json()

    def take_all(self, since: int = 0, *, tenant: str | None = None, limit: int = 1000) -> list[dict]:
        """Every record changed at or after revision ``since``, paging with the ``next`` cursor."""
        records, cursor = [], since
        while True:
            page = self.take(cursor, limit=limit, tenant=tenant)
            records.extend(page["records"])
            cursor = page["next"]
            if len(page["records"]) < limit:
                return records

    def stats(self) -> dict:
        return self._request("GET", "/admin/stats").json()

    def members(self) -> list[dict]:
        return self._request("GET", "/admin/members").json()

    def member_add(self, name: str, address: str) -> dict:
        """Add a learner; ``{"name", "join_token"}`` (the token is shown once)."""
        return self._request("POST", "/admin/members", json={"name": name, "address": address}).json()

    def member_remove(self, name: str) -> dict:
        """Remove a member; returns once the removal is committed."""
        return self._request("DELETE", f"/admin/members/{quote(name, safe='')}").json()

    def transfer_leader(self, to: str | None = None) -> dict:
        """Move leadership to ``to`` (None: the most caught-up follower); returns the new leader and term."""
        return self._request("POST", "/admin/transfer-leader", json={"to": to}).json()

    def ready(self) -> dict:
        return self._request("GET", "/admin/ready").json()

    # ---- tenants: tokens, quotas, drop (the admin token with -auth on) ------------------------------
    def _tenant_path(self, tenant: str, tail: str = "") -> str:
        return f"/admin/tenants/{quote(tenant, safe='')}{tail}"

    def tenant_create(self, tenant: str) -> dict:
        """``{"tenant", "token"}``: the new token, shown once."""
        return self._request("POST", self._tenant_path(tenant)).json()

    def tenant_rotate(self, tenant: str) -> dict:
        return self._request("POST", self._tenant_path(tenant, "/rotate")).json()

    def tenant_revoke(self, tenant: str) -> dict:
        return self._request("DELETE", self._tenant_path(tenant, "/token")).json()

    def tenant_set_quota(self, tenant: str, **quota) -> dict:
        """Set some of ``keys``, ``bytes``, ``writes_per_second`` (0: no limit; left out: the default)."""
        body = {name: value for name, value in quota.items() if value is not None}
        return self._request("PUT", self._tenant_path(tenant, "/quota"), json=body).json()

    def tenant_drop(self, tenant: str) -> dict:
        return self._request("DELETE", self._tenant_path(tenant)).json()

    def tenants(self) -> list[dict]:
        return self._request("GET", "/admin/tenants").json()["tenants"]

    def close(self) -> None:
        self.session.close()
