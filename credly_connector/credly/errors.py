"""Credly failures an admin can act on, as branches of the tree in `credly_connector.errors`.

No message ever holds a secret or a token.
"""

from __future__ import annotations

from typing import Any, Literal

from credly_connector.errors import CredlyctlError, RemoteRefused, Unavailable

AuthKind = Literal["invalid_client", "token_rejected", "forbidden", "not_found"]
UnavailableKind = Literal["network", "tls", "server", "throttled", "malformed", "unexpected"]


class CredlyError(CredlyctlError):
    """Base of every Credly failure: the HTTP status and the shape of the answer, if any."""

    status: int | None
    body_shape: Any


class CredlyAuthError(CredlyError, RemoteRefused):
    """Credly refused the credentials or the Organization ID: fixing the configuration helps
    (exit 2). `kind` also names it in `error_id` (credly.<kind>)."""

    def __init__(
        self,
        kind: AuthKind,
        message: str,
        hint: str,
        *,
        status: int | None = None,
        body_shape: Any = None,
    ) -> None:
        super().__init__(message, hint, error_id=f"credly.{kind}")
        self.kind: AuthKind = kind
        self.status = status
        self.body_shape = body_shape


class CredlyUnavailable(CredlyError, Unavailable):
    """Credly or the network failed in a way that retrying later may fix (exit 3)."""

    kind: UnavailableKind

    def __init__(
        self,
        kind: UnavailableKind,
        message: str,
        hint: str = "",
        *,
        status: int | None = None,
        body_shape: Any = None,
    ) -> None:
        super().__init__(
            kind, message, hint, service="credly", status=status, body_shape=body_shape
        )
