"""Credly failures an admin can act on. No message ever holds a secret or a token."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from credly_connector.errors import CredlyctlError, RemoteError, UsageError

AuthKind = Literal["invalid_client", "token_rejected", "forbidden", "not_found"]
UnavailableKind = Literal["network", "tls", "server", "throttled", "malformed", "unexpected"]
Kind = TypeVar("Kind", bound=str)


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


class _KindedCredlyError(CredlyError, Generic[Kind]):
    """A Credly failure sorted by `kind`, which also names it in `error_id` (credly.<kind>)."""

    def __init__(
        self,
        kind: Kind,
        message: str,
        hint: str,
        *,
        status: int | None = None,
        body_shape: Any = None,
    ) -> None:
        super().__init__(
            message, hint, status=status, body_shape=body_shape, error_id=f"credly.{kind}"
        )
        self.kind: Kind = kind


class CredlyAuthError(_KindedCredlyError[AuthKind], UsageError):
    """The credentials or the Organization ID are wrong: fixing the configuration helps."""


class CredlyUnavailable(_KindedCredlyError[UnavailableKind], RemoteError):
    """Credly or the network failed in a way that retrying later may fix."""
