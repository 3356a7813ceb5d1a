"""What stops `heysh ingest` (one line, exit 1) and what the api refused for one request."""

from __future__ import annotations


class IngestError(Exception):
    """Stops the whole command with one line; never carries the token."""


class TokenRefusedError(IngestError):
    pass


class ApiUnreachableError(IngestError):
    pass


class ApiError(Exception):
    """The api refused one request (a coded GraphQL error or an HTTP status)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
