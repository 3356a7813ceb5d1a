"""`heysh ingest` titles a document from the file: its own title where the format has one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from heysh.ingest.files import TITLE_HEAD_BYTES, collect, read_head, title_for


def titled(tmp_path: Path, name: str, text: str | bytes) -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return title_for(path, read_head(path))


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("# Marie Curie\n\nPolish physicist.\n", "Marie Curie"),
        ("Intro line.\n\n## Not this\n\n# The *real* `title` #\n", "The real title"),
        ("```\n# inside a fence\n```\n\n# After the fence\n", "After the fence"),
        ("Setext Title\n============\n\ntext\n", "Setext Title"),
        ("---\ntitle: 'From: front matter'\ntags: [a]\n---\n# Heading\n", "From: front matter"),
        ("---\nauthor: x\n---\n\n# Heading after front matter\n", "Heading after front matter"),
        ("\ufeff#   Spaced    out\n", "Spaced out"),
    ],
)
def test_markdown_title_is_front_matter_title_else_first_level_one_heading(
    tmp_path: Path, text: str, title: str
) -> None:
    assert titled(tmp_path, "notes.md", text) == title


@pytest.mark.parametrize(
    "text",
    ["Just text, no heading.\n", "## Only a second-level heading\n", "#NoSpace is no heading\n"],
)
def test_markdown_without_a_title_is_named_after_the_file(tmp_path: Path, text: str) -> None:
    assert titled(tmp_path, "plain-notes.markdown", text) == "plain-notes.markdown"


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("Radioactivity\n=============\n\nBody.\n\nHistory\n-------\n", "Radioactivity"),
        (".. _top:\n\n:orphan:\n\n=========\n Overlined\n=========\n\nx\n", "Overlined"),
        (".. topic:: A topic\n\n   body\n\nSection\n#######\n", "Section"),
        ("First\n=====\n\na\n\nSecond\n======\n\nb\n", "First"),
    ],
)
def test_restructuredtext_title_is_its_first_underlined_section_title(
    tmp_path: Path, text: str, title: str
) -> None:
    assert titled(tmp_path, "physics.rst", text) == title


def test_restructuredtext_never_reads_other_files_while_titling(tmp_path: Path) -> None:
    (tmp_path / "secret.rst").write_text("Secret Title\n============\n")
    text = ".. include:: secret.rst\n\nparagraph\n"
    assert titled(tmp_path, "including.rst", text) == "including.rst"


def test_text_files_and_undecodable_files_are_named_after_the_file(tmp_path: Path) -> None:
    assert titled(tmp_path, "notes.txt", "# Looks like markdown\n") == "notes.txt"
    assert titled(tmp_path, "latin1.md", "# Caf\xe9\n".encode("latin-1")) == "latin1.md"


def test_a_title_near_the_top_of_a_large_file_is_found_without_reading_it_all(
    tmp_path: Path,
) -> None:
    text = "# Big\n\n" + "é word\n" * TITLE_HEAD_BYTES  # multi-byte characters across the cut
    assert titled(tmp_path, "big.md", text) == "Big"


def test_folders_are_recursed_and_other_formats_and_hidden_entries_set_apart(
    tmp_path: Path,
) -> None:
    for name in (
        "a.md",
        "b/c.RST",
        "b/d/e.txt",
        "b/f.png",
        "g.markdown",
        ".hidden.md",
        ".git/h.md",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    os.mkfifo(tmp_path / "b" / "pipe.md")  # reading it would block: not a regular file
    found = collect([str(tmp_path), str(tmp_path / "a.md")])  # a file named twice counts once
    assert [p.relative_to(tmp_path).as_posix() for p in found.files] == [
        "a.md",
        "g.markdown",
        "b/c.RST",
        "b/d/e.txt",
    ]
    assert [p.relative_to(tmp_path).as_posix() for p in found.skipped] == ["b/f.png", "b/pipe.md"]
