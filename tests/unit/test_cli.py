"""The command line refuses unusable configuration before doing anything; `heysh token`."""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import jwt
import pytest

from heysh.auth import TokenVerifier
from heysh.config import Settings
from heysh.local.dev import token_command
from heysh.local.dev_state import (
    SECRET_FILE,
    STATE_FILE,
    DevStack,
    ensure_jwt_secret,
    write_state,
)
from heysh.local.users import user_id_for

PRODUCTION_SECRETS = {
    "HEYSH_ENV": "production",
    "HEYSH_DATABASE_URL": "postgresql://heysh:s3cr3t-db-pass@db.internal:5432/postgres",
    "HEYSH_NEO4J_PASSWORD": "n3o-pass-0a9f",
    "HEYSH_WEAVIATE_API_KEY": "wv-key-77c1",
    "HEYSH_TEMPORAL_API_KEY": "tmprl-key-91aa",
    "HEYSH_SUPABASE_URL": "https://abcdefgh.supabase.co",
    "HEYSH_SUPABASE_JWT_SECRET": "jwt-secret-4f8e2d1c9b",
}


DEV_ISSUER = "http://127.0.0.1:54321/auth/v1"


def heysh(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed `heysh` script, as the README runs it, with no HEYSH_ variables but ``env``.

    ``cwd`` matters: without HEYSH_ENV, `heysh token` looks for a dev stack in ``cwd/.heysh``.
    """
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HEYSH_")}
    script = Path(sys.executable).with_name("heysh")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "heysh"]
    return subprocess.run(
        [*command, *args],
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def dev_stack_in(root: Path, pid: int | None = None) -> str:
    """What a running `heysh dev` leaves in its data dir; returns the secret."""
    secret = ensure_jwt_secret(root)
    write_state(
        root,
        DevStack(
            pid=os.getpid() if pid is None else pid,
            api_url="http://127.0.0.1:8000",
            jwt_secret_file=str(root / SECRET_FILE),
            jwt_issuer=DEV_ISSUER,
            jwt_audience="authenticated",
        ),
    )
    return secret


async def accepted_by(secret: str, token: str) -> str:
    """The user id the api of a dev stack with ``secret`` reads from ``token``."""
    verifier = TokenVerifier(Settings(env="dev", supabase_jwt_secret=secret))
    try:
        return (await verifier.verify(token)).id
    finally:
        await verifier.aclose()


def test_api_refuses_to_start_in_production_with_placeholder_secrets(tmp_path: Path) -> None:
    env = {**PRODUCTION_SECRETS, "HEYSH_NEO4J_PASSWORD": "changeme"}
    del env["HEYSH_WEAVIATE_API_KEY"]
    result = heysh("api", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "HEYSH_NEO4J_PASSWORD" in result.stderr
    assert "HEYSH_WEAVIATE_API_KEY" in result.stderr
    for secret in ("s3cr3t-db-pass", "tmprl-key-91aa", "jwt-secret-4f8e2d1c9b", "changeme"):
        assert secret not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_token_command_refuses_outside_dev_and_never_prints_the_secret(tmp_path: Path) -> None:
    dev_stack_in(tmp_path / ".heysh")  # even beside a dev stack: production was asked for
    result = heysh("token", "--user", "alice", env=PRODUCTION_SECRETS, cwd=tmp_path)
    assert result.returncode == 2
    assert "dev" in result.stderr
    assert result.stdout == ""
    assert "jwt-secret-4f8e2d1c9b" not in result.stderr


def test_api_without_heysh_env_is_production_and_refuses_to_start_without_secrets(
    tmp_path: Path,
) -> None:
    result = heysh("api", env={}, cwd=tmp_path)
    assert result.returncode == 2
    assert "HEYSH_ENV=production" in result.stderr
    assert "HEYSH_SUPABASE_JWT_SECRET" in result.stderr
    assert "Traceback" not in result.stderr


async def test_token_command_in_dev_signs_with_the_configured_secret(tmp_path: Path) -> None:
    secret = secrets.token_urlsafe(32)
    env = {"HEYSH_ENV": "dev", "HEYSH_SUPABASE_JWT_SECRET": secret}
    result = heysh("token", "--user", "alice", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert await accepted_by(secret, result.stdout.strip()) == user_id_for("alice")
    assert secret not in result.stdout + result.stderr


async def test_token_without_heysh_env_is_for_the_dev_stack_running_from_the_checkout(
    tmp_path: Path,
) -> None:
    # `.venv/bin/heysh token --user alice` in the checkout, beside `make dev`, nothing exported.
    secret = dev_stack_in(tmp_path / ".heysh")
    result = heysh("token", "--user", "alice", env={}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert await accepted_by(secret, token) == user_id_for("alice")
    assert jwt.decode(token, options={"verify_signature": False})["iss"] == DEV_ISSUER


async def test_token_without_heysh_env_is_for_the_dev_stack_in_heysh_dev_dir(
    tmp_path: Path,
) -> None:
    secret = dev_stack_in(tmp_path / "elsewhere")
    env = {"HEYSH_DEV_DIR": str(tmp_path / "elsewhere")}
    result = heysh("token", "--user", "bob", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert await accepted_by(secret, result.stdout.strip()) == user_id_for("bob")


def test_token_without_heysh_env_refuses_in_one_line_when_no_dev_stack_runs(
    tmp_path: Path,
) -> None:
    result = heysh("token", "--user", "alice", env={}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "no dev stack is running" in result.stderr
    assert "make dev" in result.stderr


def test_token_refuses_a_dev_stack_that_is_no_longer_running(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dev_stack_in(tmp_path / ".heysh", pid=gone.pid)
    result = heysh("token", "--user", "alice", env={}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "no longer running" in result.stderr


# --- the dev stack's secret and state -----------------------------------------------------------


def test_dev_jwt_secret_is_private_random_and_kept_per_data_dir(tmp_path: Path) -> None:
    first = ensure_jwt_secret(tmp_path / "a")
    assert ensure_jwt_secret(tmp_path / "a") == first  # tokens survive a restart
    assert ensure_jwt_secret(tmp_path / "b") != first
    assert len(first) >= 32
    assert stat.S_IMODE((tmp_path / "a" / SECRET_FILE).stat().st_mode) == 0o600


def test_dev_stack_state_is_private_and_holds_no_secret(tmp_path: Path) -> None:
    secret = dev_stack_in(tmp_path)
    state = tmp_path / STATE_FILE
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert secret not in state.read_text()


@pytest.mark.parametrize(
    ("dev_dir", "expected"),
    [
        (".heysh", ".venv/bin/heysh token --user alice"),
        ("/srv/heysh data", "HEYSH_DEV_DIR='/srv/heysh data' .venv/bin/heysh token --user alice"),
    ],
)
def test_heysh_dev_prints_the_readme_token_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dev_dir: str, expected: str
) -> None:
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "heysh").touch()
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))
    monkeypatch.chdir(tmp_path)
    assert token_command((tmp_path / dev_dir).absolute()) == expected
