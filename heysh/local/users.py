"""Readable dev user names: `heysh token --user alice` maps alice to a stable UUID."""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5


def user_id_for(name_or_id: str) -> str:
    try:
        return str(UUID(name_or_id))
    except ValueError:
        return str(uuid5(NAMESPACE_URL, f"heysh-dev-user:{name_or_id}"))
