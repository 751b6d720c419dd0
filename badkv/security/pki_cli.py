"""``badkvctl certs init|issue``: the command-line face of ``badkv.security.pki``."""

from __future__ import annotations

import argparse
import sys

from badkv.security import pki


def add_certs_command(commands) -> None:
    """Add ``certs`` and its two subcommands to badkvctl's subparsers."""
    certs = commands.add_parser("certs", help="make a CA and the certificates it signs (for TLS)")
    actions = certs.add_subparsers(dest="certs_command", required=True, metavar="ACTION")
    init = actions.add_parser("init", help="make a self-signed CA: DIR/ca.crt and DIR/ca.key")
    init.add_argument("--dir", required=True, help="where the files go (created if missing)")
    init.add_argument("--days", type=int, default=pki.CA_DAYS, help=f"validity (default {pki.CA_DAYS})")
    init.add_argument("--force", action="store_true", help="replace existing files")
    issue = actions.add_parser("issue", help="make DIR/NAME.crt and DIR/NAME.key signed by the CA in DIR")
    issue.add_argument("name", help="the node's name, or a client's")
    issue.add_argument("--host", default="", metavar="H[,H...]",
                       help="names and IP addresses the certificate is for, comma-separated (one SAN each)")
    issue.add_argument("--client", action="store_true", help="a client certificate (clientAuth only)")
    issue.add_argument("--dir", required=True, help="the directory holding ca.crt and ca.key")
    issue.add_argument("--days", type=int, default=pki.CERT_DAYS, help=f"validity (default {pki.CERT_DAYS})")
    issue.add_argument("--force", action="store_true", help="replace existing files")


def run_certs(args: argparse.Namespace) -> int:
    """Carry out ``certs init`` or ``certs issue``; raises ``PkiError`` when it cannot."""
    if args.days < 1:
        raise pki.PkiError("--days must be at least 1")
    if args.certs_command == "init":
        issued = pki.create_ca(args.dir, days=args.days, force=args.force)
    else:
        hosts = [host for host in args.host.split(",") if host.strip()]
        issued = pki.issue(args.dir, args.name, hosts, client=args.client, days=args.days, force=args.force)
    print(f"wrote {issued.certificate} and {issued.key}", file=sys.stdout)
    return 0
