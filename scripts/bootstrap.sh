#!/usr/bin/env bash
# Installs whatever is missing, idempotently: uv, the locked Python environment (.venv), the
# locked npm packages the tests use (tests/http_audit), and the four local services (built or
# resolved once, cached under ~/.cache/heysh keyed by version).
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1 || { echo "bootstrap: '$1' is required: $2" >&2; exit 1; }; }
need python3 "Python 3.11+"
need java "a Java 17 runtime (Debian: openjdk-17-jre-headless)"
need mvn "Maven (Debian: maven)"
need go "Go 1.25+ (https://go.dev/dl or the Go toolchain of this machine kind)"
need node "Node.js 18+ (Debian: nodejs), for the GraphQL over HTTP audit in the tests"
need npm "npm (Debian: npm)"

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

# graphql-http's server audit, run by tests/integration/test_graphql_over_http.py. npm ci wipes
# and reinstalls node_modules, so it runs only when the manifest or lock file changed since the
# last install (npm's download cache is in ~/.npm, outside the checkout).
audit=tests/http_audit
audit_sum="$(cat "$audit/package.json" "$audit/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$audit/node_modules/.installed-sha256" 2>/dev/null)" != "$audit_sum" ]; then
  (cd "$audit" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$audit_sum" >"$audit/node_modules/.installed-sha256"
fi
.venv/bin/heysh setup
