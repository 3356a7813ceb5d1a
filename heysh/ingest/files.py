"""Which files `heysh ingest` uploads, and the title each gets: the file's own title where its
format has one (Markdown front matter or first level-1 heading, reST's first section title)."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from heysh.ingest.errors import IngestError

TEXT_SUFFIXES = {
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".rst": "text/x-rst",
    ".txt": "text/plain",
}
TITLE_HEAD_BYTES = 64 * 1024  # a title sits at the top; never parse a whole 20 MB file for it


@dataclass(frozen=True)
class Found:
    files: list[Path]
    skipped: list[Path]


def collect(paths: Sequence[str]) -> Found:
    """Text files named or under the folders named (hidden entries skipped), in a stable order."""
    files: list[Path] = []
    skipped: list[Path] = []
    seen: set[Path] = set()

    def consider(path: Path) -> None:
        key = path.resolve()
        if key in seen:
            return
        seen.add(key)
        # Only regular files: opening a FIFO named notes.md would block for ever.
        text = path.suffix.lower() in TEXT_SUFFIXES and path.is_file()
        (files if text else skipped).append(path)

    for arg in paths:
        root = Path(arg)
        if root.is_dir():
            for folder, dirs, names in os.walk(root):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(names):
                    if not name.startswith("."):
                        consider(Path(folder) / name)
        elif root.exists():
            consider(root)
        else:
            raise IngestError(f"no such file or folder: {arg}")
    return Found(files, skipped)


def read_head(path: Path) -> str | None:
    """The file's first lines as text, or None when they are not UTF-8 (the api will say so)."""
    with path.open("rb") as file:
        data = file.read(TITLE_HEAD_BYTES)
    if len(data) == TITLE_HEAD_BYTES:
        data = data[: data.rfind(b"\n") + 1] or data  # never cut a character in two
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return None


def title_for(path: Path, head: str | None) -> str:
    """The file's own title where its format has one, else its name."""
    suffix = path.suffix.lower()
    title: str | None = None
    if head is not None and suffix in (".md", ".markdown"):
        title = markdown_title(head)
    elif head is not None and suffix == ".rst":
        title = rst_title(head)
    return title or path.name


_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S)


def markdown_title(text: str) -> str | None:
    """Front matter's `title:`, else the first level-1 heading (`# Title` or `Title` over `===`)."""
    import yaml
    from markdown_it import MarkdownIt

    front = _FRONT_MATTER.match(text)
    if front:
        try:
            meta = yaml.safe_load(front.group(1))
        except yaml.YAMLError:
            meta = None
        if isinstance(meta, dict) and isinstance(meta.get("title"), str | int | float):
            title = _clean(str(meta["title"]))
            if title:
                return title
        text = text[front.end() :]  # else its closing `---` would read as a heading underline
    tokens = MarkdownIt("commonmark").parse(text)
    for opening, inline in itertools.pairwise(tokens):
        if opening.type == "heading_open" and opening.tag == "h1":
            words = [
                " " if child.type in ("softbreak", "hardbreak") else child.content
                for child in inline.children or []
                if child.type in ("text", "code_inline", "image", "softbreak", "hardbreak")
            ]
            title = _clean("".join(words))
            if title:
                return title
    return None


def rst_title(text: str) -> str | None:
    """The first section title (a line underlined, and maybe overlined, with punctuation)."""
    import io

    from docutils import nodes
    from docutils.core import publish_doctree

    tree = publish_doctree(
        text,
        settings_overrides={
            # A file being uploaded is data: it may not read other files (`.. include::`),
            # pass raw output through, read docutils.conf files, or print warnings.
            "file_insertion_enabled": False,
            "raw_enabled": False,
            "_disable_config": True,
            "report_level": 5,
            "halt_level": 5,
            "warning_stream": io.StringIO(),
            "doctitle_xform": False,
        },
    )
    for node in tree.findall(nodes.title):
        if isinstance(node.parent, nodes.section | nodes.document):
            title = _clean(node.astext())
            if title:
                return title
    return None


def _clean(title: str) -> str:
    return " ".join(title.split())
