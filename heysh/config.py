"""All configuration, read from the environment (prefix ``HEYSH_``) and nothing else.

Without ``HEYSH_ENV`` the environment is production: missing or placeholder secrets then stop
start-up with a message that names the setting but never echoes its value. `heysh dev` and the
tests select dev or test explicitly, with a JWT secret of their own (none is committed).
"""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from pathlib import Path
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from heysh.errors import HeyshError

# The all-MiniLM-L6-v2 release `heysh setup` fetches; its cache entry is named after it.
MINILM_VERSION = "1.19.0-beta29"

# The dev JWT secret heysh once committed (and defaulted to). Anyone can sign tokens with it, so
# no environment accepts it any more, in case a deployment's config still carries it.
RETIRED_DEV_JWT_SECRET = "heysh-dev-only-jwt-secret-never-use-in-production"  # noqa: S105

# A metrics token guards only operational figures, but is still a bearer secret.
MIN_METRICS_TOKEN_LENGTH = 16

_PLACEHOLDER = re.compile(
    r"^(|changeme|change-me|placeholder|secret|password|todo|xxx+|\.\.\.|<.*>"
    r"|your[-_ ].*|.*example.*)$",
    re.IGNORECASE,
)


class Environment(StrEnum):
    DEV = "dev"
    TEST = "test"
    PRODUCTION = "production"


class ConfigError(HeyshError):
    """Configuration that cannot be used; the message names settings, never secret values."""

    code = "CONFIG"


