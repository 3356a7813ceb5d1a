"""One file's way through `heysh ingest`: upload, its run's progress, and the outcome."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Item:
    path: Path
    title: str
    state: str = "waiting"
    progress: float = 0.0
    document_id: str | None = None
    run_id: str | None = None
    owns_run: bool = False  # started by this command, so Ctrl-C may cancel it
    run_status: str | None = None
    status: str | None = None  # the outcome: a document status, or why there is none
    error: str | None = None
    counts: tuple[int | None, int | None, int | None] = (None, None, None)
    upload_settled: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def finished(self) -> bool:
        return self.status is not None

    def fail(self, status: str, error: str) -> None:
        self.status, self.error, self.state = status, error, f"{status}: {error}"
