"""Showing `heysh ingest`'s progress: rich bars on a terminal, plain lines in logs and pipes,
and the summary table at the end."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from heysh.ingest.document import Item


class Lines:
    """Plain lines for logs and pipes: an item's stage changes, every tenth of progress, its end."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._shown: dict[int, tuple[str, int]] = {}

    def __enter__(self) -> Lines:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def note(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def track(self, item: Item) -> None:
        return None

    def show(self, item: Item, stage: str | None = None) -> None:
        if item.finished:
            self.note(f"{item.title} ({item.path}): {outcome(item)}")
            return
        key = (stage or item.state, int(item.progress * 10))
        if self._shown.get(id(item)) != key:
            self._shown[id(item)] = key
            self.note(f"{item.title}: {round(item.progress * 100):3d}% {item.state}")


class Bars:
    """One rich progress bar per document, redrawn in place on a terminal."""

    def __init__(self, out: TextIO) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn

        self.console = Console(file=out)
        self.progress = Progress(
            TextColumn("{task.description}", style="bold"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[state]}"),
            console=self.console,
        )
        self._tasks: dict[int, TaskID] = {}

    def __enter__(self) -> Bars:
        self.progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.progress.stop()

    def note(self, text: str) -> None:
        self.progress.console.print(text, markup=False, highlight=False)

    def track(self, item: Item) -> None:
        name = item.title if len(item.title) <= 40 else item.title[:39] + "…"
        self._tasks[id(item)] = self.progress.add_task(name, total=1.0, state=item.state)

    def show(self, item: Item, stage: str | None = None) -> None:
        state = outcome(item) if item.finished else item.state
        completed = 1.0 if item.status == "READY" else item.progress
        self.progress.update(self._tasks[id(item)], completed=completed, state=state)


Display = Lines | Bars


def outcome(item: Item) -> str:
    if item.status == "READY":
        chunks, entities, relationships = item.counts
        return (
            f"READY ({_many(chunks, 'chunk')}, {_many(entities, 'entity', 'entities')}, "
            f"{_many(relationships, 'relationship')})"
        )
    return f"{item.status}: {item.error}" if item.error else str(item.status)


def _many(count: int | None, one: str, more: str | None = None) -> str:
    return f"{count} {one if count == 1 else more or one + 's'}"


def summary_table(items: Sequence[Item], skipped: Sequence[Path], out: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="heysh ingest")
    for column in ("file", "title", "status", "chunks", "entities", "relationships", "error"):
        numeric = column in ("chunks", "entities", "relationships")
        table.add_column(column, justify="right" if numeric else "left")
    for item in items:
        counts = ["" if count is None else str(count) for count in item.counts]
        style = "green" if item.status == "READY" else "red"
        table.add_row(
            str(item.path), item.title, item.status or "?", *counts, item.error or "", style=style
        )
    for path in skipped:
        table.add_row(
            str(path),
            "",
            "SKIPPED",
            "",
            "",
            "",
            "not a .md, .markdown, .rst or .txt file",
            style="dim",
        )
    # In a log or pipe nothing wraps lines, so let the table be as wide as its content.
    Console(file=out, width=None if out.isatty() else 240).print(table)
