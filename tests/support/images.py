"""What a Dockerfile's final stage runs: its CMD and ENV, read from the file (no docker here)."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Image:
    command: list[str]
    env: dict[str, str]


def image_config(dockerfile: str) -> Image:
    """The CMD (exec form) and the ENV of the last stage of ``ROOT/dockerfile``."""
    lines = (ROOT / dockerfile).read_text().replace("\\\n", " ").splitlines()
    final = max(i for i, line in enumerate(lines) if line.startswith("FROM "))
    command: list[str] = []
    env: dict[str, str] = {}
    for line in lines[final:]:
        if line.startswith("CMD "):
            command = json.loads(line.removeprefix("CMD "))
        elif line.startswith("ENV "):
            for item in shlex.split(line.removeprefix("ENV ")):
                name, _, value = item.partition("=")
                env[name] = value
    return Image(command, env)


def run_image_command(image: Image, env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    """Start the image's command with this venv's scripts standing in for /app/.venv/bin."""
    executable = shutil.which(image.command[0], path=str(Path(sys.executable).parent))
    assert executable is not None, f"the venv has no {image.command[0]} script"
    return subprocess.Popen([executable, *image.command[1:]], env=env, stdout=log, stderr=log)
