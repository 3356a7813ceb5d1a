"""What `heysh dev` keeps in its data dir so that `heysh token` mints tokens its stack accepts.

- ``dev-jwt-secret``: a random HS256 secret made once per data dir (mode 0600) and reused, so
  tokens outlive a restart of `heysh dev`. No secret is committed: no process accepts a
  well-known one.
- ``dev-stack.json`` (mode 0600): written once the stack serves, removed when it stops. It names
  the running `heysh dev`, its api, the secret's file and the issuer and audience the api checks.
  It holds no secret itself.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from heysh.config import ConfigError

SECRET_FILE = "dev-jwt-secret"  # noqa: S105 - a file name
STATE_FILE = "dev-stack.json"


def dev_root() -> Path:
    """The dev stack's data dir: ``HEYSH_DEV_DIR``, else ``.heysh`` in the working directory."""
    configured = os.environ.get("HEYSH_DEV_DIR")
    return (Path(configured) if configured else Path.cwd() / ".heysh").absolute()


def ensure_jwt_secret(root: Path) -> str:
    """The data dir's dev JWT secret, made on first use."""
    path = root / SECRET_FILE
    if path.exists():
        path.chmod(0o600)  # tighten a copy made or restored with looser permissions
        secret = path.read_text().strip()
        if secret:
            return secret
    root.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    _write_private(path, secret + "\n")
    return secret


@dataclass(frozen=True)
class DevStack:
    pid: int  # of `heysh dev`
    api_url: str
    jwt_secret_file: str
    jwt_issuer: str
    jwt_audience: str

    def jwt_secret(self) -> str:
        try:
            secret = Path(self.jwt_secret_file).read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the dev stack's JWT secret {self.jwt_secret_file} "
                f"({exc.strerror or type(exc).__name__})"
            ) from None
        if not secret:
            raise ConfigError(f"the dev stack's JWT secret file {self.jwt_secret_file} is empty")
        return secret


def write_state(root: Path, stack: DevStack) -> None:
    _write_private(root / STATE_FILE, json.dumps(asdict(stack), indent=2) + "\n")


def clear_state(root: Path, pid: int) -> None:
    """Remove the state file if ``pid`` wrote it (a newer `heysh dev` may have replaced it)."""
    path = root / STATE_FILE
    try:
        if json.loads(path.read_text()).get("pid") == pid:
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def running_dev_stack(root: Path) -> DevStack:
    """The dev stack serving from ``root``; a ConfigError saying what to do when there is none."""
    path = root / STATE_FILE
    hint = "start it with `make dev` (or set HEYSH_DEV_DIR to its data dir)"
    try:
        stack = DevStack(**json.loads(path.read_text()))
        if not isinstance(stack.pid, int):
            raise TypeError("pid")
    except FileNotFoundError:
        raise ConfigError(f"no dev stack is running under {root}: {hint}") from None
    except (OSError, ValueError, TypeError):
        raise ConfigError(f"{path} is unreadable; restart `make dev`") from None
    if not _alive(stack.pid):
        raise ConfigError(f"the dev stack under {root} is no longer running: {hint}")
    return stack


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` as a 0600 file, atomically, so no reader sees it half-written or open."""
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    staging.unlink(missing_ok=True)
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)
    os.replace(staging, path)
