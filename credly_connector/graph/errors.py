"""Graph and Entra failures an admin can act on. No message ever holds a token or secret."""

from __future__ import annotations

from typing import Any, Literal

from credly_connector.errors import CredlyctlError, RemoteError, UsageError
from credly_connector.exit_codes import ExitCode

UnavailableKind = Literal["network", "tls", "server", "throttled", "malformed"]


class GraphError(CredlyctlError):
    """Graph refused a request. The base is a remote failure unless a subclass says otherwise."""

    exit_code = ExitCode.REMOTE

    def __init__(
        self,
        message: str,
        hint: str = "",
        *,
        status: int | None = None,
        code: str | None = None,
        graph_message: str | None = None,
        request_id: str | None = None,
        error_id: str = "graph.error",
        body_shape: Any = None,
    ) -> None:
        super().__init__(message, hint, error_id=error_id)
        self.status = status
        self.code = code
        self.graph_message = graph_message
        self.request_id = request_id
        self.body_shape = body_shape


class GraphPermissionError(GraphError, UsageError):
    """The app lacks an application permission (or its admin consent) for this call."""

    exit_code = ExitCode.USAGE

    def __init__(self, message: str, hint: str = "", *, permission: str, **kwargs: Any) -> None:
        kwargs.setdefault("error_id", "graph.permission")
        super().__init__(message, hint, **kwargs)
        self.permission = permission


class GraphUnavailable(GraphError, RemoteError):
    """Graph or the network failed in a way that retrying later may fix."""

    exit_code = ExitCode.REMOTE

    def __init__(self, kind: UnavailableKind, message: str, hint: str = "", **kwargs: Any) -> None:
        kwargs.setdefault("error_id", f"graph.{kind}")
        super().__init__(message, hint, **kwargs)
        self.kind: UnavailableKind = kind


class DeltaExpiredError(GraphError):
    """The saved /users/delta link is no longer valid: a full listing is needed."""


class EntraAuthError(UsageError):
    """Entra ID refused to issue a token; `cause` and `fix` come from graph/aadsts.py."""

    def __init__(
        self,
        message: str,
        hint: str,
        *,
        codes: list[int],
        error: str | None,
        summary: str | None,
        correlation_id: str | None = None,
        trace_id: str | None = None,
        timestamp: str | None = None,
        cause: str | None = None,
        fix: str | None = None,
    ) -> None:
        primary = codes[0] if codes else None
        super().__init__(
            message, hint, error_id=f"entra.aadsts{primary}" if primary else "entra.auth"
        )
        self.codes = codes
        self.error = error
        self.summary = summary
        self.correlation_id = correlation_id
        self.trace_id = trace_id
        self.timestamp = timestamp
        self.cause = cause
        self.fix = fix

    def support_details(self) -> dict[str, str | None]:
        return {
            "correlation_id": self.correlation_id,
            "trace_id": self.trace_id,
            "timestamp": self.timestamp,
        }


class EntraUnavailable(RemoteError):
    """Entra ID or the network failed (5xx, timeout, DNS, TLS): retrying later may help."""

    def __init__(self, kind: UnavailableKind, message: str, hint: str = "") -> None:
        super().__init__(message, hint, error_id=f"entra.{kind}")
        self.kind: UnavailableKind = kind
