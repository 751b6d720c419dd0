"""The Python client's TLS options: the scheme an endpoint gets, what it verifies against, what it presents."""

from badkv.client import Client, ClientError

import pytest


def test_an_endpoint_without_a_scheme_is_https_when_a_ca_is_given():
    assert Client("127.0.0.1:10001", ca_file="ca.crt").endpoint == "https://127.0.0.1:10001"
    assert Client("127.0.0.1:10001").endpoint == "http://127.0.0.1:10001"
    assert Client("http://127.0.0.1:10001", ca_file="ca.crt").endpoint == "http://127.0.0.1:10001"


def test_the_session_verifies_against_the_ca_and_presents_the_certificate():
    client = Client("https://127.0.0.1:1", ca_file="ca.crt", cert=("ops.crt", "ops.key"))
    assert client.session.verify == "ca.crt"
    assert client.session.cert == ("ops.crt", "ops.key")
    assert Client("https://127.0.0.1:1").session.verify is True


def test_a_ca_file_that_cannot_be_read_is_a_client_error(tmp_path):
    client = Client("https://127.0.0.1:1", ca_file=str(tmp_path / "missing.crt"), timeout=1)
    with pytest.raises(ClientError) as failed:
        client.stats()
    assert failed.value.status == 0 and "missing.crt" in failed.value.message
