"""The ``badkv`` server command: flags and ``BADKV_*`` environment -> Config -> gunicorn."""

from __future__ import annotations

import argparse
import logging
import os
import ssl
import sys

from badkv import __version__
from badkv.config import OPTIONS, Config
from badkv.errors import ConfigError
from badkv.security.tokens import read_admin_token
from badkv.security.cluster_secret import load_cluster_secret

BOOLEAN_FLAGS = {"in_memory", "repair"}
logger = logging.getLogger(__name__)


class OneLineParser(argparse.ArgumentParser):
    """Reports a usage error as one line and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} -h)\n")

    def _get_option_tuples(self, option_string: str):
        # allow_abbrev=False does not cover one-dash long flags on every Python
        # (CPython issue 104860): never guess that -nam means -name.
        return []


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="badkv", allow_abbrev=False,
        description="Run one badkv node. Flags take one dash or two (-name or --name); "
                    "every flag can also be set as BADKV_<FLAG> in the environment, e.g. BADKV_NAME.",
        epilog="example: badkv -name badkv1 -listen 127.0.0.1:10001 "
               "-cluster badkv1=127.0.0.1:10001,badkv2=127.0.0.1:10002,badkv3=127.0.0.1:10003")
    for option in OPTIONS:
        flags = (f"-{option.flag}", f"--{option.flag}")
        text = f"{option.help} [env {option.env}]"
        if option.field in BOOLEAN_FLAGS:
            parser.add_argument(*flags, dest=option.field, action="store_const", const=True, default=None, help=text)
        else:
            parser.add_argument(*flags, dest=option.field, metavar=option.metavar or None, help=text)
    parser.add_argument("-version", "--version", action="version", version=f"badkv {__version__}")
    return parser


def parse_config(argv: list[str], environ: dict[str, str]) -> Config:
    """Flags over environment; raises SystemExit(2) with one line on any mistake."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return Config.from_sources(vars(args), environ=environ)
    except ConfigError as error:
        parser.exit(2, f"badkv: {error}\n")


def check_cluster_secret(config: Config) -> None:
    """Read the cluster secret once here, so a missing, empty or short one stops the command with exit
    status 2 and one line rather than a worker that fails to boot (the worker's node reads it again)."""
    try:
        load_cluster_secret(config)
    except ConfigError as error:
        print(f"badkv: {error}", file=sys.stderr, flush=True)
        sys.exit(2)


def check_storage(config: Config) -> None:
    """Check the data dir before gunicorn starts, so a corrupt log or a foreign data dir stops the
    command with exit status 1 and one line, rather than a worker that fails to boot (with -repair,
    this is where the log is cut). It runs in a child process so the master, which forks the worker,
    never holds the data itself; it reads and checks everything but builds no store (see
    storage.recovery.check_storage), so it costs a fraction of the worker's recovery."""
    if config.in_memory:
        return
    child = os.fork()
    if child == 0:
        os._exit(_open_storage_once(config))
    _, status = os.waitpid(child, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(1)


def _open_storage_once(config: Config) -> int:
    from badkv.storage.datadir import DataDirMismatch
    from badkv.storage.frames import CorruptLogError
    from badkv.storage.recovery import check_storage as check_data_dir

    try:
        check_data_dir(config)
    except (CorruptLogError, DataDirMismatch) as error:
        print(f"badkv: {error}", file=sys.stderr, flush=True)
        return 1
    except OSError as error:
        print(f"badkv: cannot use data dir {config.data_dir}: {error.strerror or error}", file=sys.stderr,
              flush=True)
        return 1
    except Exception as error:  # the worker would fail the same way; say so here in one line
        print(f"badkv: cannot open data dir {config.data_dir}: {error}", file=sys.stderr, flush=True)
        return 1
    return 0


def check_tls_files(config: Config) -> None:
    """Load the TLS files once before serving: a missing file, a bad PEM or a key that does not match its
    certificate is then one line naming the files, not a traceback from the worker."""
    if not config.cert_file:
        return
    try:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=config.ca_file)
        context.load_cert_chain(config.cert_file, config.key_file)
    except (OSError, ssl.SSLError) as error:
        print(f"badkv: cannot use -cert-file {config.cert_file}, -key-file {config.key_file} and -ca-file "
              f"{config.ca_file} (make them with 'badkvctl certs'): {error}", file=sys.stderr, flush=True)
        sys.exit(1)


def _join(config: Config) -> Config:
    """Ask the cluster for this node's place (``-join``); a refusal stops the command with one line."""
    from badkv.cluster.joining import JoinError, joined_config

    try:
        return joined_config(config)
    except (JoinError, ConfigError) as error:
        print(f"badkv: {config.name}: cannot join: {error}", file=sys.stderr, flush=True)
        sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    config = parse_config(sys.argv[1:] if argv is None else argv, dict(os.environ))
    from badkv.http.serving import BadkvApplication, configure_logging

    configure_logging(config)
    if config.discovery_srv:  # resolved once, in parse_config: say what was found before anything else
        logger.info("node %s: members from the SRV records of _badkv._tcp.%s: %s", config.name,
                    config.discovery_srv, ",".join(f"{name}={address}" for name, address in config.cluster))
    check_tls_files(config)
    if config.join:
        config = _join(config)
    if config.auth:  # an unreadable or empty admin token file stops the command here, in one line
        try:
            read_admin_token(config.admin_token_file)
        except ConfigError as error:
            sys.exit(f"badkv: {error}")
    check_cluster_secret(config)
    check_storage(config)
    BadkvApplication(config).run()

