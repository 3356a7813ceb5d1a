"""`heysh ingest` as a user runs it: a subprocess talking to a real api over loopback.

The api is the real app under uvicorn (`serve_api`), its workflows run by a real worker, and the
command uses only the public contract (multipart addDocument, the workflowRun subscription,
cancelWorkflowRun). A subprocess's stdout is a pipe, not a terminal, so the command prints plain
progress lines, which the tests read.
"""

from __future__ import annotations

import asyncio
import os
import pty
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from heysh.auth import mint_dev_token
from heysh.config import Settings
from heysh.local.users import user_id_for
from heysh.services import Services
from heysh.worker import build_worker
from tests.integration.test_upload_memory import free_port
from tests.support.documents import active_domain, fixture_text
from tests.support.graphql import GraphQLClient, eventually
from tests.support.live_api import serve_api

pytestmark = pytest.mark.integration

OWNER = "ingrid-ingest"
DOCUMENTS = """query($id: ID!) { domain(id: $id) { documents(first: 50) { edges { node {
  title status error lastRun { status } } } } } }"""
EINSTEIN_BODY = fixture_text("einstein.md").split("\n", 2)[2]  # without its Markdown heading


@pytest.fixture(scope="module")
async def live(settings: Settings, worker: None) -> AsyncIterator[str]:
    async with serve_api(settings) as url:
        yield url


def token(settings: Settings, ttl: int = 3600) -> str:
    return mint_dev_token(settings, user_id_for(OWNER), ttl_seconds=ttl)


