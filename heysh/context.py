"""The typed per-request context every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from strawberry.types import Info as StrawberryInfo

from heysh.auth import User
from heysh.errors import HeyshError
from heysh.hub import RunHub
from heysh.loaders import Loaders
from heysh.services import Services


class NotAuthenticatedError(HeyshError):
    code = "UNAUTHENTICATED"


@dataclass
class Context:
    services: Services
    user: User | None
    auth_error: str | None = None
    connection_params: dict[str, Any] | None = None  # set by the WebSocket protocol handler
    hub: RunHub | None = None  # the api's live-event router (subscriptions)
    websocket: Any = None  # the connection, for a WebSocket's context
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.services, self.user_id if self.user else None)

    def sign_in(self, user: User) -> None:
        """Bind a WebSocket connection's context to the user its connection_init proved."""
        self.user, self.auth_error = user, None
        self.loaders = Loaders(self.services, self.user_id)

    @property
    def user_id(self) -> UUID:
        if self.user is None:
            raise NotAuthenticatedError(self.auth_error or "authentication required")
        return UUID(self.user.id)

    @property
    def live(self) -> RunHub:
        if self.hub is None:
            raise HeyshError("subscriptions are served by the api only")
        return self.hub


Info = StrawberryInfo[Context, Any]