def is_placeholder(value: str) -> bool:
    return value == RETIRED_DEV_JWT_SECRET or bool(_PLACEHOLDER.match(value.strip()))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HEYSH_", env_file=None, extra="ignore")

    env: Environment = Environment.PRODUCTION  # the safe default: dev and test are chosen
    log_level: str = "INFO"
    # Logs (heysh/telemetry/logs.py): JSON lines, or readable text; None: JSON in production.
    log_format: Literal["json", "text"] | None = None

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    graphiql: bool | None = None  # None: on in dev only
    introspection: bool | None = None  # None: on in dev only

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_api_key: SecretStr | None = None
    temporal_tls: bool | None = None  # None: on when an API key is set
    task_queue: str = "heysh"

    # A private CA (PEM) the backend clients verify TLS against instead of the system's: Neo4j's
    # `+s` URIs use it. Postgres takes libpq's own `sslrootcert` in HEYSH_DATABASE_URL.
    tls_ca_file: Path | None = None

    neo4j_uri: str = "bolt://127.0.0.1:7687"
    neo4j_user: str = "neo4j"
    neo4j_password: SecretStr | None = None
    neo4j_database: str | None = None
    # Server-side limit on each graph read, so a runaway query cannot hold a request or worker.
    neo4j_read_timeout_seconds: float = Field(default=10.0, gt=0)

    weaviate_url: str = "http://127.0.0.1:8080"
    weaviate_grpc_port: int = 50051  # local/self-hosted only; Weaviate Cloud derives its own
    weaviate_api_key: SecretStr | None = None
    weaviate_collection: str = "Chunk"

    database_url: SecretStr = SecretStr("postgresql://postgres@127.0.0.1:54329/postgres")
    database_pool_size: int = 10

    supabase_url: str = "http://127.0.0.1:54321"
    supabase_jwt_secret: SecretStr | None = None  # `heysh dev` makes one per data dir
    supabase_jwks_url: str | None = None
    jwt_audience: str = "authenticated"
    jwks_min_refresh_seconds: float = 30.0

    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None

    # The document pipeline. Defaults run offline: MiniLM embeddings, heuristic extraction.
    embedder: Literal["minilm", "openai"] = "minilm"
    openai_embedding_model: str = "text-embedding-3-small"
    openai_embedding_dimensions: int = 1536
    extractor: Literal["heuristic", "llm"] = "heuristic"
    llm_model: str = "gpt-4o-mini"
    # What `heysh setup` fetches and builds lives here (HEYSH_CACHE_DIR, as the installer reads).
    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "heysh")
    # model.onnx + tokenizer.json; by default the entry `heysh setup` fills. Only the MiniLM
    # embedder reads it: the OpenAI embedder counts tokens with tiktoken's bundled encoding.
    minilm_dir: Path = Field(
        default_factory=lambda data: data["cache_dir"] / f"minilm-l6-v2-{MINILM_VERSION}"
    )
    max_document_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    max_title_length: int = Field(default=500, ge=1)
    chunk_max_tokens: int = Field(default=200, ge=16, le=254)
    chunk_overlap_tokens: int = Field(default=40, ge=0)
    embed_batch_size: int = Field(default=64, ge=1)
    index_batch_size: int = Field(default=256, ge=1)
    extract_batch_size: int = Field(default=32, ge=1)
    extract_concurrency: int = Field(default=4, ge=1)

    # Requests with a body over upload_threshold_bytes run at most max_concurrent_uploads at once;
    # others wait up to upload_wait_seconds, then get 503 TOO_MANY_UPLOADS (retryable). An upload
    # costs the api up to about 10x its size at its peak (+190 MB for a 20 MB JSON body whose text
    # CPython holds at 4 bytes a character), so one slot keeps a 512 MB api inside its memory.
    max_concurrent_uploads: int = Field(default=1, ge=1)
    upload_threshold_bytes: int = Field(default=1024 * 1024, ge=1)
    upload_wait_seconds: float = Field(default=30.0, ge=0)

    max_query_depth: int = Field(default=12, ge=1)
    max_aliases: int = Field(default=30, ge=1)
    max_query_tokens: int = Field(default=2000, ge=1)
    # Estimated before execution; a connection multiplies its selections by its `first` (a
    # bounded list such as `neighborhood` by its `limit`).
    max_query_cost: int = Field(default=10_000, ge=1)
    max_page_size: int = Field(default=100, ge=1)
    # search: hits per call (GRAPH mode reads 4x as many candidates) and query length in characters.
    max_search_limit: int = Field(default=50, ge=1)
    max_search_query_length: int = Field(default=1000, ge=1)
    # Entities a `neighborhood` may return (its `limit`); its edges are bounded by a multiple.
    max_subgraph_nodes: int = Field(default=500, ge=1)
    max_domain_name_length: int = Field(default=100, ge=1)
    # Live subscriptions one WebSocket may hold, and the events a subscriber may fall behind
    # before its subscription is ended (SUBSCRIBER_TOO_SLOW; it can resume with `after`).
    max_subscriptions_per_connection: int = Field(default=20, ge=1)
    subscriber_queue_limit: int = Field(default=256, ge=1)
    max_domain_description_length: int = Field(default=2000, ge=0)

    # Metrics (Prometheus; heysh/telemetry/). The api serves /metrics on its own port, open in
    # dev and test. In production it collects and serves metrics only with a token set, and
    # then only to `Authorization: Bearer <token>` (a set token is required in every env).
    metrics_token: SecretStr | None = None
    # The worker's endpoint, IP:port (temporalio's exporter, pipeline metrics included); unset:
    # none. It has no authentication: bind it to loopback or a private network.
    worker_metrics_address: str | None = None

    @property
    def is_local(self) -> bool:
        return self.env in (Environment.DEV, Environment.TEST)

    @property
    def metrics_enabled(self) -> bool:
        """Whether the api measures requests and serves /metrics."""
        return self.is_local or self.metrics_token is not None

    @property
    def graphiql_enabled(self) -> bool:
        return self.env is Environment.DEV if self.graphiql is None else self.graphiql

    @property
    def introspection_enabled(self) -> bool:
        return self.env is Environment.DEV if self.introspection is None else self.introspection

    @property
    def temporal_tls_enabled(self) -> bool:
        return self.temporal_api_key is not None if self.temporal_tls is None else self.temporal_tls

    @property
    def jwt_issuer(self) -> str:
        return self.supabase_url.rstrip("/") + "/auth/v1"

    @field_validator("tls_ca_file")
    @classmethod
    def _readable_ca_file(cls, path: Path | None) -> Path | None:
        # Checked here, so a wrong path is named at start rather than as a TLS failure later.
        if path is not None and not path.is_file():
            raise ValueError("HEYSH_TLS_CA_FILE must name a PEM file of CA certificates")
        return path

    @field_validator("worker_metrics_address")
    @classmethod
    def _socket_address(cls, address: str | None) -> str | None:
        # The exporter binds a socket address: a host name would fail only as the worker starts.
        if address is None:
            return None
        host, _, port = address.rpartition(":")
        bracketed = host.startswith("[") and host.endswith("]")  # IPv6 as in [::1]:9464
        try:
            ip = ipaddress.ip_address(host[1:-1] if bracketed else host)
            valid = (ip.version == 6) == bracketed and 0 < int(port) < 65536
        except ValueError:
            valid = False
        if not valid:
            raise ValueError("HEYSH_WORKER_METRICS_ADDRESS must be IP:port, e.g. 127.0.0.1:9464")
        return address

    @model_validator(mode="after")
    def _chunk_overlap_fits(self) -> Self:
        if self.chunk_overlap_tokens > self.chunk_max_tokens // 2:
            raise ValueError("HEYSH_CHUNK_OVERLAP_TOKENS must be at most half of CHUNK_MAX_TOKENS")
        return self

    @model_validator(mode="after")
    def _refuse_unusable_production_config(self) -> Self:
        if self.is_local:
            secret = self.supabase_jwt_secret
            if secret is not None and secret.get_secret_value() == RETIRED_DEV_JWT_SECRET:
                raise ConfigError(
                    "HEYSH_SUPABASE_JWT_SECRET is the retired dev secret that was committed to "
                    "heysh; unset it (`heysh dev` makes its own)"
                )
            return self
        problems: list[str] = []

        def need_secret(name: str, value: SecretStr | None) -> None:
            if value is None or is_placeholder(value.get_secret_value()):
                problems.append(f"HEYSH_{name.upper()} is missing or a placeholder")

        # Its default is the dev stack's password-less local database: unset means missing.
        need_secret(
            "database_url", self.database_url if "database_url" in self.model_fields_set else None
        )
        need_secret("neo4j_password", self.neo4j_password)
        need_secret("weaviate_api_key", self.weaviate_api_key)
        need_secret("temporal_api_key", self.temporal_api_key)
        if self.metrics_token is not None:
            token = self.metrics_token.get_secret_value()
            if is_placeholder(token) or len(token) < MIN_METRICS_TOKEN_LENGTH:
                problems.append(
                    f"HEYSH_METRICS_TOKEN is a placeholder or shorter than "
                    f"{MIN_METRICS_TOKEN_LENGTH} characters (unset it to serve no metrics)"
                )
        if self.embedder == "openai" or self.extractor == "llm":
            need_secret("openai_api_key", self.openai_api_key)
        if self.supabase_jwks_url is None:
            need_secret("supabase_jwt_secret", self.supabase_jwt_secret)
        elif self.supabase_jwt_secret is not None and is_placeholder(
            self.supabase_jwt_secret.get_secret_value()
        ):
            problems.append(
                "HEYSH_SUPABASE_JWT_SECRET is a placeholder (unset it to use JWKS only)"
            )
        if urlsplit(self.supabase_url).hostname in (None, "127.0.0.1", "localhost"):
            problems.append(
                "HEYSH_SUPABASE_URL must be the project's URL (https://<ref>.supabase.co)"
            )
        if problems:
            raise ConfigError(
                f"refusing to start with HEYSH_ENV={self.env.value}: " + "; ".join(problems)
            )
        return self
