"""Every error credlyctl reports on purpose, in one tree: the class alone says what failed and
which exit code it means.

    CredlyctlError                 base: a message, a hint and a stable error id
    ├── UsageError          2      the command line is wrong (unknown option, bad email...)
    │   ├── ConfigError     2      the configuration cannot be found, parsed or used
    │   └── ForbiddenHostError 2   a request would go to a host (or port) not known for it:
    │                              refused before anything is sent
    ├── RemoteError                a remote service (Credly, Entra ID, Graph) or the network
    │   ├── Retryable       3      no answer, TLS failure, 429, 5xx, a malformed answer:
    │   │   │                      retrying later may help
    │   │   └── Unavailable        ... sorted by `kind` (network, tls, server, throttled...)
    │   │       ├── credly.errors.CredlyUnavailable
    │   │       ├── graph.errors.GraphUnavailable
    │   │       └── graph.errors.EntraUnavailable
    │   └── RemoteRefused   2      the service answered and refused; retrying cannot fix it:
    │       │                      credentials, permissions or consent, or a request the
    │       │                      service calls wrong (HTTP 400, a Graph 401 or 403)
    │       ├── credly.errors.CredlyAuthError
    │       ├── graph.errors.GraphRefused (GraphPermissionError, DeltaExpiredError)
    │       └── graph.errors.EntraAuthError
    └── InternalError       4      credlyctl broke one of its own rules: a bug

Why a refusal is 2 and not 3 or 4: exit 3 tells a scheduler "run me again later", which does
not help when the service says no; exit 4 is for credlyctl crashing. A refusal is reported
with its cause and needs a person to act (fix the configuration, grant a permission, or report
a request the service calls wrong), the same as a configuration error. The same refusal gives
the same code in every command (sync, setup, status, diagnose...).

A request that got no answer at all is worded once, for every service, by
`net.failures.describe_transport_error` and raised as that service's `Unavailable`. Which
answers are retried, and for how long, is `net.retry`'s policy; `is_retryable` below only says
whether an error that reached the caller is worth running the command again for.

Exceptions that are not CredlyctlError are bugs (exit 4). Messages never contain a secret, not
even a part of one; see `secrets.Secret`.
"""

from __future__ import annotations

from typing import Any

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
    """Bad command-line usage: the command could not run (exit 2)."""

    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """The configuration cannot be found, parsed or used (exit 2)."""


class ForbiddenHostError(UsageError):
    """A request would have gone to a host that is not known for this configuration."""


class RemoteError(CredlyctlError):
    """A remote service or the network failed. Raise `Retryable` or `RemoteRefused`; this base
    on its own is treated as retryable (exit 3)."""

    exit_code = ExitCode.REMOTE


class Retryable(RemoteError):
    """No usable answer (network, TLS, 429, 5xx, malformed): retrying later may help (exit 3)."""

    exit_code = ExitCode.REMOTE


class Unavailable(Retryable):
    """A service did not give a usable answer, sorted by `kind`; the error id is
    `<service>.<kind>` (e.g. `graph.throttled`)."""

    def __init__(
        self,
        kind: str,
        message: str,
        hint: str = "",
        *,
        service: str,
        status: int | None = None,
        body_shape: Any = None,
        error_id: str = "",
    ) -> None:
        super().__init__(message, hint, error_id=error_id or f"{service}.{kind}")
        self.kind = kind
        self.status = status
        self.body_shape = body_shape


class RemoteRefused(RemoteError):
    """The service answered and refused; retrying alone cannot fix it (exit 2)."""

    exit_code = ExitCode.USAGE


class InternalError(CredlyctlError):
    """credlyctl broke one of its own rules: a bug to report (exit 4)."""

    exit_code = ExitCode.INTERNAL


def is_retryable(exc: BaseException) -> bool:
    """Whether trying again later may give another outcome (a `Retryable`, or a bare
    `RemoteError` raised by code that did not say which)."""
    return isinstance(exc, RemoteError) and not isinstance(exc, RemoteRefused)


def exit_code_of(exc: BaseException) -> ExitCode:
    """The exit code an exception means: its class's for our errors, 4 for anything else."""
    if isinstance(exc, CredlyctlError):
        return exc.exit_code
    return ExitCode.INTERNAL