class Command:
    """`python -m heysh ingest ...` with its output read line by line as it comes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, *args: str, token: str | None = None) -> Command:
        env = {k: v for k, v in os.environ.items() if k not in ("HEYSH_TOKEN", "HEYSH_API_URL")}
        if token is not None:
            env["HEYSH_TOKEN"] = token
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "heysh",
            "ingest",
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            async with self._changed:
                self.lines.append(raw.decode())
                self._changed.notify_all()

    async def wait_for(self, done: Callable[[list[str]], bool], within: float = 120.0) -> None:
        async def seen() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: done(self.lines))

        try:
            await asyncio.wait_for(seen(), within)
        except TimeoutError:
            raise AssertionError(f"not seen within {within}s; output: {self.lines}") from None

    async def finish(self, within: float = 300.0) -> tuple[int, str, str]:
        assert self.process.stderr is not None
        stderr = await asyncio.wait_for(self.process.stderr.read(), within)
        code = await asyncio.wait_for(self.process.wait(), within)
        await self._reader
        return code, "".join(self.lines), stderr.decode()


async def ingest(*args: str, token: str | None = None) -> tuple[int, str, str]:
    return await (await Command.start(*args, token=token)).finish()


async def documents(api: GraphQLClient, domain: str) -> dict[str, dict[str, Any]]:
    data = await api.data(DOCUMENTS, {"id": domain}, user=OWNER)
    edges = data["domain"]["documents"]["edges"]
    return {edge["node"]["title"]: edge["node"] for edge in edges}


def line_with(output: str, *parts: str) -> str | None:
    return next((line for line in output.splitlines() if all(p in line for p in parts)), None)


async def test_a_folder_of_text_files_is_ingested_with_titles_from_the_files_and_exit_0(
    api: GraphQLClient, live: str, settings: Settings, tmp_path: Path
) -> None:
    domain = await active_domain(api, OWNER, "Ingested folder")
    docs = tmp_path / "docs"
    files = {
        "curie.md": fixture_text("curie.md"),
        "physics/einstein.rst": f"Einstein at Solvay\n==================\n\n{EINSTEIN_BODY}",
        "physics/notes/lab-notes.txt": "Pierre Curie worked with Marie Curie in Paris on radium.",
        "prizes.markdown": "---\ntitle: Nobel prizes\n---\n\nMarie Curie won the Nobel Prize.\n",
    }
    for name, text in files.items():
        (docs / name).parent.mkdir(parents=True, exist_ok=True)
        (docs / name).write_text(text)
    (docs / "images").mkdir()
    (docs / "images" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    secret = token(settings)

    code, out, err = await ingest(str(docs), "--domain", domain, "--api", live, token=secret)

    titles = [
        "Marie Curie and the discovery of radioactivity",
        "Einstein at Solvay",
        "lab-notes.txt",
        "Nobel prizes",
    ]
    assert code == 0, (out, err)
    for title in titles:  # plain progress lines (stdout is no terminal), one ending READY each
        assert line_with(out, title, "READY"), (title, out)
    assert "\x1b[" not in out  # no terminal control sequences in a pipe
    assert line_with(out, "skipped", "logo.png"), out
    assert secret not in out + err
    stored = await documents(api, domain)
    assert sorted(stored) == sorted(titles)
    assert {d["status"] for d in stored.values()} == {"READY"}


async def test_each_refused_file_is_named_and_the_exit_status_is_non_zero(
    api: GraphQLClient, settings: Settings, worker: None, tmp_path: Path
) -> None:
    domain = await active_domain(api, OWNER, "Refusals")
    (tmp_path / "good.md").write_text(f"# Good one\n\n{EINSTEIN_BODY}")
    (tmp_path / "empty.txt").write_text("  \n")
    (tmp_path / "latin1.txt").write_bytes("Marie Curie, née à Varsovie".encode("latin-1"))
    (tmp_path / "big.txt").write_text("Radium. " * 1000)  # 8,000 bytes over a 4,096 limit
    small = settings.model_copy(update={"max_document_bytes": 4096})

    async with serve_api(small) as url:
        code, out, err = await ingest(
            str(tmp_path), "--domain", domain, "--api", url, token=token(settings)
        )

    assert code != 0
    assert line_with(out, "Good one", "READY"), out
    refusals = {"empty.txt": "CONTENT_EMPTY", "latin1.txt": "CONTENT_NOT_UTF8"}
    refusals["big.txt"] = "CONTENT_TOO_LARGE"
    for name, why in refusals.items():
        assert line_with(err, str(tmp_path / name), why), (name, err)
    assert not line_with(err, "good.md"), err
    assert "Traceback" not in err
    assert sorted(await documents(api, domain)) == ["Good one"]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [("not-a-token", "the api refused the token"), ("expired", "expired")],
)
async def test_a_bad_token_ends_in_one_clear_line_with_nothing_uploaded(
    api: GraphQLClient, live: str, settings: Settings, tmp_path: Path, bad: str, reason: str
) -> None:
    domain = await active_domain(api, OWNER, f"Bad token {bad}")
    (tmp_path / "a.md").write_text("# A\n\nMarie Curie lived in Paris.\n")
    refused = token(settings, ttl=-60) if bad == "expired" else bad

    code, out, err = await ingest(
        str(tmp_path), "--domain", domain, "--api", live, "--token", refused
    )

    assert code != 0
    assert len(err.splitlines()) == 1, err
    assert err.startswith("heysh ingest: the api refused the token"), err
    assert reason in err
    assert "Traceback" not in err + out
    assert refused not in err + out
    assert await documents(api, domain) == {}


async def test_an_unreachable_api_ends_in_one_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# A\n\ntext\n")
    url = f"http://127.0.0.1:{free_port()}/graphql"

    code, out, err = await ingest(
        str(tmp_path), "--domain", "RG9tYWluOjE=", "--api", url, token="t"
    )

    assert code != 0
    assert err.splitlines() == [err.strip()]
    assert err.startswith(f"heysh ingest: cannot reach the api at {url}"), err
    assert "Traceback" not in err + out


async def test_ctrl_c_cancels_every_run_the_command_started_and_exits_non_zero(
    api: GraphQLClient, settings: Settings, services: Services, tmp_path: Path
) -> None:
    # The command talks to an api whose workflows go to a queue no worker polls yet, so no run
    # can finish before the interrupt, however slow or fast this machine is. Only once the
    # command says the api accepted every cancel does a worker start on that queue: each run
    # then ends CANCELED, where without the cancel it would process its document to READY.
    domain = await active_domain(api, OWNER, "Interrupted")
    titles = [f"Part {i}" for i in range(3)]
    for i, title in enumerate(titles):
        (tmp_path / f"part-{i}.md").write_text(f"# {title}\n\n{i} {fixture_text('curie.md')}")
    queue = f"ingest-idle-{uuid.uuid4().hex[:8]}"
    idle = settings.model_copy(update={"task_queue": queue})

    async with serve_api(idle) as url:
        args = (str(tmp_path), "--domain", domain, "--api", url, "--concurrency", "2")
        command = await Command.start(*args, token=token(settings))
        await command.wait_for(
            lambda out: all(line_with("".join(out), t, "queued") for t in titles)
        )
        command.process.send_signal(signal.SIGINT)
        await command.wait_for(lambda out: line_with("".join(out), "canceled 3 run(s)") is not None)
        async with build_worker(services, task_queue=queue):
            code, out, err = await command.finish()

            async def statuses() -> Any:
                stored = await documents(api, domain)
                return {
                    t: (d["status"], d["error"], d["lastRun"]["status"]) for t, d in stored.items()
                }

            ended = await eventually(
                statuses, lambda s: all(v[2] != "RUNNING" for v in s.values()), within=120
            )

    assert code == 130, (out, err)
    assert ended == {title: ("FAILED", "canceled", "CANCELED") for title in titles}, (out, err)
    for title in titles:
        assert line_with(out, title, "CANCELED"), out


async def test_on_a_terminal_each_document_gets_a_live_bar_and_the_run_ends_in_a_table(
    api: GraphQLClient, live: str, settings: Settings, tmp_path: Path
) -> None:
    domain = await active_domain(api, OWNER, "On a terminal")
    (tmp_path / "einstein.md").write_text(fixture_text("einstein.md"))
    controller, terminal = pty.openpty()
    env = {**os.environ, "HEYSH_TOKEN": token(settings), "COLUMNS": "160"}
    # From the folder, as a user would: the table shows the path as given, and a long
    # temporary directory would have the table cut the file name short.
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "heysh", "ingest", ".", "--domain", domain,
        "--api", live, env=env, cwd=tmp_path, stdout=terminal, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    os.close(terminal)  # the child holds its own copy; the last close ends the reads below

    def read_all() -> str:
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the terminal's other end closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(controller)
        return b"".join(chunks).decode(errors="replace")

    out = await asyncio.to_thread(read_all)
    code = await process.wait()

    assert code == 0, out
    assert "\x1b[" in out  # drawn in place, not printed line by line
    assert "━" in out  # rich's bar
    table = out[out.index("heysh ingest") :]
    assert line_with(table, "einstein.md", "Albert Einstein in Brussels", "READY"), table
