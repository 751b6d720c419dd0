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


class _ScriptedClient(Client):
    """A client whose takes answer from a script: a page, or a ClientError to raise."""

    def __init__(self, script):
        super().__init__("http://127.0.0.1:1")
        self.script, self.asked = list(script), []

    def take(self, since=0, **query):
        self.asked.append((since, query.get("wait")))
        answer = self.script.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def _page(revisions, next_cursor):
    return {"records": [{"revision": revision} for revision in revisions], "next": next_cursor, "revision": 0}


def test_watch_passes_next_back_and_retries_from_the_same_cursor_with_a_growing_pause():
    pauses = []
    client = _ScriptedClient([_page([5, 6], 7), ClientError(0, "unreachable", "down"),
                              ClientError(503, "unavailable", "no leader"), _page([], 9), _page([9], 10)])
    watched = client.watch("t", cursor=5, wait=2, max_backoff=0.15, sleep=pauses.append)
    assert [next(watched)["revision"] for _ in range(3)] == [5, 6, 9]
    assert client.asked == [(5, 2), (7, 2), (7, 2), (7, 2), (9, 2)]
    assert pauses == [0.1, 0.15]


def test_watch_starts_after_the_applied_revision_without_a_cursor_and_gives_up_on_a_refusal():
    client = _ScriptedClient([{"records": [], "next": 2 ** 63 - 1, "revision": 41}, _page([42], 43),
                              ClientError(403, "forbidden", "not yours")])
    watched = client.watch("t", sleep=lambda _: None)
    assert next(watched)["revision"] == 42
    with pytest.raises(ClientError):
        next(watched)
    assert [since for since, _ in client.asked] == [2 ** 63 - 1, 42, 43]
