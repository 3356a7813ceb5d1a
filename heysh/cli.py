"""`heysh api | worker | dev | token | schema | migrate | setup | ingest`."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence

from heysh.config import ConfigError, Environment, Settings

LOCAL_ENVIRONMENTS = (Environment.DEV.value, Environment.TEST.value)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="heysh", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("api", help="serve the GraphQL gateway")
    commands.add_parser("worker", help="run workflows and activities")
    commands.add_parser("dev", help="run the whole stack locally (services, api, worker)")
    token = commands.add_parser("token", help="print a token the dev stack accepts")
    token.add_argument("--user", required=True, help="user id (a UUID, or a name mapped to one)")
    token.add_argument("--email", default=None)
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    commands.add_parser("schema", help="print the GraphQL SDL")
    commands.add_parser("migrate", help="apply pending SQL migrations")
    commands.add_parser("setup", help="install the local services (cached outside the checkout)")
    ingest = commands.add_parser(
        "ingest",
        help="upload text files into a domain through the api and follow their processing",
        description="Upload .md, .markdown, .rst and .txt files through the GraphQL api, follow "
        "each run live, and print a summary. Exits 0 only when every document ends READY.",
    )
    ingest.add_argument(
        "paths", nargs="+", metavar="PATH", help="files, or folders to search (hidden ones skipped)"
    )
    ingest.add_argument("--domain", required=True, help="the domain's id, as createDomain returns")
    ingest.add_argument(
        "--api", default=None, help="GraphQL URL (default $HEYSH_API_URL, else the dev api)"
    )
    ingest.add_argument(
        "--token",
        default=None,
        help="bearer token (default $HEYSH_TOKEN, which other users cannot see in ps)",
    )
    ingest.add_argument(
        "--concurrency", type=_positive, default=4, help="files uploaded at once (default 4)"
    )
    ingest.add_argument(
        "--allow-http",
        action="store_true",
        help="send the token over plain http to a host other than this machine",
    )
    args = parser.parse_args(argv)

    try:
        return _run(args)
    except ConfigError as exc:
        print(f"heysh: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace) -> int:
    if args.command == "schema":
        from heysh.schema import build_schema

        sys.stdout.write(build_schema().as_str() + "\n")
        return 0
    if args.command == "setup":
        from heysh.local import install

        install.main()
        return 0
    if args.command == "dev":
        from heysh.local.dev import run_dev

        return run_dev()
    if args.command == "token":
        return _token(args)
    if args.command == "ingest":  # a client of the public api: no server settings needed
        from heysh.ingest.command import ingest_command

        return ingest_command(
            args.paths,
            domain_id=args.domain,
            api_url=args.api,
            token=args.token,
            concurrency=args.concurrency,
            allow_http=args.allow_http,
        )

    settings = Settings()
    from heysh.telemetry.logs import configure_logging

    configure_logging(settings, args.command)  # JSON lines in production; every logger
    if args.command == "migrate":
        from heysh.stores.migrations import apply_migrations

        applied = apply_migrations(settings.database_url.get_secret_value())
        print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'up to date'}")
        return 0
    if args.command in ("api", "worker"):
        from heysh.services import BackendUnreachableError, check_backends

        try:
            asyncio.run(check_backends(settings))
        except BackendUnreachableError as exc:
            print(f"heysh {args.command}: {exc}", file=sys.stderr)
            return 1
        from heysh.telemetry.tracing import setup_tracing

        setup_tracing(f"heysh-{args.command}")  # only when the OTEL_* variables ask for export
    if args.command == "api":
        import uvicorn

        from heysh.app import create_app

        uvicorn.run(
            create_app(settings),
            host=settings.api_host,
            port=settings.api_port,
            log_config=None,  # its loggers go through ours (configure_logging), levels too
            ws="websockets-sansio",
            # Events are small JSON: compressing each per subscriber costs CPU on every fan-out
            # and a zlib context per connection, for little saved.
            ws_per_message_deflate=False,
        )
        return 0
    if args.command == "worker":
        from heysh.worker import main as worker_main

        asyncio.run(_until_signalled(lambda stop: worker_main(settings, stop)))
        return 0
    raise AssertionError(args.command)


def _token(args: argparse.Namespace) -> int:
    """Without HEYSH_ENV, a token for the dev stack running from this checkout; with HEYSH_ENV
    dev or test, one signed with the configured secret; never one for production."""
    from heysh.auth import mint_dev_token, mint_token
    from heysh.local.dev_state import dev_root, running_dev_stack
    from heysh.local.users import user_id_for

    env = os.environ.get("HEYSH_ENV")
    if env and env not in LOCAL_ENVIRONMENTS:
        raise ConfigError(f"dev tokens are never minted with HEYSH_ENV={env}; only for dev or test")
    settings = Settings() if env else None
    user_id = user_id_for(args.user)
    if settings is not None and settings.supabase_jwt_secret is not None:
        token = mint_dev_token(settings, user_id, email=args.email, ttl_seconds=args.ttl)
    else:
        stack = running_dev_stack(dev_root())
        token = mint_token(
            stack.jwt_secret(),
            user_id,
            issuer=stack.jwt_issuer,
            audience=stack.jwt_audience,
            email=args.email,
            ttl_seconds=args.ttl,
        )
    if user_id != args.user:
        print(f"user {args.user!r} is id {user_id}", file=sys.stderr)
    print(token)
    return 0


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


async def _until_signalled(run: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run(stop)
