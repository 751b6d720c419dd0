"""Tests for badkv.persistence: what recovery shares between the entries it reads back."""

from badkv.persistence import compact_entry
from badkv.wal import WriteAheadLog

NODE, CLUSTER = "n1", "c1"


def put_entry(index, timestamp=None):
    revision = 10**18 + index  # big enough that equal ints are separate objects unless shared
    return {"index": index, "term": 1, "op": "put", "tenant": "tenant-" + "a", "name": f"k{index}",
            "value": b"v", "timestamp": revision if timestamp is None else timestamp, "revision": revision}


def test_entries_read_back_share_their_op_tenant_and_timestamp(tmp_path):
    wal = WriteAheadLog(tmp_path)
    wal.open(node=NODE, cluster_id=CLUSTER)
    wal.append([put_entry(1), put_entry(2), put_entry(3, timestamp=5)])
    wal.flush_through(3)
    wal.close()
    wal = WriteAheadLog(tmp_path)
    wal.entry_factory = compact_entry
    first, second, third = wal.open(node=NODE, cluster_id=CLUSTER).entries
    wal.close()
    assert first["op"] is second["op"] and first["tenant"] is second["tenant"]
    assert first["timestamp"] is first["revision"]
    assert (third["timestamp"], third["revision"]) == (5, 10**18 + 3)
    assert [first, second, third] == [put_entry(1), put_entry(2), put_entry(3, timestamp=5)]


def test_entries_without_those_fields_pass_unchanged():
    odd = {"index": 1, "term": 1, "op": 7}
    assert compact_entry(dict(odd)) == odd
