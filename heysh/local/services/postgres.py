"""Postgres 15 from Debian's binaries, run in the foreground as its own server (not pg_ctl)."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
from dataclasses import KW_ONLY, dataclass
from pathlib import Path

from heysh.local.services.supervision import LocalService, ServiceError, unsearchable_ancestor

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

    @property
    def socket_dir(self) -> Path:
        return self.data_dir.parent / "socket"

    @property
    def ports(self) -> dict[str, int]:
        return {"postgres": self.port}

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

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
            initdb = [str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-A", "trust"]
            self._run_step([*initdb, "-U", "postgres", "--encoding=UTF8", "--no-locale"], user)

    def command(self) -> list[str]:
        cmd = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        cmd += ["-k", str(self.socket_dir), "-c", "listen_addresses=127.0.0.1"]
        if self.ephemeral:  # test data is thrown away, so durability only costs time
            cmd += ["-c", "fsync=off", "-c", "synchronous_commit=off"]
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
