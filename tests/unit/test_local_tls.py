"""The secure profile's throwaway PKI, and how heysh's Neo4j client trusts a private CA."""

from __future__ import annotations

import ipaddress
import json
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtensionOID
from neo4j import TrustCustomCAs
from pydantic import ValidationError

from heysh.config import Settings
from heysh.local.services import TlsProxyService, TlsRoute
from heysh.local.stack import DEV_PORTS, LocalStack, free_test_ports
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


def test_credentials_are_made_once_and_a_data_dir_from_before_api_keys_gets_only_the_new_ones(
    tmp_path: Path,
) -> None:
    stack = LocalStack(tmp_path, DEV_PORTS, ephemeral=True, secure=True)
    path = stack.pki.directory / "passwords.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"postgres": "kept-pg", "neo4j": "kept-neo4j"}))  # older layout
    made = stack.passwords()
    assert made["postgres"] == "kept-pg"
    assert made["neo4j"] == "kept-neo4j"  # the servers' passwords were set with these
    assert len({made["weaviate"], made["temporal"], "kept-pg"}) == 3
    assert stack.passwords() == made == json.loads(path.read_text())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_secure_settings_reach_every_store_over_tls_with_its_credential(
    tmp_path: Path,
) -> None:
    ports = free_test_ports()
    stack = LocalStack(tmp_path, ports, ephemeral=True, secure=True)
    stack.pki.ensure()  # start() makes it
    env = stack.settings_env()
    made = stack.passwords()
    assert env["HEYSH_WEAVIATE_URL"] == f"https://127.0.0.1:{ports.weaviate_http}"
    assert env["HEYSH_WEAVIATE_API_KEY"] == made["weaviate"]
    assert env["HEYSH_TEMPORAL_API_KEY"] == made["temporal"]
    settings = stack.test_settings()
    assert settings.temporal_tls_enabled  # an API key turns TLS on, as for Temporal Cloud
    assert settings.neo4j_uri.startswith("bolt+s://")
    assert "sslmode=verify-full" in settings.database_url.get_secret_value()
    assert settings.tls_ca_file == stack.pki.ca_file


def test_the_proxy_refuses_temporal_calls_without_the_key_and_serves_no_http3(
    tmp_path: Path,
) -> None:
    pki = LocalPki(tmp_path / "pki").ensure()
    routes = [
        TlsRoute("weaviate-https", 1001, 2001),
        TlsRoute("temporal", 1003, 2003, grpc=True, api_key="k-123"),
    ]
    proxy = TlsProxyService(tmp_path / "proxy", Path("caddy"), routes, pki=pki, log_path=tmp_path)
    proxy.prepare()
    config_file = tmp_path / "proxy" / "caddy.json"
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600  # it holds the API key
    servers = json.loads(config_file.read_text())["apps"]["http"]["servers"]
    assert all(server["protocols"] == ["h1", "h2"] for server in servers.values())
    weaviate, temporal = servers["weaviate-https"], servers["temporal"]
    assert len(weaviate["routes"]) == 1  # Weaviate checks its own key
    refusal, forward = temporal["routes"]
    assert refusal["match"] == [{"not": [{"header": {"Authorization": ["Bearer k-123"]}}]}]
    assert refusal["handle"][0]["headers"]["Grpc-Status"] == ["16"]
    assert forward["handle"][0]["upstreams"] == [{"dial": "127.0.0.1:2003"}]
    assert forward["handle"][0]["transport"]["versions"] == ["h2c"]
