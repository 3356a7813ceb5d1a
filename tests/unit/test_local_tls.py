"""The secure profile's throwaway PKI, and how heysh's Neo4j client trusts a private CA."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtensionOID
from neo4j import TrustCustomCAs
from pydantic import ValidationError

from heysh.config import Settings
from heysh.local.tls import LocalPki
from heysh.stores.graph import tls_options


def test_local_pki_makes_owner_only_pkcs8_key_and_a_certificate_the_ca_signed_for_loopback(
    tmp_path: Path,
) -> None:
    pki = LocalPki(tmp_path / "secure").ensure()
    for path in (pki.ca_file, pki.cert_file, pki.key_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(pki.directory.stat().st_mode) == 0o700
    # PKCS #8: the form Netty (Neo4j) reads; trustme's own "EC PRIVATE KEY" it cannot.
    assert pki.key_file.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    cert = x509.load_pem_x509_certificate(pki.cert_file.read_bytes())
    ca = x509.load_pem_x509_certificate(pki.ca_file.read_bytes())
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert "localhost" in names.get_values_for_type(x509.DNSName)


def test_local_pki_is_made_once_and_reused(tmp_path: Path) -> None:
    first = LocalPki(tmp_path).ensure().ca_file.read_bytes()
    assert LocalPki(tmp_path).ensure().ca_file.read_bytes() == first


def test_copy_for_a_service_keeps_the_key_owner_only(tmp_path: Path) -> None:
    pki = LocalPki(tmp_path / "secure").ensure()
    cert, key = pki.copy_for(tmp_path / "service", None)
    assert key.read_bytes() == pki.key_file.read_bytes()
    assert cert.read_bytes() == pki.cert_file.read_bytes()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


@pytest.mark.parametrize("scheme", ["neo4j+s", "bolt+s"])
def test_a_ca_file_makes_tls_uris_verify_against_it_alone(scheme: str, tmp_path: Path) -> None:
    ca = LocalPki(tmp_path).ensure().ca_file
    uri, options = tls_options(f"{scheme}://db.example:7687", ca)
    assert uri == f"{scheme.removesuffix('+s')}://db.example:7687"
    assert options["encrypted"] is True
    trust = options["trusted_certificates"]
    assert isinstance(trust, TrustCustomCAs)
    assert trust.certs == (str(ca),)


@pytest.mark.parametrize(
    ("uri", "ca"),
    [
        ("neo4j+s://x.databases.neo4j.io", None),  # production: the system's CAs, as before
        ("bolt://127.0.0.1:7687", "ca.pem"),  # the scheme decides TLS, not the CA setting
        ("neo4j+ssc://127.0.0.1:7687", "ca.pem"),
    ],
)
def test_other_uris_reach_the_driver_unchanged(uri: str, ca: str | None, tmp_path: Path) -> None:
    assert tls_options(uri, None if ca is None else tmp_path / ca) == (uri, {})


def test_a_ca_file_that_is_not_there_is_refused_by_its_setting_name(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="HEYSH_TLS_CA_FILE"):
        Settings(env="test", tls_ca_file=tmp_path / "missing.pem")
