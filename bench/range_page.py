"""What one range page costs the node in a big tenant: `.venv/bin/python bench/range_page.py [--keys 1000000]`.

Builds a single in-memory node's app (``create_app``, the same code a served node runs), fills one tenant
with ``--keys`` keys of 100-byte values straight into its store (``Store.apply``, as replication would;
going through HTTP would take minutes and measure the writes, not the page), then serves ``--pages`` range
requests of ``--limit`` keys each through the app's WSGI callable (routing, validation, the per-tenant
sorted index, the page's JSON with base64 values), each from a random start name, and prints the p50,
p99 and max time per page, plain and with ``keys_only``. No network and no gunicorn: the figure is what
the node itself spends on a page, the quantity issue 13 bounds (at most 20 ms for 1,000 keys of a tenant of
1,000,000).
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from badkv.app import create_app  # noqa: E402
from badkv.config import Config  # noqa: E402
from badkv.records import Record  # noqa: E402

TENANT = "big"


def fill(app, keys: int) -> float:
    store = app.extensions["badkv_node"].store
    started = time.perf_counter()
    base = store.applied_revision + 1
    for i in range(keys):
        revision = base + i
        store.apply(Record.build(TENANT, f"key{i:08d}", b"v" * 100, revision, revision, False))
    return time.perf_counter() - started


def page_seconds(app, query: str) -> float:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": f"/api/v1/keys/{TENANT}", "QUERY_STRING": query,
               "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
               "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b""), "wsgi.errors": sys.stderr}
    status = []
    started = time.perf_counter()
    body = b"".join(app.wsgi_app(environ, lambda code, headers, exc=None: status.append(code)))
    took = time.perf_counter() - started
    if not status or not status[0].startswith("200") or not body:
        raise SystemExit(f"the page answered {status}: {body[:200]!r}")
    return took


def measure(app, keys: int, pages: int, limit: int, extra: str, rng: random.Random) -> list[float]:
    times = []
    for _ in range(pages):
        start = f"key{rng.randrange(max(1, keys - limit)):08d}"
        times.append(page_seconds(app, f"start={start}&limit={limit}{extra}"))
    return sorted(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--limit", type=int, default=1000)
    args = parser.parse_args()
    app = create_app(Config.from_sources({"name": "range-bench", "in_memory": True}))
    try:
        print(f"filled {args.keys:,} keys in {fill(app, args.keys):.1f} s")
        rng = random.Random(1)
        page_seconds(app, f"limit={args.limit}")  # warm-up
        for label, extra in (("values", ""), ("keys_only", "&keys_only=true")):
            times = measure(app, args.keys, args.pages, args.limit, extra, rng)
            p50, p99 = times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))]
            print(f"{args.limit}-key page ({label}), {args.pages} pages: p50 {p50 * 1e3:.1f} ms, "
                  f"p99 {p99 * 1e3:.1f} ms, max {times[-1] * 1e3:.1f} ms")
    finally:
        app.extensions["badkv_node"].stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
