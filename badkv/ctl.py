"""``badkvctl``: a shell client for any badkv node.

Exit status: 0 success, 1 key not found, 2 usage error, 3 the server refused
the request (its JSON error is printed) or a local command refused (restore,
certs), 4 the node could not be reached; ``check`` has its own (0 linearizable,
1 not, 2 could not run).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import requests

from badkv.client import Client, ClientError
from badkv.config import Config
from badkv.errors import ConfigError
from badkv.security.pki import PkiError
from badkv.security.pki_cli import add_certs_command, run_certs
from badkv.selfcheck import add_check_command, run_check
from badkv.storage.backup import RestoreError, download_backup, restore_backup
from badkv.storage.datadir import DataDirMismatch
from badkv.storage.frames import CorruptLogError

EXIT_NOT_FOUND, EXIT_USAGE, EXIT_REFUSED, EXIT_UNREACHABLE = 1, 2, 3, 4


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="badkvctl", description="Talk to a badkv cluster through any node.")
    parser.add_argument("--endpoint", "-e", default=os.environ.get("BADKV_ENDPOINT", "http://127.0.0.1:10001"),
                        help="node to talk to (env BADKV_ENDPOINT, default http://127.0.0.1:10001)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default 10)")
    for option, what in (("ca-file", "CA certificate (PEM) to verify an https node against"),
                         ("cert-file", "client certificate (PEM) to present"), ("key-file", "its private key (PEM)")):
        env = "BADKV_" + option.upper().replace("-", "_")
        parser.add_argument("--" + option, default=os.environ.get(env), help=f"{what} (env {env})")
    parser.add_argument("--token", default=os.environ.get("BADKV_TOKEN"),
                        help="bearer token for a node with -auth on: a tenant's, or the admin token (env BADKV_TOKEN)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    get = commands.add_parser("get", help="print a key's value")
    get.add_argument("tenant")
    get.add_argument("name")
    get.add_argument("--consistency", choices=("local", "leader", "linearizable"))
    get.add_argument("--min-revision", type=int)
    get.add_argument("--verbose", "-v", action="store_true", help="also print timestamp and revision to stderr")
    put = commands.add_parser("put", help="store a value (from the argument, or stdin with -)")
    put.add_argument("tenant")
    put.add_argument("name")
    put.add_argument("value", help="the value, or - to read it from stdin")
    put.add_argument("--timestamp", type=int)
    put.add_argument("--if-match", type=int, metavar="REVISION")
    put.add_argument("--if-none-match", action="store_true", help="only create, never overwrite")
    put.add_argument("--lease", metavar="ID", help="attach the key to this lease (deleted when the lease ends)")
    delete = commands.add_parser("delete", help="delete a key")
    delete.add_argument("tenant")
    delete.add_argument("name")
    delete.add_argument("--timestamp", type=int)
    ls = commands.add_parser("ls", help="list a tenant's live keys in name order, as JSON lines (every page)")
    ls.add_argument("tenant")
    ls.add_argument("--prefix")
    ls.add_argument("--start", help="the first name (inclusive)")
    ls.add_argument("--end", help="the name to stop before (exclusive)")
    ls.add_argument("--reverse", action="store_true")
    ls.add_argument("--keys-only", action="store_true", help="names, timestamps and revisions without values")
    ls.add_argument("--count", action="store_true", help="print only how many keys there are")
    ls.add_argument("--consistency", choices=("local", "leader", "linearizable"))
    txn = commands.add_parser("txn", help="run a transaction: its JSON body from FILE or stdin, printing the answer")
    txn.add_argument("tenant")
    txn.add_argument("file", nargs="?", default="-", help='{"compare": [...], "success": [...], "failure": [...]} '
                                                          "(default -: stdin)")
    take = commands.add_parser("take", help="print records changed since a revision, as JSON lines")
    take.add_argument("since", type=int, nargs="?", default=0)
    take.add_argument("--tenant")
    watch = commands.add_parser("watch", help="print a tenant's changes as JSON lines until interrupted "
                                              "(resuming from its cursor after a reconnect)")
    watch.add_argument("tenant")
    watch.add_argument("--prefix", help="only names that start with this")
    watch.add_argument("--cursor", type=int, help="the revision to start at (default: from now on; 0: everything)")
    watch.add_argument("--wait", type=float, default=30.0, help="seconds each long poll waits (default 30)")
    backup = commands.add_parser("backup", help="save a consistent snapshot of the node to FILE")
    backup.add_argument("file")
    restore = commands.add_parser("restore", help="seed a new node's data dir from a backup FILE (offline)")
    restore.add_argument("file")
    restore.add_argument("--name", required=True, help="the node the data dir is for")
    restore.add_argument("--data-dir", help="default ./data/NAME")
    restore.add_argument("--cluster", help="the cluster's members as for badkv -cluster (default: NAME alone)")
    restore.add_argument("--force", action="store_true", help="replace a non-empty data dir")
    commands.add_parser("stats", help="print the node's stats as JSON")
    commands.add_parser("members", help="print the cluster's members as a table")
    transfer = commands.add_parser("transfer-leader", help="move leadership to another member (sent to any node)")
    transfer.add_argument("--to", metavar="NAME", help="the member to lead next (default: the most caught-up follower)")
    add_certs_command(commands)
    add_check_command(commands)
    _add_tenant_commands(commands)
    _add_lease_commands(commands)
    _add_member_commands(commands)
    return parser


# ---- member: add, remove, list ----------------------------------------------------------------------
def _add_member_commands(commands) -> None:
    member = commands.add_parser("member", help="change the membership (sent to any node): add|remove|list")
    actions = member.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add NAME at ADDR as a learner; prints its one-time join token")
    add.add_argument("name")
    add.add_argument("address", metavar="ADDR", help="host:port the members reach it at")
    actions.add_parser("remove", help="remove a member; returns once the removal is committed").add_argument("name")
    actions.add_parser("list", help="print the members as a table (as `badkvctl members`)")


def _run_member(args: argparse.Namespace, client: Client) -> None:
    if args.action == "add":
        added = client.member_add(args.name, args.address)
        print(f"{added['name']} added as a learner; start it within 10 minutes with:\n"
              f"  badkv -name {added['name']} -listen {args.address} -join {client.endpoint} "
              f"-join-token {added['join_token']}")
    elif args.action == "remove":
        client.member_remove(args.name)
        print(f"{args.name} removed")
    else:
        print(_members_table(client.members()))


# ---- lease: grant, keepalive, revoke, show ----------------------------------------------------------
def _add_lease_commands(commands) -> None:
    lease = commands.add_parser("lease", help="leases: grant TENANT TTL | keepalive|revoke|show TENANT ID")
    actions = lease.add_subparsers(dest="action", required=True, metavar="ACTION")
    grant = actions.add_parser("grant", help="a new lease of TTL seconds; prints its id")
    grant.add_argument("tenant")
    grant.add_argument("ttl", type=int)
    for action, text in (("keepalive", "start the lease's full TTL again"),
                         ("revoke", "end the lease now, deleting its keys"),
                         ("show", "the lease's TTL, time left and attached keys")):
        parser = actions.add_parser(action, help=text)
        parser.add_argument("tenant")
        parser.add_argument("id")


def _run_lease(args: argparse.Namespace, client: Client) -> None:
    if args.action == "grant":
        print(json.dumps(client.lease_grant(args.tenant, args.ttl)))
    else:
        call = {"keepalive": client.lease_keepalive, "revoke": client.lease_revoke,
                "show": client.lease_show}[args.action]
        print(json.dumps(call(args.tenant, args.id)))


# ---- tenant: tokens, quotas, drop -------------------------------------------------------------------
TENANT_ACTIONS = ("create", "rotate", "revoke", "set-quota", "list", "drop")


def _add_tenant_commands(commands) -> None:
    tenant = commands.add_parser("tenant", help="tenant tokens, quotas and drop (needs the admin token with "
                                 "-auth on): " + "|".join(TENANT_ACTIONS))
    actions = tenant.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (("create", "make the tenant's token (printed once)"),
                         ("rotate", "replace the tenant's token; the old one stops working everywhere"),
                         ("revoke", "delete the tenant's token (its keys stay)"),
                         ("drop", "remove every key of the tenant")):
        actions.add_parser(action, help=text).add_argument("tenant")
    quota = actions.add_parser("set-quota", help="set the tenant's quota (0: no limit; left out: the default)")
    quota.add_argument("tenant")
    quota.add_argument("--keys", type=int)
    quota.add_argument("--bytes", type=int)
    quota.add_argument("--writes-per-second", type=float)
    actions.add_parser("list", help="every tenant with keys, bytes, quota and request counts")


def _tenants_table(tenants: list[dict]) -> str:
    columns = ("tenant", "keys", "bytes", "token", "requests", "refusals", "quota")
    rows = [[str(t[c]) for c in columns[:-1]] + ["keys={keys} bytes={bytes} wps={writes_per_second:g}".format(
        **t["quota"])] for t in tenants]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)] if rows else map(len, columns)
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths))]
    return "\n".join(lines + ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in rows])


def _run_tenant(args: argparse.Namespace, client: Client) -> None:
    if args.action == "list":
        print(_tenants_table(client.tenants()))
    elif args.action == "set-quota":
        print(json.dumps(client.tenant_set_quota(args.tenant, keys=args.keys, bytes=args.bytes,
                                                 writes_per_second=args.writes_per_second)))
    else:
        call = {"create": client.tenant_create, "rotate": client.tenant_rotate, "revoke": client.tenant_revoke,
                "drop": client.tenant_drop}[args.action]
        print(json.dumps(call(args.tenant)))


def _members_table(members: list[dict]) -> str:
    columns = ("name", "address", "role", "voter", "reachable", "in_sync", "last_contact_ms", "match_index")
    rows = [[("-" if m.get(c) is None else str(m.get(c))) + ("*" if c == "name" and m.get("self") else "")
             for c in columns] for m in members]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def _list_keys(args: argparse.Namespace, client: Client) -> None:
    """Every page of a range listing; ``--count`` prints the count alone."""
    bounds = {"start": args.start, "end": args.end}
    while True:
        page = client.range(args.tenant, prefix=args.prefix, reverse=args.reverse, keys_only=args.keys_only,
                            count_only=args.count, consistency=args.consistency, **bounds)
        if args.count:
            print(page["count"])
            return
        for record in page["records"]:
            print(json.dumps(record))
        if page["next"] is None:
            return
        bounds["end" if args.reverse else "start"] = page["next"]


def _watch(args: argparse.Namespace, client: Client) -> None:
    """JSON lines, one per change, flushed as they come; Ctrl-C ends the watch (exit 0)."""
    try:
        for record in client.watch(args.tenant, prefix=args.prefix or None, cursor=args.cursor, wait=args.wait):
            print(json.dumps(record), flush=True)
    except KeyboardInterrupt:
        pass


def _read_json(file: str):
    """The JSON document in ``file`` (``-``: stdin); a ConfigError naming the file if it is not JSON."""
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text()
        return json.loads(text)
    except (OSError, ValueError) as error:
        raise ConfigError(f"{file}: not a JSON document: {error}") from None


def run(args: argparse.Namespace, client: Client) -> int:
    out = sys.stdout
    if args.command == "certs":
        return run_certs(args)
    if args.command == "check":
        return run_check(args)
    if args.command == "get":
        value = client.get(args.tenant, args.name, consistency=args.consistency, min_revision=args.min_revision)
        out.buffer.write(value.value) if hasattr(out, "buffer") else out.write(value.value.decode())
        out.flush()
        if args.verbose:
            print(f"timestamp={value.timestamp} revision={value.revision}", file=sys.stderr)
    elif args.command == "put":
        value = sys.stdin.buffer.read() if args.value == "-" else args.value.encode()
        print(json.dumps(client.put(args.tenant, args.name, value, timestamp=args.timestamp,
                                    if_match=args.if_match, if_none_match=args.if_none_match, lease=args.lease)))
    elif args.command == "delete":
        print(json.dumps(client.delete(args.tenant, args.name, timestamp=args.timestamp)))
    elif args.command == "ls":
        _list_keys(args, client)
    elif args.command == "txn":
        print(json.dumps(client.txn(args.tenant, _read_json(args.file))))
    elif args.command == "take":
        for record in client.take_all(args.since, tenant=args.tenant):
            print(json.dumps(record))
    elif args.command == "watch":
        _watch(args, client)
    elif args.command == "backup":
        size = download_backup(client, args.file)
        print(f"saved {size} bytes to {args.file}")
    elif args.command == "restore":
        config = Config.from_sources({"name": args.name, "data_dir": args.data_dir, "cluster": args.cluster})
        count = restore_backup(args.file, config.data_dir, node=config.name, cluster_id=config.cluster_id,
                               force=args.force)
        print(f"restored {count} records into {config.data_dir}")
    elif args.command == "stats":
        print(json.dumps(client.stats(), indent=2))
    elif args.command == "members":
        print(_members_table(client.members()))
    elif args.command == "transfer-leader":
        moved = client.transfer_leader(args.to)
        print(f"{moved['leader']} leads term {moved['term']}")
    elif args.command == "tenant":
        _run_tenant(args, client)
    elif args.command == "lease":
        _run_lease(args, client)
    elif args.command == "member":
        _run_member(args, client)
    return 0


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    cert = ((args.cert_file, args.key_file) if args.key_file else args.cert_file) if args.cert_file else None
    client = Client(args.endpoint, timeout=args.timeout, ca_file=args.ca_file, cert=cert,
                    token=args.token)
    try:
        status = run(args, client)
    except ClientError as error:
        print(f"badkvctl: {error.code}: {error.message}", file=sys.stderr)
        status = EXIT_UNREACHABLE if error.status == 0 else EXIT_NOT_FOUND if error.status == 404 else EXIT_REFUSED
    except (RestoreError, CorruptLogError, DataDirMismatch, ConfigError, PkiError) as error:
        print(f"badkvctl: {error}", file=sys.stderr)
        status = EXIT_REFUSED
    except requests.RequestException as error:
        print(f"badkvctl: unreachable: {error.__class__.__name__}", file=sys.stderr)
        status = EXIT_UNREACHABLE
    sys.exit(status)


if __name__ == "__main__":  # python -m badkv.ctl, as the tests run it
    main()
