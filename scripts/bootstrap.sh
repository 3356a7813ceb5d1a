#!/usr/bin/env bash
# Installs whatever is missing, idempotently: uv, the locked Python environment (.venv), the
# locked npm packages (GraphiQL's browser builds in web/graphiql, which the api serves; the test
# tools in tests/http_audit and tests/browser), Debian's chromium for the browser test, and the
# four local services (built or resolved once, cached under ~/.cache/heysh keyed by version).
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1 || { echo "bootstrap: '$1' is required: $2" >&2; exit 1; }; }
need python3 "Python 3.11+"
need java "a Java 17 runtime (Debian: openjdk-17-jre-headless)"
need mvn "Maven (Debian: maven)"
need go "Go 1.25+ (https://go.dev/dl or the Go toolchain of this machine kind)"
need node "Node.js 20+ (Debian: nodejs), for GraphiQL's files and the tests' npm tools"
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

# npm packages, each from its committed lock file. npm ci wipes and reinstalls node_modules, so
# it runs only when the manifest, lock file or build script changed since the last install, as
# the stamp file records (npm's download cache is in ~/.npm, outside the checkout).
# DIR STAMP [SCRIPT]: in DIR, `npm ci` and then `node SCRIPT`, unless DIR/STAMP is current.
npm_install() {
  local dir="$1" stamp="$1/$2" script="${3:-}" sum
  sum="$(cd "$dir" && cat package.json package-lock.json ${script:+"$script"} | sha256sum)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "${sum%% *}" ]; then
    (
      cd "$dir"
      npm ci --no-audit --no-fund --loglevel=error
      if [ -n "$script" ]; then node "$script"; fi
    )
    echo "${sum%% *}" >"$stamp"
  fi
}
# Playwright drives Debian's chromium below; it must never download a browser of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
# GraphiQL's browser builds, which the api serves itself: collect.mjs copies them into vendor/.
npm_install web/graphiql vendor/.installed-sha256 collect.mjs
# graphql-http's server audit, run by tests/integration/test_graphql_over_http.py.
npm_install tests/http_audit node_modules/.installed-sha256
# playwright-core, for tests/integration/test_graphiql_browser.py.
npm_install tests/browser node_modules/.installed-sha256

# Debian's chromium (with no recommends: about 124 MB of packages) for the GraphiQL browser test.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: 'chromium' is required by the browser test: apt-get install chromium" >&2
    exit 1
  fi
  echo "bootstrap: installing chromium with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Fresh containers ship no package lists, and stale ones may name versions long gone.
  apt-get -qq update
  apt-get -qq -y install --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
.venv/bin/heysh setup
