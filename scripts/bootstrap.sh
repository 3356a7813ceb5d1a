#!/usr/bin/env bash
# Installs whatever is missing, idempotently: uv, the locked Python environment (.venv), and the
# four local services (built or resolved once, cached under ~/.cache/heysh keyed by version).
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1 || { echo "bootstrap: '$1' is required: $2" >&2; exit 1; }; }
need python3 "Python 3.11+"
need java "a Java 17 runtime (Debian: openjdk-17-jre-headless)"
need mvn "Maven (Debian: maven)"
need go "Go 1.25+ (https://go.dev/dl or the Go toolchain of this machine kind)"

tools="${HEYSH_CACHE_DIR:-$HOME/.cache/heysh}/tools"
if ! command -v uv >/dev/null 2>&1; then
  if [ ! -x "$tools/bin/uv" ]; then
    echo "bootstrap: installing uv into $tools" >&2
    python3 -m venv "$tools"
    "$tools/bin/pip" install --quiet "uv>=0.5"
  fi
  export PATH="$tools/bin:$PATH"
fi

uv sync --frozen --quiet
.venv/bin/heysh setup
