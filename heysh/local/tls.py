"""The secure profile's throwaway PKI: one CA and one server certificate for 127.0.0.1/localhost.

Made with trustme on the first secure start under the stack's root and reused after that (a dev
stack's clients keep trusting the same CA); nothing here is ever committed. The keys are PEM in
PKCS #8, the one form both Postgres (OpenSSL) and Neo4j (Netty) read, mode 0600. Postgres runs as
the `postgres` OS user under root and refuses a key it does not own, so it gets a copy of its own.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass, field
from pathlib import Path

# The names every local service listens on and every client connects with.
SERVER_NAMES = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class LocalPki:
    directory: Path

    @property
    def ca_file(self) -> Path:
        """The CA certificate clients verify against (HEYSH_TLS_CA_FILE, libpq's sslrootcert)."""
        return self.directory / "ca.pem"

    @property
    def cert_file(self) -> Path:
        return self.directory / "server.pem"

    @property
    def key_file(self) -> Path:
        return self.directory / "server.key"

    def ensure(self) -> LocalPki:
        """Make the CA and the server certificate unless both are already there."""
        if all(path.exists() for path in (self.ca_file, self.cert_file, self.key_file)):
            return self
        # Imported on use: only a secure start needs it.
        import trustme
        from cryptography.hazmat.primitives.serialization import (
            Encoding,
            NoEncryption,
            PrivateFormat,
            load_pem_private_key,
        )

        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        ca = trustme.CA(organization_name="heysh local secure profile (throwaway)")
        leaf = ca.issue_cert(*SERVER_NAMES)
        # trustme writes the traditional "EC PRIVATE KEY" form, which Netty cannot read.
        key = load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
        pkcs8 = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        write_owner_only(self.key_file, pkcs8)
        write_owner_only(self.cert_file, b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        # Last: its presence means the set is whole.
        write_owner_only(self.ca_file, ca.cert_pem.bytes())
        return self

    def copy_for(self, directory: Path, user: pwd.struct_passwd | None) -> tuple[Path, Path]:
        """The certificate and key in ``directory``, owned by ``user`` (who runs the server)."""
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
        cert, key = directory / self.cert_file.name, directory / self.key_file.name
        write_owner_only(cert, self.cert_file.read_bytes())
        write_owner_only(key, self.key_file.read_bytes())
        if user is not None:
            for path in (directory, cert, key):
                os.chown(path, user.pw_uid, user.pw_gid)
        return cert, key


@dataclass(frozen=True)
class ServerSecurity:
    """How a service runs in the secure profile: TLS from ``pki``, and ``password`` for its user."""

    pki: LocalPki
    password: str = field(repr=False)


def write_owner_only(path: Path, data: bytes) -> None:
    """Write ``data`` readable by its owner alone from the first byte (never at umask's mode),
    replacing ``path`` at once: a reader sees the old file or the new one, never half of it."""
    staging = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    staging.unlink(missing_ok=True)
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    os.replace(staging, path)
