"""Text embedders behind one protocol: local all-MiniLM-L6-v2 (onnxruntime) and OpenAI's API."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
import onnxruntime as ort  # type: ignore[import-untyped]
import openai
from tokenizers import Encoding, Tokenizer

from heysh.errors import HeyshError
from heysh.telemetry.tracing import store_span


class EmbeddingError(HeyshError):
    """Texts could not be embedded; the message says by which model and why."""

    code = "EMBEDDING_FAILED"


class Embedder(Protocol):
    name: str
    dimensions: int

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit-length vector of ``dimensions`` floats per text, in the order given."""
        ...


class MiniLmEmbedder:
    """sentence-transformers/all-MiniLM-L6-v2 on onnxruntime's CPU provider: 384-d, offline.

    Same recipe as sentence-transformers: WordPiece with [CLS]/[SEP], truncation to 256 tokens
    (the model's max_seq_length), mean of the last hidden state over the attention mask, L2
    normalisation. Loading takes about a second, so build one per process and share it; inference
    runs in a worker thread, one batch at a time (onnxruntime already uses every core given).
    """

    name = "all-minilm-l6-v2"
    dimensions = 384
    max_seq_length = 256
    _INPUTS = ("input_ids", "attention_mask", "token_type_ids")

    def __init__(
        self, model_dir: Path, *, batch_size: int = 32, threads: int | None = None
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        model, vocab = model_dir / "model.onnx", model_dir / "tokenizer.json"
        if not (model.is_file() and vocab.is_file()):
            raise EmbeddingError(
                f"MiniLM model files (model.onnx, tokenizer.json) are missing from {model_dir}: "
                "run `heysh setup`"
            )
        self.batch_size = batch_size
        # The file pins truncation and padding to 128; padding is done per batch below.
        self._tokenizer = Tokenizer.from_file(str(vocab))
        self._tokenizer.enable_truncation(max_length=self.max_seq_length)
        self._tokenizer.no_padding()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 0  # 0: one per core
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(
                str(model), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime's errors share no base class
            raise EmbeddingError(f"cannot load the MiniLM model {model}: {exc}") from exc
        names = [i.name for i in self._session.get_inputs()]
        if not {"input_ids", "attention_mask"} <= set(names):
            raise EmbeddingError(f"{model} is not a BERT encoder export (inputs {names})")
        self._feeds = [name for name in self._INPUTS if name in names]
        self._output = self._session.get_outputs()[0].name
        self._lock = threading.Lock()  # concurrent runs would only fight over the cores

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        return await asyncio.to_thread(self.embed_sync, list(texts))

    def embed_sync(self, texts: Sequence[str]) -> list[list[float]]:
        """``embed`` on the calling thread (for scripts and benchmarks)."""
        if not texts:
            return []
        encodings = self._tokenizer.encode_batch(list(texts))
        vectors = np.empty((len(encodings), self.dimensions), dtype=np.float32)
        for rows in self._batches_by_length(encodings):
            vectors[rows] = self._run([encodings[row] for row in rows])
        return vectors.tolist()

    def _batches_by_length(self, encodings: list[Encoding]) -> Iterator[list[int]]:
        """Row indices in batches of similar length, so little compute goes to padding."""
        order = sorted(range(len(encodings)), key=lambda row: len(encodings[row].ids))
        for first in range(0, len(order), self.batch_size):
            yield order[first : first + self.batch_size]

    def _run(self, encodings: list[Encoding]) -> npt.NDArray[np.float32]:
        width = max(len(encoding.ids) for encoding in encodings)
        arrays = {name: np.zeros((len(encodings), width), dtype=np.int64) for name in self._INPUTS}
        for row, encoding in enumerate(encodings):
            length = len(encoding.ids)
            arrays["input_ids"][row, :length] = encoding.ids
            arrays["attention_mask"][row, :length] = encoding.attention_mask
            arrays["token_type_ids"][row, :length] = encoding.type_ids
        try:
            with self._lock:
                (hidden,) = self._session.run(
                    [self._output], {name: arrays[name] for name in self._feeds}
                )
        except Exception as exc:  # onnxruntime's errors share no base class
            raise EmbeddingError(f"MiniLM inference failed: {exc}") from exc
        mask = arrays["attention_mask"][:, :, None].astype(np.float32)
        summed = (np.asarray(hidden, dtype=np.float32) * mask).sum(axis=1)
        pooled = summed / np.maximum(mask.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.maximum(norms, 1e-12)  # type: ignore[no-any-return]


class OpenAIEmbedder:
    """OpenAI's (or any compatible server's) ``/v1/embeddings``, in order-keeping batches.

    A request carries at most ``batch_size`` inputs (the API takes 2048) and at most
    ``max_request_tokens`` tokens, counted as UTF-8 bytes, which no byte-level BPE exceeds (the
    API takes 300,000). Batches go one after another; transient failures (429, 5xx, timeouts) are
    retried by the SDK, ``max_retries`` times as configured on the injected client.
    """

    max_request_inputs = 2048

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        model: str = "text-embedding-3-small",
        *,
        dimensions: int = 1536,
        batch_size: int = 256,
        max_request_tokens: int = 250_000,
    ) -> None:
        if not 1 <= batch_size <= self.max_request_inputs:
            raise ValueError(
                f"batch_size must be between 1 and {self.max_request_inputs}, not {batch_size}"
            )
        self.name = model
        self.dimensions = dimensions
        self.batch_size = batch_size
        self.max_request_tokens = max_request_tokens
        self._client = client

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if empty := [position for position, text in enumerate(texts) if not text]:
            raise EmbeddingError(
                f"{self.name} cannot embed empty texts (positions {empty[:10]} of {len(texts)})"
            )
        vectors: list[list[float]] = []
        for batch in self._batches(texts):
            vectors.extend(await self._request(batch))
        return vectors

    def _batches(self, texts: Sequence[str]) -> Iterator[list[str]]:
        batch: list[str] = []
        tokens = 0
        for text in texts:
            size = len(text.encode())
            if batch and (len(batch) == self.batch_size or tokens + size > self.max_request_tokens):
                yield batch
                batch, tokens = [], 0
            batch.append(text)
            tokens += size
        if batch:
            yield batch

    async def _request(self, batch: list[str]) -> list[list[float]]:
        what = f"{self.name} embeddings for {len(batch)} text{'' if len(batch) == 1 else 's'}"
        try:
            with store_span("openai", "embeddings", {"gen_ai.request.model": self.name}):
                response = await self._client.embeddings.create(
                    model=self.name,
                    input=batch,
                    dimensions=self.dimensions if _takes_dimensions(self.name) else openai.omit,
                )
        except openai.OpenAIError as exc:  # status errors read "Error code: 503 - {message}"
            raise EmbeddingError(f"{what} failed: {exc}") from exc
        except ValueError as exc:  # the SDK's own check, e.g. "No embedding data received"
            raise EmbeddingError(f"{what} failed: {exc}") from exc
        data = sorted(response.data, key=lambda item: item.index)
        if [item.index for item in data] != list(range(len(batch))):
            raise EmbeddingError(
                f"{what}: the reply has {len(data)} vectors for {len(batch)} texts"
            )
        for item in data:
            if len(item.embedding) != self.dimensions:
                raise EmbeddingError(
                    f"{what}: a vector has {len(item.embedding)} dimensions, "
                    f"expected {self.dimensions}"
                )
        return [list(item.embedding) for item in data]


def _takes_dimensions(model: str) -> bool:
    # Older OpenAI models and most other servers' models have one size and may reject the field.
    return model.startswith("text-embedding-3")
