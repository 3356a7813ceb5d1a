"""schema.graphql is the committed contract; it must match the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from heysh.schema import build_schema

ROOT = Path(__file__).resolve().parents[2]


def test_committed_schema_file_matches_the_code() -> None:
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == build_schema().as_str() + "\n", "run `heysh schema > schema.graphql`"


def test_heysh_schema_command_prints_the_sdl() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "heysh", "schema"], capture_output=True, text=True, check=True
    ).stdout
    assert "createDomain(input: CreateDomainInput!): CreateDomainPayload!" in out
