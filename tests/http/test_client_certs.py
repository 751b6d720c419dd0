"""With TLS configured, ``/cluster/v1`` takes only calls whose connection presented a verified client certificate."""

from __future__ import annotations

import dataclasses
import ssl
from pathlib import Path

import msgpack
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from badkv.app import create_app
from badkv.config import Config
from badkv.http import serving
from badkv.http.client_certs import verified_peer_subject
from badkv.security import pki
from badkv.security.peer_auth import Signer

STALE_APPEND = msgpack.packb({"term": 0, "leader": "t2", "prev_index": 5, "prev_term": 0, "entries": [],
                              "leader_commit": 0, "seq": 1})
THREE = "t1=127.0.0.1:1,t2=127.0.0.1:2,t3=127.0.0.1:3"


class VerifiedSocket:
    """What gunicorn puts in the environ as ``gunicorn.socket`` for a caller whose certificate verified."""

    def __init__(self, certificate_file=None, name: str = "n2"):
        self.name = name
        self.der = x509.load_pem_x509_certificate(Path(certificate_file).read_bytes()).public_bytes(
            serialization.Encoding.DER) if certificate_file else b""

    def getpeercert(self, binary_form: bool = False):
        return self.der if binary_form else {"subject": ((("commonName", self.name),),)}


class PlainSocket:
    def getpeercert(self):
        return None


@pytest.fixture
def certificates(tmp_path):
    """t2's and t3's node certificates and alice's client certificate, from t1's CA."""
    return {name: pki.issue(tmp_path, name, [] if name == "alice" else ["127.0.0.1"], client=name == "alice").certificate
            for name in ("t2", "t3", "alice")}


@pytest.fixture
def tls_config(tmp_path):
    pki.create_ca(tmp_path)
    issued = pki.issue(tmp_path, "t1", ["127.0.0.1"])
    return Config.from_sources({"name": "t1", "cluster": THREE, "in_memory": True, "cert_file": str(issued.certificate),
                                "key_file": str(issued.key), "ca_file": str(tmp_path / "ca.crt")})


@pytest.fixture
def tls_client(tls_config):
    app = create_app(tls_config)
    yield app.test_client()
    app.extensions["badkv_node"].stop()


def append(client, sock):
    """A stale append from member t2 (named, unsigned: these nodes have no cluster secret)."""
    node = client.application.extensions["badkv_node"]
    headers = Signer(None, cluster=node.config.cluster_id, sender="t2", instance="i2").headers(
        "POST", "/cluster/v1/append", STALE_APPEND, node.name)
    return client.post("/cluster/v1/append", data=STALE_APPEND, content_type="application/msgpack", headers=headers,
                       environ_base={"gunicorn.socket": sock} if sock else {})


@pytest.mark.parametrize("sock", [None, PlainSocket()])
def test_a_peer_call_without_a_verified_certificate_is_401(tls_client, sock, caplog):
    answer = append(tls_client, sock)
    assert answer.status_code == 401
    assert answer.get_json()["error"] == "unauthenticated"
    assert "t1: refused POST /cluster/v1/append" in caplog.text


def test_a_peer_call_with_the_senders_node_certificate_reaches_the_node(tls_client, certificates):
    answer = append(tls_client, VerifiedSocket(certificates["t2"], "t2"))
    assert answer.status_code == 200
    assert msgpack.unpackb(answer.data)["success"] is False  # answered (it lacks entry 5), and nothing changed


@pytest.mark.parametrize("holder, said", [
    ("alice", "its certificate is not a node certificate (no serverAuth usage)"),  # an operator's client certificate
    ("t3", "its certificate names 't3', the call says it comes from 't2'"),  # another member's
])
def test_a_certificate_of_the_ca_that_does_not_name_the_sender_is_401(tls_client, certificates, holder, said, caplog):
    answer = append(tls_client, VerifiedSocket(certificates[holder], holder))
    assert answer.status_code == 401 and answer.get_json()["error"] == "unauthenticated"
    assert said in caplog.text


@pytest.mark.parametrize("config_values", [{"cluster": THREE}])
def test_without_tls_the_check_is_off(client):
    assert append(client, None).status_code == 200


def test_the_subject_of_the_verified_certificate():
    assert verified_peer_subject({"gunicorn.socket": VerifiedSocket()}) == "commonName=n2"
    assert verified_peer_subject({"gunicorn.socket": PlainSocket()}) is None
    assert verified_peer_subject({}) is None


def test_gunicorn_serves_tls_with_client_certificates_requested_not_required(tls_config, config):
    settings = serving.gunicorn_settings(tls_config)
    assert (settings["certfile"], settings["keyfile"], settings["ca_certs"]) == (
        tls_config.cert_file, tls_config.key_file, tls_config.ca_file)
    assert settings["cert_reqs"] == ssl.CERT_OPTIONAL
    assert settings["worker_class"] == "badkv.http.worker.PeerAwareThreadWorker"
    alone = dataclasses.replace(tls_config, cluster=(("t1", tls_config.listen),))
    assert serving.gunicorn_settings(alone)["worker_class"] == "badkv.http.worker.TlsThreadWorker"
    plain = serving.gunicorn_settings(config)
    assert "certfile" not in plain and plain["worker_class"] == "badkv.http.worker.TlsThreadWorker"
