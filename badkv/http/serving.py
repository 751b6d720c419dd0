"""How gunicorn runs badkv: its settings and hooks, shared by ``badkv`` and ``gunicorn.conf.py``.

One worker process (the data lives in its memory), ``gthread`` with
``-threads`` threads. The node's background threads start in the worker after
fork (``post_worker_init``) and stop in ``worker_exit``.
"""

from __future__ import annotations

import logging
import os
import ssl
import sys

from gunicorn import glogging
from gunicorn.app.base import BaseApplication

from badkv import logs
from badkv.config import Config

# Long enough for a leader to hand over (at most two election timeouts) and for in-flight requests to
# finish; SIGTERM normally ends a node well within it.
GRACEFUL_TIMEOUT = 4
KEEPALIVE = 5
# Open connections the worker holds, parked watches included; capped at start by the open-file limit.
WORKER_CONNECTIONS = 20000


def config_from_environment() -> Config:
    """The Config that ``gunicorn -c gunicorn.conf.py`` deployments take from ``BADKV_*``."""
    return Config.from_sources(environ=os.environ)


def configure_logging(config: Config) -> None:
    """Every line on stderr in ``-log-format`` (text or json), Python's warnings included."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logs.formatter(config.log_format, config.name))
    logging.basicConfig(level=config.log_level.upper(), handlers=[handler])
    logging.getLogger("badkv").setLevel(config.log_level.upper())
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.captureWarnings(True)


class NodeLogger(glogging.Logger):
    """Gunicorn's own lines (its master, its worker) in the node's ``-log-format`` too."""

    log_format = "text"
    node = ""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        for handler in self.error_log.handlers + self.access_log.handlers:
            handler.setFormatter(logs.formatter(self.log_format, self.node))


def logger_class(config: Config) -> type:
    return type("NodeLogger", (NodeLogger,), {"log_format": config.log_format, "node": config.name})


def post_worker_init(worker) -> None:
    node = worker.wsgi.extensions["badkv_node"]
    configure_logging(node.config)
    node.start()
    worker.log.info("badkv node %s serving on %s", node.name, node.config.listen)


def worker_exit(server, worker) -> None:
    wsgi = getattr(worker, "wsgi", None)
    if wsgi is not None and "badkv_node" in getattr(wsgi, "extensions", {}):
        wsgi.extensions["badkv_node"].stop()
        server.log.info("badkv node stopped")


def tls_settings(config: Config) -> dict:
    """Gunicorn's own TLS: with the three files, serve HTTPS and ask every caller for a certificate.

    The certificate is requested, not required (CERT_OPTIONAL): curl and badkvctl use the public API
    without one, while ``/cluster/v1`` refuses any call that did not present one (http/peer.py). A
    certificate that is presented must verify against the CA, or the handshake fails.
    """
    if not config.cert_file:
        return {}
    return {"certfile": config.cert_file, "keyfile": config.key_file, "ca_certs": config.ca_file,
            "cert_reqs": ssl.CERT_OPTIONAL, "ssl_context": cached_ssl_context}


_contexts: dict[tuple, ssl.SSLContext] = {}


def cached_ssl_context(conf, default_ssl_context_factory) -> ssl.SSLContext:
    """Gunicorn builds an SSLContext per connection, reading and parsing the key and the CA each time;
    one context serves every connection (a changed certificate takes effect at restart)."""
    key = (conf.certfile, conf.keyfile, conf.ca_certs, conf.cert_reqs)
    if key not in _contexts:
        context = default_ssl_context_factory()
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        _contexts[key] = context
    return _contexts[key]


def worker_class(config: Config) -> str:
    """A cluster member reserves threads for its peers; a single node has no peers to starve."""
    if len(config.cluster) > 1:
        return "badkv.http.worker.PeerAwareThreadWorker"
    # gthread, but one that parks waiting watches and says clearly why it refused a TLS connection.
    return "badkv.http.worker.TlsThreadWorker"


def gunicorn_settings(config: Config) -> dict:
    """Gunicorn settings for ``config``: the single source for both ways of starting a node."""
    return {
        "bind": [config.listen],
        "workers": 1,
        "worker_class": worker_class(config),
        "threads": config.threads,
        "worker_connections": WORKER_CONNECTIONS,
        "keepalive": KEEPALIVE,
        "graceful_timeout": GRACEFUL_TIMEOUT,
        "timeout": 30,
        "proc_name": f"badkv-{config.name}",
        "loglevel": "warning" if config.log_level == "info" else config.log_level,
        "logger_class": logger_class(config),
        "post_worker_init": post_worker_init,
        "worker_exit": worker_exit,
        **tls_settings(config),
    }


class BadkvApplication(BaseApplication):
    """Gunicorn in-process: the ``badkv`` command's server."""

    def __init__(self, config: Config):
        self.badkv_config = config
        super().__init__()

    def load_config(self) -> None:
        for key, value in gunicorn_settings(self.badkv_config).items():
            self.cfg.set(key, value)

    def load(self):
        from badkv.http.app import create_app  # in the worker, after fork

        return create_app(self.badkv_config)
