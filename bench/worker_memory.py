"""Peak worker memory for large documents, measured on a real worker process.

    .venv/bin/python bench/worker_memory.py [--sizes 1,10]

For each size (in MB) a fresh `heysh worker` process (as the image runs it) processes one
document of that size through the ProcessDocument workflow; the script prints the worker's
resident memory when idle and its peak (VmHWM) over the run. Embeddings come from the OpenAI
embedder against the local OpenAI-compatible test server, so the figure is the pipeline's own
memory, not a model's; extraction is the offline heuristic one.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from heysh.config import Settings  # noqa: E402
from heysh.local.stack import LocalStack  # noqa: E402
from heysh.services import open_services  # noqa: E402
from heysh.stores.migrations import apply_migrations  # noqa: E402
from heysh.stores.postgres import DomainStatus  # noqa: E402
from heysh.worker import prepare_stores  # noqa: E402
from heysh.workflows.process_document import (  # noqa: E402
    ProcessDocumentInput,
    ProcessDocumentWorkflow,
)
from heysh.workflows.progress import RunStatus  # noqa: E402
from tests.support.openai_server import OpenAIServer  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "documents"
OWNER = uuid.UUID("00000000-0000-4000-8000-00000000beef")
MB = 1024 * 1024


def document(size: int) -> str:
    parts = [p.read_text() for p in sorted(FIXTURES.glob("*.md"))]
    pieces, total, i = [], 0, 0
    while total < size:
        piece = f"## Part {i}\n\n{parts[i % len(parts)]}"
        pieces.append(piece)
        total += len(piece.encode()) + 2
        i += 1
    return "\n\n".join(pieces)


def memory_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise LookupError(field)


async def measure(stack: LocalStack, settings: Settings, server: OpenAIServer, size: int) -> None:
    queue = f"memory-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        **stack.settings_env(),
        "HEYSH_ENV": "test",
        "HEYSH_TASK_QUEUE": queue,
        "HEYSH_EMBEDDER": "openai",
        "HEYSH_OPENAI_BASE_URL": server.base_url,
        "HEYSH_OPENAI_API_KEY": "bench-key",
        "HEYSH_OPENAI_EMBEDDING_DIMENSIONS": "384",
        "HEYSH_LOG_LEVEL": "WARNING",
    }
    async with open_services(settings) as services:
        domain_id = uuid.uuid4()
        await services.postgres.create_domain(domain_id, "memory", "", OWNER, f"m-{domain_id}")
        await services.postgres.set_domain_status(domain_id, DomainStatus.ACTIVE)
        await services.graph.merge_domain(str(domain_id), "memory")
        await services.vectors.ensure_tenant(str(domain_id))
        text = document(size)
        digest = hashlib.sha256(text.encode()).hexdigest()
        document_id, run_id = uuid.uuid4(), f"memory-{uuid.uuid4()}"
        added = await services.documents.add_document(
            document_id, domain_id, "memory", text, digest, OWNER, run_id
        )
        assert added is not None
        del text
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "heysh", "worker", env=env
        )
        try:
            await asyncio.sleep(8)  # connected and polling
            idle = memory_mb(worker.pid, "VmRSS")
            started = time.perf_counter()
            output = await services.temporal.execute_workflow(
                ProcessDocumentWorkflow.run,
                ProcessDocumentInput(str(document_id), str(domain_id), "memory"),
                id=run_id,
                task_queue=queue,
            )
            elapsed = time.perf_counter() - started
            peak = memory_mb(worker.pid, "VmHWM")
        finally:
            worker.terminate()
            await asyncio.wait_for(worker.wait(), 30)
    status = "READY" if output.status is RunStatus.COMPLETED else output.progress.error
    print(
        f"{size / MB:.0f} MB document ({output.summary.get('chunks', 0)} chunks, {status}) "
        f"in {elapsed:.0f}s: worker idle {idle:.0f} MB, peak {peak:.0f} MB",
        flush=True,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1,10", help="document sizes in MB, comma-separated")
    args = parser.parse_args()
    stack = LocalStack.for_tests(Path(tempfile.mkdtemp(prefix="heysh-bench-")))
    stack.start()
    try:
        env = stack.settings_env()
        apply_migrations(env["HEYSH_DATABASE_URL"])
        # As the measured worker embeds (the collection records its embedder and refuses others).
        settings = stack.test_settings(
            embedder="openai", openai_api_key="bench-key", openai_embedding_dimensions=384
        )
        async with open_services(settings) as services:
            await prepare_stores(services)
        with OpenAIServer() as server:
            for size in args.sizes.split(","):
                await measure(stack, settings, server, int(float(size) * MB))
    finally:
        stack.stop()


if __name__ == "__main__":
    asyncio.run(main())
