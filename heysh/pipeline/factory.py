"""Builds the configured embedder, extractor and token counter for the worker."""

from __future__ import annotations

from pathlib import Path

from openai import AsyncOpenAI

from heysh.config import ConfigError, Settings
from heysh.pipeline.chunking import WordPieceCounter
from heysh.pipeline.embedding import Embedder, MiniLmEmbedder, OpenAIEmbedder
from heysh.pipeline.extraction import Extractor, HeuristicExtractor, LlmExtractor


def minilm_dir(settings: Settings) -> Path:
    """The MiniLM model directory; `heysh setup` fills it, run time never downloads."""
    from heysh.local.install import MINILM_VERSION, cache_root

    directory = settings.minilm_dir or cache_root() / f"minilm-l6-v2-{MINILM_VERSION}"
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


def build_counter(settings: Settings) -> WordPieceCounter:
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
