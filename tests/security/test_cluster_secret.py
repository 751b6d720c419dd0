"""Tests for badkv/security/cluster_secret.py: the secret comes from a file or the environment, once, and a
missing, empty or short one is refused with a sentence that never shows the secret."""

import pytest

from badkv.config import Config
from badkv.errors import ConfigError
from badkv.security.cluster_secret import load_cluster_secret

GOOD = "0123456789abcdef0123456789abcdef"


def config(**values) -> Config:
    return Config.from_sources({"name": "n1", "in_memory": True, **values})


def test_no_secret_is_none():
    assert load_cluster_secret(config()) is None


def test_the_file_is_read_and_its_trailing_newline_stripped(tmp_path):
    path = tmp_path / "secret"
    path.write_text(GOOD + "\r\n")
    assert load_cluster_secret(config(cluster_secret_file=str(path))) == GOOD.encode()


def test_the_environment_gives_the_secret_too():
    assert load_cluster_secret(Config.from_sources({"name": "n1"}, environ={"BADKV_CLUSTER_SECRET": GOOD})) \
        == GOOD.encode()


@pytest.mark.parametrize("content, said", [("\n", "is empty"), ("short-secret\n", "holds 12 bytes")])
def test_an_empty_or_short_secret_is_refused(tmp_path, content, said):
    path = tmp_path / "secret"
    path.write_text(content)
    with pytest.raises(ConfigError, match=said) as refused:
        load_cluster_secret(config(cluster_secret_file=str(path)))
    assert "short-secret" not in str(refused.value)
    assert "openssl rand -hex 32" in str(refused.value)


def test_a_missing_file_is_refused_naming_it(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the cluster secret file .*nothing-here"):
        load_cluster_secret(config(cluster_secret_file=str(tmp_path / "nothing-here")))


def test_the_secret_is_not_in_the_config_repr():
    assert GOOD not in repr(config(cluster_secret=GOOD))
