"""Tests for badkv/security/tokens.py: admin token file, token making, hashing and the token index."""

import pytest

from badkv.errors import ConfigError
from badkv.security.tokens import (AUTH_TENANT, SystemTable, TokenIndex, is_reserved, new_token,
                                   read_admin_token, token_hash, token_record_value)
from badkv.records import Record
from badkv.store import Store


def write_token_record(store, tenant, token, revision, deleted=False):
    value = b"" if deleted else token_record_value(token)
    store.apply(Record(AUTH_TENANT, tenant, value, revision, revision, deleted))


def test_the_admin_token_file_is_read_without_its_newline(tmp_path):
    path = tmp_path / "token"
    path.write_text("  s3cret-admin\n")
    assert read_admin_token(str(path)) == "s3cret-admin"


@pytest.mark.parametrize("content", ["", "\n", "  \n\n"])
def test_an_empty_admin_token_file_is_refused(tmp_path, content):
    path = tmp_path / "token"
    path.write_text(content)
    with pytest.raises(ConfigError, match="is empty"):
        read_admin_token(str(path))


def test_a_missing_admin_token_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the admin token file"):
        read_admin_token(str(tmp_path / "nope"))


def test_new_tokens_carry_256_bits_and_differ():
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(len(token) == 64 and int(token, 16) >= 0 for token in tokens)  # 32 bytes in hex
    assert not any(token.startswith("-") for token in tokens)  # never mistaken for a command's option


def test_the_record_holds_the_hash_only():
    token = new_token()
    value = token_record_value(token)
    assert token.encode() not in value and token_hash(token).encode() in value
    assert token_hash(token) == token_hash(token) != token_hash(token + "x")


@pytest.mark.parametrize("tenant, reserved", [("_auth", True), ("_x", True), ("acme", False), ("a_b", False)])
def test_reserved_tenants_start_with_an_underscore(tenant, reserved):
    assert is_reserved(tenant) is reserved


def test_the_index_knows_the_admin_and_each_tenant():
    store = Store()
    index = TokenIndex(store, "admin-token")
    acme, beta = new_token(), new_token()
    write_token_record(store, "acme", acme, 10)
    write_token_record(store, "beta", beta, 11)
    assert index.identify("admin-token") is TokenIndex.ADMIN
    assert index.identify(acme) == "acme" and index.identify(beta) == "beta"
    assert index.identify("admin-tokeN") is None and index.identify(None) is None and index.identify("") is None


def test_without_an_admin_token_nothing_is_admin():
    assert TokenIndex(Store(), None).identify("") is None


def test_rotation_and_revocation_apply_at_once():
    store = Store()
    index = TokenIndex(store, "admin-token")
    old, new = new_token(), new_token()
    write_token_record(store, "acme", old, 10)
    assert index.identify(old) == "acme"
    write_token_record(store, "acme", new, 11)
    assert index.identify(old) is None and index.identify(new) == "acme"
    write_token_record(store, "acme", new, 12, deleted=True)
    assert index.identify(new) is None


def test_a_snapshot_load_rebuilds_the_index():
    store = Store()
    index = TokenIndex(store, None)
    token = new_token()
    assert index.identify(token) is None
    store.load([Record(AUTH_TENANT, "acme", token_record_value(token), 5, 5)], 5, 1)
    assert index.identify(token) == "acme"


def test_the_table_rebuilds_only_when_a_reserved_record_changes():
    store = Store()
    builds = []
    table = SystemTable(store, AUTH_TENANT, lambda records: builds.append(len(records)) or {})
    table.current()
    store.apply(Record("acme", "k", b"v", 1, 1))  # an ordinary key: no rebuild
    table.current()
    store.apply(Record(AUTH_TENANT, "acme", b"{}", 2, 2))
    table.current()
    assert builds == [0, 1]


def test_a_rebuild_that_finishes_late_does_not_replace_a_newer_mapping():
    """Two request threads rebuild at once across a rotation: the one that read the older records finishes
    last, and the newer mapping stays (the rotated-out token must not open the tenant again)."""
    import threading
    from types import SimpleNamespace

    from badkv.security.tokens import SystemTable

    store = SimpleNamespace(system_version=2, records={"old"})
    reading_old, finish_old = threading.Event(), threading.Event()

    def live_records(tenant):
        records = set(store.records)
        if records == {"old"} and threading.current_thread().name == "late":
            reading_old.set()
            finish_old.wait(5)
        return records

    store.live_records = live_records
    table = SystemTable(store, "_auth", lambda records: {name: True for name in records})
    late = threading.Thread(target=table.current, name="late")
    late.start()
    assert reading_old.wait(5)
    store.system_version, store.records = 3, {"new"}  # the rotation applies meanwhile
    assert table.current() == {"new": True}
    finish_old.set()
    late.join(5)

    def no_rebuild(tenant):
        raise AssertionError("version 3 is installed: nothing to rebuild")

    store.live_records = no_rebuild
    assert table.current() == {"new": True}
