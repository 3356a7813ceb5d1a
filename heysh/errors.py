"""One exception hierarchy for heysh; GraphQL maps these to `extensions.code`."""

from __future__ import annotations


class HeyshError(Exception):
    """Base of every error heysh raises on purpose."""

    code = "INTERNAL"


class StoreError(HeyshError):
    """A backing store refused or failed an operation."""

    code = "STORE_UNAVAILABLE"


class NotFoundError(HeyshError):
    """The object does not exist or the caller may not know that it exists."""

    code = "NOT_FOUND"


class InvalidInputError(HeyshError):
    """A query argument is out of range; mutations return ``UserError`` data instead."""

    code = "BAD_USER_INPUT"
