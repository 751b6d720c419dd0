"""The CA and the certificates it signs: files, modes, SANs, usages, refusals, and a chain that verifies."""

from __future__ import annotations

import ipaddress
import os
import stat

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from badkv.security import pki


def load(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


@pytest.fixture
def ca_dir(tmp_path):
    pki.create_ca(tmp_path)
    return tmp_path


def test_init_writes_a_self_signed_ca_with_a_private_key(tmp_path):
    issued = pki.create_ca(tmp_path / "certs")
    ca = load(issued.certificate)
    assert ca.issuer == ca.subject
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    ca.verify_directly_issued_by(ca)
    assert stat.S_IMODE(os.stat(issued.key).st_mode) == 0o600
    assert (ca.not_valid_after_utc - ca.not_valid_before_utc).days >= 3650


def test_a_key_is_created_0600_even_under_a_permissive_umask(tmp_path):
    old = os.umask(0)
    try:
        issued = pki.create_ca(tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(issued.key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(issued.certificate).st_mode) == 0o644


def test_a_node_certificate_has_a_san_per_host_and_both_usages(ca_dir):
    issued = pki.issue(ca_dir, "n1", ["127.0.0.1", "localhost", "::1", "n1.example"])
    cert = load(issued.certificate)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1"),
                                                         ipaddress.ip_address("::1")]
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", "n1.example"]
    usages = list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert usages == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    assert stat.S_IMODE(os.stat(issued.key).st_mode) == 0o600


def test_a_client_certificate_is_for_clientauth_only(ca_dir):
    cert = load(pki.issue(ca_dir, "ops", [], client=True).certificate)
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH]


def test_the_chain_verifies_against_the_ca_and_not_against_another(ca_dir, tmp_path_factory):
    cert = load(pki.issue(ca_dir, "n1", ["127.0.0.1"]).certificate)
    ca = load(ca_dir / "ca.crt")
    store = x509.verification.Store([ca])
    verifier = x509.verification.PolicyBuilder().store(store).build_server_verifier(
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    assert verifier.verify(cert, [])[-1] == ca
    other = tmp_path_factory.mktemp("other")
    pki.create_ca(other)
    foreign = x509.verification.PolicyBuilder().store(x509.verification.Store([load(other / "ca.crt")]))
    with pytest.raises(x509.verification.VerificationError):
        foreign.build_server_verifier(x509.IPAddress(ipaddress.ip_address("127.0.0.1"))).verify(cert, [])


def test_existing_files_are_kept_unless_forced(ca_dir):
    before = (ca_dir / "ca.crt").read_bytes()
    with pytest.raises(pki.PkiError, match="ca.crt already exists; use --force"):
        pki.create_ca(ca_dir)
    assert (ca_dir / "ca.crt").read_bytes() == before
    pki.issue(ca_dir, "n1", ["127.0.0.1"])
    key = (ca_dir / "n1.key").read_bytes()
    with pytest.raises(pki.PkiError, match="n1.crt already exists"):
        pki.issue(ca_dir, "n1", ["127.0.0.1"])
    assert (ca_dir / "n1.key").read_bytes() == key
    pki.issue(ca_dir, "n1", ["127.0.0.1"], force=True)
    assert (ca_dir / "n1.key").read_bytes() != key
    assert stat.S_IMODE(os.stat(ca_dir / "n1.key").st_mode) == 0o600


def test_issue_needs_a_ca_and_a_host(tmp_path, ca_dir):
    with pytest.raises(pki.PkiError, match="certs init"):
        pki.issue(tmp_path / "empty", "n1", ["127.0.0.1"])
    with pytest.raises(pki.PkiError, match="at least one --host"):
        pki.issue(ca_dir, "n1", [])
    with pytest.raises(pki.PkiError, match="cannot name"):
        pki.issue(ca_dir, "../n1", ["127.0.0.1"])
    assert not (ca_dir / "n1.key").exists()
