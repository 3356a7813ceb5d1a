"""`heysh ingest` from start to end: check the token, URL and domain, upload the files a few at
a time, follow each run, cancel the runs it started on Ctrl-C, print the summary, pick the exit
code."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from heysh.ingest.client import CANCEL, DOCUMENT, DOMAIN, TERMINAL, Api, check_url
from heysh.ingest.display import Bars, Display, Lines, outcome, summary_table
from heysh.ingest.document import Item
from heysh.ingest.errors import ApiError, ApiUnreachableError, IngestError, TokenRefusedError
from heysh.ingest.files import collect, read_head, title_for

DEFAULT_API_URL = "http://127.0.0.1:8000/graphql"
WATCHED_AT_ONCE = 16  # live subscriptions (one socket each); a later one replays what it missed
CANCEL_WAIT_SECONDS = 30.0  # after Ctrl-C, how long to wait for canceled runs to confirm
EXIT_FAILED, EXIT_INTERRUPTED = 1, 130


class Ingest:
    def __init__(
        self, api: Api, domain_id: str, items: list[Item], display: Display, concurrency: int
    ) -> None:
        self.api = api
        self.domain_id = domain_id
        self.items = items
        self.display = display
        self.upload_slots = asyncio.Semaphore(concurrency)
        self.watch_slots = asyncio.Semaphore(max(concurrency, WATCHED_AT_ONCE))
        self.interrupted = asyncio.Event()

    async def run(self) -> bool:
        """True when every item ended; False when interrupted (its runs then canceled)."""
        for item in self.items:
            self.display.track(item)
        tasks = [asyncio.create_task(self._one(item)) for item in self.items]
        everything: asyncio.Future[list[None]] = asyncio.gather(*tasks)
        interrupt: asyncio.Future[Any] = asyncio.ensure_future(self.interrupted.wait())
        waiters: list[asyncio.Future[Any]] = [everything, interrupt]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        interrupt.cancel()
        if not self.interrupted.is_set():
            await everything  # re-raises a bug in _one rather than hiding it
            return True
        await self._cancel_started()
        await asyncio.wait(tasks, timeout=CANCEL_WAIT_SECONDS)
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await everything
        for item in self.items:
            if not item.finished:
                item.fail("CANCELING" if item.owns_run else "INTERRUPTED", "not confirmed")
        return False

    async def _one(self, item: Item) -> None:
        try:
            async with self.upload_slots:
                await self._upload(item)
        finally:
            item.upload_settled.set()
        if item.finished:
            self.display.show(item)
            return
        try:
            if item.run_id is not None:
                async with self.watch_slots:
                    await self.api.follow(item.run_id, lambda event: self._event(item, event))
            await self._readoutcome(item)
        except ApiError as exc:
            item.fail("UNKNOWN", f"could not follow the run: {exc}")
        except (TokenRefusedError, ApiUnreachableError) as exc:
            item.fail("UNKNOWN", str(exc))
        self.display.show(item)

    async def _upload(self, item: Item) -> None:
        if item.finished:  # unreadable when its title was read
            return
        if self.interrupted.is_set():
            item.fail("NOT UPLOADED", "interrupted")
            return
        item.state = "uploading"
        self.display.show(item)
        try:
            data = await self.api.upload(self.domain_id, item.title, item.path)
        except OSError as exc:
            item.fail("UNREADABLE", exc.strerror or str(exc))
            return
        except (ApiError, TokenRefusedError, ApiUnreachableError) as exc:
            item.fail("REFUSED", str(exc))
            return
        payload = data["addDocument"]
        if payload["__typename"] == "UserError":
            item.fail("REFUSED", f"{payload['code']}: {payload['message']}")
            return
        item.document_id = payload["document"]["id"]
        item.owns_run = bool(payload["created"])
        run = payload["run"]
        item.run_id = run["id"] if run else None
        item.state = "queued" if item.owns_run else "already in the domain"
        self.display.show(item)

    def _event(self, item: Item, event: dict[str, Any]) -> None:
        item.progress = float(event["progress"])
        item.run_status = event["status"]
        stage, message = event["stage"], event["message"]
        item.state = message if message.startswith(stage) else f"{stage}: {message}"
        self.display.show(item, stage=event["stage"])

    async def _readoutcome(self, item: Item) -> None:
        assert item.document_id is not None
        document = (await self.api.query(DOCUMENT, {"id": item.document_id}))["document"]
        if document is None:
            item.fail("GONE", "the document was deleted meanwhile")
            return
        item.counts = (
            document["chunkCount"],
            document["entityCount"],
            document["relationshipCount"],
        )
        item.status = "CANCELED" if item.run_status == "CANCELED" else document["status"]
        item.error = document["error"]
        if item.status == "READY":
            item.progress = 1.0

    async def _cancel_started(self) -> None:
        """Wait for uploads in flight (their runs would otherwise go unseen), then cancel every
        run this command started that has not ended."""
        self.display.note(
            "interrupted: no new uploads; canceling the runs this command started "
            "(Ctrl-C again to leave at once)"
        )
        for item in self.items:
            await item.upload_settled.wait()
        running = [
            item
            for item in self.items
            if item.owns_run and item.run_id and item.run_status not in TERMINAL
        ]
        canceled = sum(await asyncio.gather(*(self._cancel(item) for item in running)))
        self.display.note(f"canceled {canceled} run(s); waiting for them to stop")

    async def _cancel(self, item: Item) -> bool:
        assert item.run_id is not None
        try:
            answer = (await self.api.query(CANCEL, {"id": item.run_id}))["cancelWorkflowRun"]
        except (ApiError, IngestError) as exc:
            self.display.note(f"could not cancel the run of {item.path}: {exc}")
            return False
        if answer["__typename"] == "UserError":  # it ended meanwhile
            self.display.note(f"{item.path}: {answer['code']}: {answer['message']}")
            return False
        item.state = "canceling"
        self.display.show(item)
        return True


async def _active_domain(api: Api, domain_id: str) -> str:
    """The domain's name once it is ACTIVE; waits (on its run's events) while it is created."""
    while True:
        domain = (await api.query(DOMAIN, {"id": domain_id}))["domain"]
        if domain is None:
            raise IngestError(f"no domain {domain_id} visible to this token's user")
        status, run = domain["status"], domain["lastRun"]
        if status == "ACTIVE":
            return str(domain["name"])
        if status in ("CREATING", "REBUILDING") and run and run["status"] not in TERMINAL:
            print(f"waiting for domain {domain['name']!r} ({status})", file=sys.stderr)
            await api.follow(run["id"], lambda _event: None)
            continue
        raise IngestError(f"domain {domain['name']!r} is {status}; documents go to ACTIVE ones")


async def _ingest(
    paths: Sequence[str], domain_id: str, url: str, token: str, concurrency: int, out: TextIO
) -> int:
    found = collect(paths)
    if not found.files:
        raise IngestError(
            "no .md, .markdown, .rst or .txt files in "
            + ", ".join(paths)
            + (f" ({len(found.skipped)} other file(s) skipped)" if found.skipped else "")
        )
    items: list[Item] = []
    for path in found.files:
        try:
            items.append(Item(path, title_for(path, read_head(path))))
        except OSError as exc:
            item = Item(path, path.name)
            item.fail("UNREADABLE", exc.strerror or str(exc))
            items.append(item)
    api = Api(url, token)
    try:
        name = await _active_domain(api, domain_id)
        display: Display = Bars(out) if out.isatty() else Lines(out)
        with display:
            for path in found.skipped:
                display.note(f"skipped {path} (not a .md, .markdown, .rst or .txt file)")
            display.note(f"ingesting {len(items)} file(s) into {name!r}")
            ingest = Ingest(api, domain_id, items, display, concurrency)
            with _on_sigint(ingest):
                completed = await ingest.run()
    finally:
        await api.close()
    summary_table(items, found.skipped, out)
    failed = [item for item in items if item.status != "READY"]
    for item in failed:
        print(f"heysh ingest: {item.path}: {outcome(item)}", file=sys.stderr)
    if not completed:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if failed else 0


@contextlib.contextmanager
def _on_sigint(ingest: Ingest) -> Iterator[None]:
    """First Ctrl-C: stop and cancel what was started. Second: leave at once."""
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()

    def interrupt() -> None:
        if ingest.interrupted.is_set() and main is not None:
            main.cancel()
        ingest.interrupted.set()

    loop.add_signal_handler(signal.SIGINT, interrupt)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


def ingest_command(
    paths: Sequence[str],
    *,
    domain_id: str,
    api_url: str | None,
    token: str | None,
    concurrency: int,
    allow_http: bool = False,
) -> int:
    """Run `heysh ingest`; fatal problems end in one line on stderr, never a traceback."""
    # gql logs every WebSocket message it sends at DEBUG, connection_init (the token) included.
    logging.getLogger("gql").setLevel(logging.WARNING)
    url = api_url or os.environ.get("HEYSH_API_URL") or DEFAULT_API_URL
    token = token or os.environ.get("HEYSH_TOKEN")
    try:
        if not token:
            raise IngestError(
                "no token: set HEYSH_TOKEN (for the dev stack: "
                "export HEYSH_TOKEN=$(.venv/bin/heysh token --user alice)) or pass --token"
            )
        check_url(url, allow_http=allow_http)
        return asyncio.run(_ingest(paths, domain_id, url, token, concurrency, sys.stdout))
    except IngestError as exc:
        print(f"heysh ingest: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except ApiError as exc:
        print(f"heysh ingest: the api refused: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except asyncio.CancelledError:  # a second Ctrl-C: leave without waiting
        print("heysh ingest: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
