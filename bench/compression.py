"""When does snappy pay for a peer call's body?  `.venv/bin/python bench/compression.py`

For append messages of 1 to 4,096 entries (100-byte values, one set random and incompressible, one
repetitive like the benchmark's), measures what compressing costs (snappy compress on the sender plus
decompress on the receiver, cramjam, best of 5 runs; the transfers best of 25) and what it saves: bytes, and the time to carry
them through a real loopback TCP connection (send, then receive every byte on the other end). It
prints, per size, whether compression won on loopback and on a 1 Gbit/s link (the saved bytes'
transfer time computed at 125 MB/s, no measurement behind that column). ``COMPRESS_THRESHOLD`` in
badkv/cluster/transport.py is set from this table; docs/design.md cites a run.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cramjam  # noqa: E402
import msgpack  # noqa: E402

GIGABIT_BYTES_PER_SECOND = 125e6


def append_message(entries: int, compressible: bool) -> bytes:
    value = (b"v" * 100) if compressible else None
    batch = [{"index": i, "term": 3, "op": "put", "tenant": "bench", "name": f"k{i}",
              "value": value if compressible else os.urandom(100), "timestamp": 10**15 + i, "revision": 10**15 + i}
             for i in range(entries)]
    return msgpack.packb({"term": 3, "leader": "n1", "prev_index": 0, "prev_term": 0, "entries": batch,
                          "leader_commit": 0, "seq": 1}, use_bin_type=True)


def best_of(runs: int, action) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best


class Loopback:
    """A connected TCP pair on 127.0.0.1 whose far end reads everything sent."""

    def __init__(self):
        listener = socket.create_server(("127.0.0.1", 0))
        self.sender = socket.create_connection(listener.getsockname())
        self.receiver, _ = listener.accept()
        listener.close()
        self.sender.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def carry(self, body: bytes) -> None:
        done = threading.Event()

        def read():
            left = len(body)
            while left:
                left -= len(self.receiver.recv(min(left, 1 << 20)))
            done.set()

        reader = threading.Thread(target=read)
        reader.start()
        self.sender.sendall(body)
        done.wait()
        reader.join()

    def close(self):
        self.sender.close()
        self.receiver.close()


def measure(entries: int, compressible: bool, link: Loopback) -> dict:
    raw = append_message(entries, compressible)
    packed = bytes(cramjam.snappy.compress_raw(raw))
    cost = best_of(5, lambda: cramjam.snappy.decompress_raw(cramjam.snappy.compress_raw(raw)))
    saved_on_loopback = best_of(25, lambda: link.carry(raw)) - best_of(25, lambda: link.carry(packed))
    saved_on_gigabit = (len(raw) - len(packed)) / GIGABIT_BYTES_PER_SECOND
    return {"entries": entries, "compressible": compressible, "bytes": len(raw), "compressed": len(packed),
            "cost_us": cost * 1e6, "loopback_us": saved_on_loopback * 1e6, "gigabit_us": saved_on_gigabit * 1e6}


def main() -> int:
    link = Loopback()
    print("| values | entries | msgpack bytes | snappy bytes | compress + decompress | saved on loopback "
          "(measured) | saved on 1 Gbit/s (computed) | pays on loopback / 1 Gbit/s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    try:
        for compressible in (True, False):
            for entries in (1, 16, 64, 160, 512, 1024, 4096):
                row = measure(entries, compressible, link)
                pays = ("yes" if row["loopback_us"] > row["cost_us"] else "no",
                        "yes" if row["gigabit_us"] > row["cost_us"] else "no")
                print(f"| {'repetitive' if compressible else 'random'} | {entries} | {row['bytes']:,} | "
                      f"{row['compressed']:,} | {row['cost_us']:.0f} µs | {row['loopback_us']:.0f} µs | "
                      f"{row['gigabit_us']:.0f} µs | {pays[0]} / {pays[1]} |")
    finally:
        link.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
