"""Credly failures an admin can act on. No message ever holds a secret or a token."""

from __future__ import annotations

from typing import Any, Literal

from credly_connector.errors import CredlyctlError, RemoteError, UsageError

AuthKind = Literal["invalid_client", "token_rejected", "forbidden", "not_found"]
UnavailableKind = Literal["network", "tls", "server", "throttled", "malformed", "unexpected"]


class CredlyError(CredlyctlError):
    """Base of every Credly failure."""

    def __init__(
        self,
        message: str,
        hint: str = "",
        *,
        status: int | None = None,
        body_shape: Any = None,
        error_id: str = "",
    ) -> None:
        super().__init__(message, hint, error_id=error_id)
        self.status = status
        self.body_shape = body_shape


class CredlyAuthError(CredlyError, UsageError):
    """The credentials or the Organization ID are wrong: fixing the configuration helps."""

    def __init__(
        self,
        kind: AuthKind,
        message: str,
        hint: str,
        *,
        status: int | None = None,
        body_shape: Any = None,
    ) -> None:
        super().__init__(
            message, hint, status=status, body_shape=body_shape, error_id=f"credly.{kind}"
        )
        self.kind: AuthKind = kind


class CredlyUnavailable(CredlyError, RemoteError):
    """Credly or the network failed in a way that retrying later may fix."""

    def __init__(
        self,
        kind: UnavailableKind,
        message: str,
        hint: str,
        *,
        status: int | None = None,
        body_shape: Any = None,
    ) -> None:
        super().__init__(
            message, hint, status=status, body_shape=body_shape, error_id=f"credly.{kind}"
        )
        self.kind: UnavailableKind = kind
