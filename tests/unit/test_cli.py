"""The command line refuses unusable configuration before doing anything."""

from __future__ import annotations

import os
import subprocess
import sys

PRODUCTION_SECRETS = {
    "HEYSH_ENV": "production",
    "HEYSH_DATABASE_URL": "postgresql://heysh:s3cr3t-db-pass@db.internal:5432/postgres",
    "HEYSH_NEO4J_PASSWORD": "n3o-pass-0a9f",
    "HEYSH_WEAVIATE_API_KEY": "wv-key-77c1",
    "HEYSH_TEMPORAL_API_KEY": "tmprl-key-91aa",
    "HEYSH_SUPABASE_URL": "https://abcdefgh.supabase.co",
    "HEYSH_SUPABASE_JWT_SECRET": "jwt-secret-4f8e2d1c9b",
}


def heysh(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HEYSH_")}
    return subprocess.run(
        [sys.executable, "-m", "heysh", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_api_refuses_to_start_in_production_with_placeholder_secrets() -> None:
    env = {**PRODUCTION_SECRETS, "HEYSH_NEO4J_PASSWORD": "changeme"}
    del env["HEYSH_WEAVIATE_API_KEY"]
    result = heysh("api", env=env)
    assert result.returncode == 2
    assert "HEYSH_NEO4J_PASSWORD" in result.stderr
    assert "HEYSH_WEAVIATE_API_KEY" in result.stderr
    for secret in ("s3cr3t-db-pass", "tmprl-key-91aa", "jwt-secret-4f8e2d1c9b", "changeme"):
        assert secret not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_token_command_refuses_outside_dev_and_never_prints_the_secret() -> None:
    result = heysh("token", "--user", "alice", env=PRODUCTION_SECRETS)
    assert result.returncode == 2
    assert "dev" in result.stderr
    assert result.stdout == ""
    assert "jwt-secret-4f8e2d1c9b" not in result.stderr


def test_token_command_prints_a_token_in_dev() -> None:
    result = heysh("token", "--user", "alice", env={"HEYSH_ENV": "dev"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(".") == 2  # header.payload.signature
