"""Postgres 15 from Debian's binaries, run in the foreground as its own server (not pg_ctl)."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

from heysh.local.services.supervision import LocalService, ServiceError, unsearchable_ancestor
from heysh.local.tls import ServerSecurity

# The secure profile's client authentication: TLS and a SCRAM password on TCP, a password on the
# socket; no `host` (plain TCP) line and no `trust`, so nothing connects without both.
_SECURE_HBA = """# written by heysh on every secure start
local   all all              scram-sha-256
hostssl all all 127.0.0.1/32 scram-sha-256
hostssl all all ::1/128      scram-sha-256
"""

# Supabase's API roles, created as Supabase's own init script does, so row level security can be
# tested locally exactly as it behaves on a hosted project.
_SUPABASE_ROLES_SQL = """
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'anon') THEN
    CREATE ROLE anon NOLOGIN NOINHERIT;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticated') THEN
    CREATE ROLE authenticated NOLOGIN NOINHERIT;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'service_role') THEN
    CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
  END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
""" + "".join(
    f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON {kind} TO anon, authenticated, "
    "service_role;\n"
    for kind in ("TABLES", "FUNCTIONS", "SEQUENCES")
)


def postgres_dsn(port: int, *, password: str | None = None, ca_file: Path | None = None) -> str:
    """The superuser's connection string; with a password (the secure profile) it verifies the
    server against ``ca_file``: its certificate and its name (``verify-full``)."""
    if password is None or ca_file is None:
        return f"postgresql://postgres@127.0.0.1:{port}/postgres"
    query = urlencode({"sslmode": "verify-full", "sslrootcert": str(ca_file)})
    return f"postgresql://postgres:{quote(password, safe='')}@127.0.0.1:{port}/postgres?{query}"


@dataclass(eq=False, repr=False)
class PostgresService(LocalService):
    name = "postgres"
    # SIGINT is Postgres's "fast" shutdown; SIGTERM is "smart" and would wait for clients to leave,
    # e.g. forever for a dev api process that outlived a killed `heysh dev`.
    stop_signal = signal.SIGINT

    data_dir: Path
    port: int
    bin_dir: Path
    _: KW_ONLY
    ephemeral: bool = False
    security: ServerSecurity | None = None  # the secure profile: TLS and passwords only

    @property
    def socket_dir(self) -> Path:
        return self.data_dir.parent / "socket"

    @property
    def _tls_dir(self) -> Path:
        return self.data_dir.parent / "tls"

    @property
    def _profile_file(self) -> Path:
        return self.data_dir.parent / "profile"

    @property
    def _profile(self) -> str:
        return "plain" if self.security is None else "secure"

    @property
    def ports(self) -> dict[str, int]:
        return {"postgres": self.port}

    @property
    def dsn(self) -> str:
        security = self.security
        if security is None:
            return postgres_dsn(self.port)
        return postgres_dsn(self.port, password=security.password, ca_file=security.pki.ca_file)

    def run_as(self) -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        try:  # Postgres refuses to run as root
            return pwd.getpwnam("postgres")
        except KeyError:
            raise ServiceError(self.name, "running as root needs a `postgres` OS user") from None

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)  # Postgres refuses a data dir others can read
        if (user := self.run_as()) is not None:
            self.data_dir.parent.chmod(0o755)
            if (blocked := unsearchable_ancestor(self.data_dir, user)) is not None:
                raise ServiceError(
                    self.name,
                    f"{blocked} is not searchable by the `postgres` OS user, which Postgres runs "
                    "as under root; put the data elsewhere or `chmod o+x` it",
                )
            for directory in (self.data_dir, self.socket_dir):
                os.chown(directory, user.pw_uid, user.pw_gid)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(user)
            self._profile_file.write_text(self._profile + "\n")
        made = self._profile_file.read_text().strip() if self._profile_file.exists() else "plain"
        if made != self._profile:  # the superuser's password exists only if initdb set it
            raise ServiceError(
                self.name,
                f"{self.data_dir} was made by the {made} profile; start it {made}, "
                "or delete it to start afresh",
            )
        if self.security is not None:
            self.security.pki.copy_for(self._tls_dir, user)  # it refuses a key it does not own
            (self._tls_dir / "pg_hba.conf").write_text(_SECURE_HBA)
            if user is not None:
                os.chown(self._tls_dir / "pg_hba.conf", user.pw_uid, user.pw_gid)

    def _initdb(self, user: pwd.struct_passwd | None) -> None:
        initdb = [str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", "postgres"]
        initdb += ["--encoding=UTF8", "--no-locale"]
        if self.security is None:
            self._run_step([*initdb, "-A", "trust"], user)
            return
        # The password goes through a file (never argv or the log), removed once initdb read it.
        pwfile = self.data_dir.parent / "initdb-password"
        pwfile.unlink(missing_ok=True)
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(self.security.password + "\n")
        try:
            if user is not None:
                os.chown(pwfile, user.pw_uid, user.pw_gid)
            self._run_step([*initdb, "-A", "scram-sha-256", f"--pwfile={pwfile}"], user)
        finally:
            pwfile.unlink(missing_ok=True)

    def command(self) -> list[str]:
        cmd = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        cmd += ["-k", str(self.socket_dir), "-c", "listen_addresses=127.0.0.1"]
        if self.ephemeral:  # test data is thrown away, so durability only costs time
            cmd += ["-c", "fsync=off", "-c", "synchronous_commit=off"]
        if self.security is not None:
            tls = self._tls_dir
            cmd += ["-c", "ssl=on", "-c", f"ssl_cert_file={tls / 'server.pem'}"]
            cmd += [
                "-c",
                f"ssl_key_file={tls / 'server.key'}",
                "-c",
                f"hba_file={tls / 'pg_hba.conf'}",
            ]
            cmd += ["-c", "password_encryption=scram-sha-256"]
        return cmd

    def probe(self) -> None:
        import psycopg  # imported on use: the clients cost ~4 s to import, services none of it

        isready = [str(self.bin_dir / "pg_isready"), "-q", "-t", "2", "-h", "127.0.0.1"]
        # Named user: by default it logs in as the OS user ("role root does not exist").
        isready += ["-p", str(self.port), "-U", "postgres", "-d", "postgres"]
        if subprocess.run(isready, check=False).returncode != 0:
            raise ConnectionError("pg_isready: not accepting connections")
        with psycopg.connect(self.dsn, connect_timeout=3) as conn:
            conn.execute("SELECT 1")

    def after_ready(self) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(_SUPABASE_ROLES_SQL)
