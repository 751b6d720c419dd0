"""``badkvctl certs init|issue``: the files they write, their exit statuses and their messages."""

from __future__ import annotations

import pytest
from cryptography import x509

from badkv.ctl import EXIT_REFUSED, build_parser, main


def ctl(*argv) -> int:
    with pytest.raises(SystemExit) as done:
        main(list(argv))
    return done.value.code


def test_init_then_issue_a_node_and_a_client_certificate(tmp_path, capsys):
    assert ctl("certs", "init", "--dir", str(tmp_path)) == 0
    assert ctl("certs", "issue", "n1", "--host", "127.0.0.1,localhost", "--dir", str(tmp_path)) == 0
    assert ctl("certs", "issue", "ops", "--client", "--dir", str(tmp_path)) == 0
    assert f"wrote {tmp_path / 'n1.crt'} and {tmp_path / 'n1.key'}" in capsys.readouterr().out
    cert = x509.load_pem_x509_certificate((tmp_path / "n1.crt").read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert (tmp_path / "ops.key").exists()


def test_an_existing_file_is_refused_with_3_naming_it_and_replaced_with_force(tmp_path, capsys):
    assert ctl("certs", "init", "--dir", str(tmp_path)) == 0
    before = (tmp_path / "ca.key").read_bytes()
    assert ctl("certs", "init", "--dir", str(tmp_path)) == EXIT_REFUSED
    assert f"{tmp_path / 'ca.crt'} already exists; use --force" in capsys.readouterr().err
    assert (tmp_path / "ca.key").read_bytes() == before
    assert ctl("certs", "init", "--dir", str(tmp_path), "--force") == 0
    assert (tmp_path / "ca.key").read_bytes() != before


def test_issue_without_a_ca_is_refused_with_3(tmp_path, capsys):
    assert ctl("certs", "issue", "n1", "--host", "127.0.0.1", "--dir", str(tmp_path)) == EXIT_REFUSED
    assert "certs init" in capsys.readouterr().err


def test_tls_options_come_from_flags_or_the_environment(monkeypatch):
    monkeypatch.setenv("BADKV_CA_FILE", "/env/ca.crt")
    args = build_parser().parse_args(["--cert-file", "c.crt", "--key-file", "c.key", "stats"])
    assert (args.ca_file, args.cert_file, args.key_file) == ("/env/ca.crt", "c.crt", "c.key")
