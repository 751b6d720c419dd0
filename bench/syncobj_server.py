"""One member of the PySyncObj reference cluster: a small HTTP server over a replicated dict.

PySyncObj (PyPI `pysyncobj`) replicates a Python object between processes with
Raft over its own TCP transport. This server wraps one `SyncObj` holding a
`ReplDict` and speaks the slice of badkv's HTTP API the benchmark uses, so wrk
and the harness drive it exactly like badkv:

- `POST /api/v1/keys/<tenant>/<name>`: the body becomes the value; answers 202
  once the write is committed and applied here (PySyncObj's `sync=True`), 503
  if it failed or timed out (e.g. no leader);
- `GET /api/v1/keys/<tenant>/<name>`: this member's copy (200 or 404);
- `GET /admin/health`: 200 once the member is ready and knows a leader, else 503;
- `GET /admin/stats`: `{"role": "leader" | "follower" | "candidate", ...}`,
  which the harness reads to find the leader, as it does for badkv.

Persistence: `SyncObjConf(journalFile=...)` keeps the Raft log in a
memory-mapped file that every entry is written into as it arrives; PySyncObj
does not fsync (or msync) it per entry, only when the object is destroyed. So
this is a journal **without fsync**, and the benchmark labels it so.

The HTTP side is the standard library's threading server with HTTP/1.1
keep-alive: one thread per connection, less per-request work than Flask under
gunicorn, which if anything flatters PySyncObj in a comparison with badkv.

Run: python -m bench.syncobj_server --self 127.0.0.1:P1 --partners 127.0.0.1:P2,127.0.0.1:P3
--http-port H --journal DIR/journal
"""

import argparse
import json
import logging
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pysyncobj import SyncObj, SyncObjConf
from pysyncobj.batteries import ReplDict

logger = logging.getLogger(__name__)

KEY_PATH = "/api/v1/keys/"
WRITE_TIMEOUT_SECONDS = 10.0
ROLES = {0: "follower", 1: "candidate", 2: "leader"}


class ReplicatedStore:
    """A SyncObj with one ReplDict; keys are (tenant, name) joined by "/"."""

    def __init__(self, self_address, partners, journal_file):
        self.values = ReplDict()
        conf = SyncObjConf(journalFile=journal_file, dynamicMembershipChange=False)
        self.sync_obj = SyncObj(self_address, partners, conf=conf, consumers=[self.values])

    def write(self, key, value):
        """Replicate `key` = `value`; True once committed and applied here, False if it failed."""
        try:
            self.values.set(key, value, sync=True, timeout=WRITE_TIMEOUT_SECONDS)
        except Exception as error:  # SyncObjException: no leader, queue full, timeout
            logger.warning("%s: write of %s failed: %s", self.name, key, error)
            return False
        return True

    def read(self, key):
        return self.values.get(key)

    @property
    def name(self):
        return str(self.sync_obj.selfNode)

    def status(self):
        """Role, readiness and log positions from SyncObj.getStatus()."""
        status = self.sync_obj.getStatus()
        leader = status["leader"]
        return {
            "name": self.name,
            "role": ROLES.get(status["state"], str(status["state"])),
            "leader": None if leader is None else str(leader),
            "ready": self.sync_obj.isReady(),
            "commit_index": status["commit_idx"],
            "last_applied": status["last_applied"],
        }

    def close(self):
        self.sync_obj.destroy()


def make_handler(store):
    """The request handler class bound to `store`."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as wrk expects
        # One buffered write per response (flushed by the base class after each request), no Nagle
        # delay: headers and body in separate small packets would wait on the peer's delayed ACK.
        wbufsize = -1
        disable_nagle_algorithm = True

        def do_GET(self):
            if self.path == "/admin/health":
                status = store.status()
                healthy = status["ready"] and status["leader"] is not None
                return self._send_json(200 if healthy else 503, {"status": "ok" if healthy else "not ready"})
            if self.path == "/admin/stats":
                return self._send_json(200, store.status())
            key = self._key()
            if key is None:
                return self._send_json(404, {"error": "not_found"})
            value = store.read(key)
            if value is None:
                return self._send_json(404, {"error": "not_found"})
            self._send(200, value, "application/octet-stream")

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            value = self.rfile.read(length)
            key = self._key()
            if key is None:
                return self._send_json(404, {"error": "not_found"})
            if not store.write(key, value):
                return self._send_json(503, {"error": "unavailable"})
            self._send_json(202, {"key": key, "accepted": True})

        def _key(self):
            path = self.path.split("?", 1)[0]
            if not path.startswith(KEY_PATH) or path.count("/") != 5:
                return None
            return path[len(KEY_PATH):]

        def _send_json(self, status, document):
            self._send(status, json.dumps(document).encode(), "application/json")

        def _send(self, status, body, content_type):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):  # no access log, as the other servers under test
            pass

    return Handler


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.syncobj_server", description=__doc__.splitlines()[0])
    parser.add_argument("--self", dest="self_address", required=True, help="this member's Raft address host:port")
    parser.add_argument("--partners", required=True, help="comma list of the other members' Raft addresses")
    parser.add_argument("--http-port", type=int, required=True, help="loopback port of the HTTP API")
    parser.add_argument("--journal", required=True, help="journal file (created if missing)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s %(levelname)s {args.self_address}: %(message)s")
    partners = [address for address in args.partners.split(",") if address]
    store = ReplicatedStore(args.self_address, partners, args.journal)
    server = ThreadingHTTPServer(("127.0.0.1", args.http_port), make_handler(store))
    server.daemon_threads = True
    # SIGTERM from the harness: stop serving from another thread (shutdown() blocks until serve_forever returns).
    signal.signal(signal.SIGTERM, lambda signum, frame: threading.Thread(target=server.shutdown).start())
    logger.info("%s: serving HTTP on 127.0.0.1:%d, journal %s", args.self_address, args.http_port, args.journal)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        store.close()
        logger.info("%s: stopped", args.self_address)
    return 0


if __name__ == "__main__":
    sys.exit(main())
