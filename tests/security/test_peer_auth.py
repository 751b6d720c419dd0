"""Tests for badkv/security/peer_auth.py: a signed call passes; any change, a stale or future time, a second use
or a missing header is refused, saying which."""

import pytest

from badkv.security.peer_auth import (CLUSTER, INSTANCE, SENDER, SIGNATURE, TIMESTAMP, ReplayMemory,
                                      SignatureError, Signer, Verifier)

SECRET = b"0123456789abcdef0123456789abcdef"
PATH = "/cluster/v1/append"
BODY = b"\x81\xa4term\x01"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


def signed(clock, *, secret=SECRET, sender="n1", cluster="c1", receiver="n2", path=PATH, body=BODY) -> dict:
    return Signer(secret, cluster=cluster, sender=sender, instance="i1", clock=clock).headers("POST", path, body,
                                                                                              receiver)


def verifier(clock, receiver="n2") -> Verifier:
    return Verifier(SECRET, receiver=receiver, clock=clock)


def reason(check, clock, headers, *, path=PATH, body=BODY) -> str:
    with pytest.raises(SignatureError) as refused:
        check.verify("POST", path, body, headers)
    return refused.value.reason


def test_a_signed_call_passes(clock):
    headers = signed(clock)
    assert set(headers) == {CLUSTER, SENDER, INSTANCE, TIMESTAMP, SIGNATURE}
    verifier(clock).verify("POST", PATH, BODY, headers)


def test_without_a_secret_calls_carry_identity_but_no_signature(clock):
    headers = signed(clock, secret=None)
    assert headers == {CLUSTER: "c1", SENDER: "n1", INSTANCE: "i1"}


@pytest.mark.parametrize("change", ["body", "path", "sender", "cluster", "instance", "timestamp", "receiver"])
def test_any_change_to_a_signed_call_is_refused(clock, change):
    headers = signed(clock)
    path, body, receiver = PATH, BODY, "n2"
    if change == "body":
        body = BODY + b"x"
    elif change == "path":
        path = "/cluster/v1/vote"
    elif change == "receiver":
        receiver = "n3"  # a call captured on its way to n2, replayed to n3
    else:
        header = {"sender": SENDER, "cluster": CLUSTER, "instance": INSTANCE, "timestamp": TIMESTAMP}[change]
        headers[header] = "n3" if change != "timestamp" else str(float(headers[header]) + 1)
    assert reason(verifier(clock, receiver), clock, headers, path=path, body=body).startswith("bad:")


def test_another_secret_is_refused(clock):
    headers = signed(clock, secret=b"another secret of enough length!")
    assert reason(verifier(clock), clock, headers).startswith("bad:")


@pytest.mark.parametrize("skew, accepted", [(-30.5, False), (-29.5, True), (29.5, True), (30.5, False)])
def test_the_timestamp_must_be_within_30_seconds_either_way(clock, skew, accepted):
    headers = signed(clock)
    clock.now -= skew  # the receiver's clock: the call was signed ``skew`` seconds from it
    check = verifier(clock)
    if accepted:
        check.verify("POST", PATH, BODY, headers)
    else:
        assert reason(check, clock, headers).startswith("expired:")


def test_a_second_use_of_a_signature_is_refused(clock):
    headers, check = signed(clock), verifier(clock)
    check.verify("POST", PATH, BODY, headers)
    clock.now += 10
    assert reason(check, clock, headers).startswith("replayed:")
    check.verify("POST", PATH, BODY, signed(clock))  # a fresh signature for the same call is fine


@pytest.mark.parametrize("header, said", [(SIGNATURE, "no signature"), (TIMESTAMP, "no timestamp")])
def test_missing_headers_are_refused(clock, header, said):
    headers = signed(clock)
    del headers[header]
    text = reason(verifier(clock), clock, headers)
    assert text.startswith("missing:") and said in text


@pytest.mark.parametrize("stamp", ["soon", "nan", "inf"])
def test_a_timestamp_that_is_not_a_finite_number_is_refused(clock, stamp):
    headers = dict(signed(clock), **{TIMESTAMP: stamp})
    assert reason(verifier(clock), clock, headers).startswith("bad:")


def test_replay_memory_forgets_a_signature_once_its_timestamp_is_a_window_old():
    memory = ReplayMemory(window=30, capacity=10)
    memory.remember(b"a", timestamp=100, now=100)
    memory.remember(b"b", timestamp=110, now=110)
    with pytest.raises(SignatureError):
        memory.remember(b"a", timestamp=100, now=129)
    memory.remember(b"c", timestamp=131, now=131)  # past 100 + 30: "a" is forgotten, "b" is not
    assert len(memory) == 2
    with pytest.raises(SignatureError):
        memory.remember(b"b", timestamp=110, now=131)


def test_replay_memory_refuses_rather_than_forgets_when_full():
    memory = ReplayMemory(window=30, capacity=2)
    memory.remember(b"a", timestamp=100, now=100)
    memory.remember(b"b", timestamp=100, now=100)
    with pytest.raises(SignatureError, match="more than 2 signed calls"):
        memory.remember(b"c", timestamp=101, now=101)
    with pytest.raises(SignatureError, match="replayed"):
        memory.remember(b"a", timestamp=100, now=101)
    memory.remember(b"c", timestamp=131, now=131)  # room again once the first two expired
