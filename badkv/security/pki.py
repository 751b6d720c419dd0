"""A small PKI for one cluster: a self-signed CA and the node and client certificates it signs.

Files are PEM: ``ca.crt``/``ca.key`` for the CA, ``NAME.crt``/``NAME.key`` for
each certificate it issues. Private keys are created with mode 0600 from the
start (``os.open`` with the mode), so no other user can read one even for a
moment, and no existing file is replaced unless the caller asks for it.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from badkv.errors import BadkvError

logger = logging.getLogger(__name__)

CA_DAYS = 3650
CERT_DAYS = 365
# Clocks of the machines in a cluster differ a little; a certificate made a moment ago must already be valid.
CLOCK_SKEW = datetime.timedelta(minutes=5)
KEY_MODE = 0o600


class PkiError(BadkvError):
    """A certificate could not be made; the message names the file and the fix."""

    status = 400
    code = "pki"


@dataclass(frozen=True)
class Issued:
    """The two files one ``init`` or ``issue`` wrote."""

    certificate: Path
    key: Path


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _new_key() -> ec.EllipticCurvePrivateKey:
    # P-256: small, fast handshakes, supported by every TLS client badkv meets (curl, requests, openssl).
    return ec.generate_private_key(ec.SECP256R1())


def _write_new(path: Path, data: bytes, mode: int, force: bool) -> None:
    """Write ``data`` to a file created with ``mode``; refuse an existing file unless ``force``."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    if force and path.exists():
        path.unlink()  # so the new file gets ``mode`` even if the old one had another
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError:
        raise PkiError(f"{path} already exists; use --force to replace it") from None
    with os.fdopen(fd, "wb") as file:
        file.write(data)


def _refuse_existing(paths: tuple[Path, ...], force: bool) -> None:
    """Check every file before writing any, so a refusal leaves no half-made pair behind."""
    for path in paths if not force else ():
        if path.exists():
            raise PkiError(f"{path} already exists; use --force to replace it")


def _save(directory: Path, stem: str, certificate: x509.Certificate, key, force: bool) -> Issued:
    issued = Issued(directory / f"{stem}.crt", directory / f"{stem}.key")
    _refuse_existing((issued.certificate, issued.key), force)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    _write_new(issued.key, key_pem, KEY_MODE, force)
    _write_new(issued.certificate, certificate.public_bytes(serialization.Encoding.PEM), 0o644, force)
    return issued


def create_ca(directory: str | os.PathLike, *, days: int = CA_DAYS, force: bool = False,
              common_name: str = "badkv CA") -> Issued:
    """Write ``ca.crt`` and ``ca.key`` in ``directory`` (created if missing): a self-signed CA."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW).not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    issued = _save(directory, "ca", certificate, key, force)
    logger.info("made CA %s (valid %d days)", issued.certificate, days)
    return issued


def load_ca(directory: str | os.PathLike) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    directory = Path(directory)
    try:
        certificate = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
        key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), password=None)
    except FileNotFoundError as error:
        raise PkiError(f"{error.filename} is missing; run 'badkvctl certs init --dir {directory}' first") from None
    except ValueError as error:
        raise PkiError(f"the CA in {directory} cannot be read: {error}") from None
    return certificate, key


def subject_alternative_names(hosts: list[str]) -> list[x509.GeneralName]:
    """An IP SAN for each IP address, a DNS SAN for each name."""
    names: list[x509.GeneralName] = []
    for host in (h.strip() for h in hosts):
        if not host:
            continue
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host.strip("[]"))))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def issue(directory: str | os.PathLike, name: str, hosts: list[str], *, client: bool = False,
          days: int = CERT_DAYS, force: bool = False) -> Issued:
    """Write ``NAME.crt`` and ``NAME.key`` signed by the CA in ``directory``.

    A node certificate serves (serverAuth) and calls its peers (clientAuth); a
    ``client`` certificate only calls (clientAuth) and may have no hosts.
    """
    if not name or "/" in name or name.startswith(".") or name == "ca":
        raise PkiError(f"{name!r} cannot name a certificate (no '/', no leading '.', not 'ca')")
    sans = subject_alternative_names(hosts)
    if not sans and not client:
        raise PkiError(f"a node certificate needs at least one --host (the names and addresses {name} serves on)")
    directory = Path(directory)
    ca_certificate, ca_key = load_ca(directory)
    key = _new_key()
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [ExtendedKeyUsageOID.SERVER_AUTH,
                                                              ExtendedKeyUsageOID.CLIENT_AUTH]
    now = _now()
    builder = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_certificate.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW).not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    issued = _save(directory, name, builder.sign(ca_key, hashes.SHA256()), key, force)
    logger.info("issued %s certificate %s for %s (valid %d days)", "client" if client else "node",
                issued.certificate, ", ".join(hosts) or "no hosts", days)
    return issued
