"""Tests for badkv.storage.recovery: what open_storage hands back, and what recovery shares between the entries
it reads back."""

from badkv.config import Config
from badkv.storage.memory_wal import MemoryWal
from badkv.storage.recovery import compact_entry, open_storage
from badkv.storage.wal import WriteAheadLog
from badkv.clock import HybridClock
from badkv.records import Record
from badkv.store import Store

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


def test_open_storage_loads_the_snapshot_into_the_store_and_returns_the_entries_after_it(tmp_path):
    config = Config.from_sources({"name": NODE, "data_dir": str(tmp_path)})
    wal = WriteAheadLog(tmp_path)
    wal.open(node=NODE, cluster_id=config.cluster_id)
    wal.append([put_entry(1), put_entry(2), put_entry(3)])
    wal.flush_through(3)
    records = [Record.build("tenant-a", "k1", b"v", 10**18 + 1, 10**18 + 1, False).to_dict()]
    wal.write_snapshot(index=2, term=1, revision=10**18 + 2, records=records)
    wal.save_state(4, "n2")
    wal.close()
    store = Store()
    recovered = open_storage(config, store, HybridClock())
    recovered.wal.close()
    assert (recovered.base_index, recovered.base_term) == (2, 1)
    assert recovered.entries == [put_entry(3)]
    assert (recovered.term, recovered.voted_for, recovered.snapshot_record_count) == (4, "n2", 1)
    assert isinstance(recovered.wal, WriteAheadLog) and store.get("tenant-a", "k1").value == b"v"


def test_open_storage_in_memory_starts_empty_on_a_memory_wal(tmp_path):
    config = Config.from_sources({"name": NODE, "in_memory": True, "data_dir": str(tmp_path / "unused")})
    recovered = open_storage(config, Store(), HybridClock())
    assert (recovered.base_index, recovered.base_term, recovered.entries) == (0, 0, [])
    assert (recovered.term, recovered.voted_for) == (0, None)
    assert isinstance(recovered.wal, MemoryWal) and recovered.wal.in_memory
    assert not (tmp_path / "unused").exists()
