"""Applies the SQL migrations in ``supabase/migrations`` with yoyo (no hand-written runner).

The files follow the Supabase CLI layout, so ``supabase db push`` applies the same files to a
hosted project. yoyo keeps its bookkeeping tables in the ``heysh`` schema, which Supabase's Data
API roles cannot use.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
from yoyo import get_backend, read_migrations

SCHEMA = "heysh"


def migrations_dir() -> Path:
    configured = os.environ.get("HEYSH_MIGRATIONS_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "supabase" / "migrations"


def apply_migrations(database_url: str, directory: Path | None = None) -> list[str]:
    """Apply pending migrations; returns the ids applied (empty when up to date)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"create schema if not exists {SCHEMA}")
    separator = "&" if "?" in database_url else "?"
    uri = database_url.replace("postgresql://", "postgresql+psycopg://", 1).replace(
        "postgres://", "postgresql+psycopg://", 1
    )
    backend = get_backend(f"{uri}{separator}schema={SCHEMA}")
    migrations = read_migrations(str(directory or migrations_dir()))
    try:
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
    finally:
        backend.connection.close()
    return [m.id for m in pending]
