"""Errors that reach the admin: each carries what went wrong, how to fix it, and an exit code.

Messages must never contain a secret, not even a part of one; see `secrets.Secret`.
"""

from __future__ import annotations

from credly_connector.exit_codes import ExitCode


class CredlyctlError(Exception):
    """Base of every error credlyctl reports on purpose (as opposed to a bug)."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, hint: str = "", *, error_id: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.error_id = error_id

    def to_dict(self) -> dict[str, str]:
        return {"id": self.error_id, "message": self.message, "hint": self.hint}


class UsageError(CredlyctlError):
    """Bad command-line usage or bad configuration: the command could not run (exit 2)."""

    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """The configuration cannot be found, parsed or used."""


class RemoteError(CredlyctlError):
    """A remote service or the network failed; retrying later may help (exit 3)."""

    exit_code = ExitCode.REMOTE


class ForbiddenHostError(UsageError):
    """A request would have gone to a host that is not known for this configuration."""
