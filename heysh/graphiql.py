"""GraphiQL served by the api itself: the page and every file it loads, from no CDN.

The page (``web/graphiql/index.html``) and its own script and stylesheet are committed. The
browser builds of React, GraphiQL, graphql-ws and GraphiQL's explorer plugin come from the npm
packages pinned in ``web/graphiql/package-lock.json``: ``scripts/bootstrap.sh`` (and
Dockerfile.api's ``graphiql`` stage) installs them with ``npm ci`` and copies them into
``web/graphiql/vendor/``. Only the files the page references are served, under
``/graphiql/assets/<version>/<name>``; ``<version>`` is a hash of their contents, so a browser
may keep them for good while the page itself is revalidated on every load. A
Content-Security-Policy lets the page load from and connect to its own origin only.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent.parent / "web" / "graphiql"
ASSETS_PATH = "/graphiql/assets"
# The page's own files sit beside index.html; everything else it loads is in vendor/.
OWN_FILES = frozenset({"heysh-graphiql.js", "heysh-graphiql.css"})
MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
_REFERENCE = re.compile(r"\$assets/([A-Za-z0-9._-]+)")

# Styles may be inline: React and GraphiQL set style attributes. Fonts come as data: URIs inside
# graphiql.min.css. 'self' in connect-src also allows ws:/wss: to this host (CSP level 3).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str


class GraphiQLPage:
    """The page and the files it loads, read once from ``root`` when the app is built."""

    def __init__(self, root: Path = WEB_DIR) -> None:
        self.assets: dict[str, Asset] = {}
        self.problem: str | None = None
        self.version = ""
        self.html = ""
        try:
            template = (root / "index.html").read_text(encoding="utf-8")
        except OSError as exc:
            self.problem = f"{root / 'index.html'} cannot be read ({exc.strerror})"
            log.warning("GraphiQL is on but cannot be served: %s", self.problem)
            return
        missing: list[str] = []
        for name in sorted(set(_REFERENCE.findall(template))):
            path = root / name if name in OWN_FILES else root / "vendor" / name
            media_type = MEDIA_TYPES.get(path.suffix)
            if media_type is None or not path.is_file():
                missing.append(name)
                continue
            self.assets[name] = Asset(path.read_bytes(), media_type)
        if missing:
            self.problem = f"missing from {root / 'vendor'}: {', '.join(missing)}"
            log.warning("GraphiQL is on but cannot be served: %s", self.problem)
            return
        digest = hashlib.sha256()
        for name, asset in sorted(self.assets.items()):
            digest.update(name.encode() + b"\0" + hashlib.sha256(asset.body).digest())
        self.version = digest.hexdigest()[:16]
        self.html = Template(template).safe_substitute(assets=f"{ASSETS_PATH}/{self.version}")

    def page(self) -> Response:
        if self.problem is not None:
            # The detail (file paths) goes to the log, not to the browser.
            log.error("GraphiQL cannot be served: %s", self.problem)
            return HTMLResponse(
                "<!doctype html><title>GraphiQL is not installed</title>"
                "<p>GraphiQL's files are not installed on this api (its log names them). Run "
                "<code>make setup</code> (<code>scripts/bootstrap.sh</code>), which installs "
                "them from npm into <code>web/graphiql/vendor/</code>.</p>",
                status_code=503,
                headers=PAGE_HEADERS,
            )
        return HTMLResponse(self.html, headers=PAGE_HEADERS)

    async def asset(self, request: Request) -> Response:
        asset = self.assets.get(request.path_params["name"])
        if asset is None:
            return PlainTextResponse("Not Found", status_code=404)
        # A page from another api version (a rolling deploy) still gets a file, just not one to
        # keep under that version's URL.
        current = request.path_params["version"] == self.version
        return Response(
            asset.body,
            media_type=asset.media_type,
            headers={
                "Cache-Control": IMMUTABLE if current else "no-cache",
                "X-Content-Type-Options": "nosniff",
            },
        )

    def route(self) -> Route:
        # graphiql.min.js is 1 MB and gzips to 0.3 MB.
        return Route(
            ASSETS_PATH + "/{version}/{name}",
            self.asset,
            methods=["GET"],
            middleware=[Middleware(GZipMiddleware, minimum_size=1024)],
        )
