"""Graph and Entra failures an admin can act on, as branches of the tree in
`credly_connector.errors`. No message ever holds a token or secret.
"""

from __future__ import annotations

from typing import Any, Literal

from credly_connector.errors import CredlyctlError, RemoteRefused, Unavailable

UnavailableKind = Literal["network", "tls", "server", "throttled", "malformed"]


class GraphError(CredlyctlError):
    """Base of every Graph failure: what Graph said (status, code, message, request id)."""

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
        # Not super(): in GraphUnavailable the next class is Unavailable, which takes a kind.
        CredlyctlError.__init__(self, message, hint, error_id=error_id)
        self.status = status
        self.code = code
        self.graph_message = graph_message
        self.request_id = request_id
        self.body_shape = body_shape


class GraphRefused(GraphError, RemoteRefused):
    """Graph answered 4xx (not 429): our request, the token or the tenant is wrong for it, and
    sending it again will not change that (exit 2)."""


class GraphPermissionError(GraphRefused):
    """The app lacks an application permission (or its admin consent) for this call."""

    def __init__(self, message: str, hint: str = "", *, permission: str, **kwargs: Any) -> None:
        kwargs.setdefault("error_id", "graph.permission")
        super().__init__(message, hint, **kwargs)
        self.permission = permission


class GraphUnavailable(GraphError, Unavailable):
    """Graph or the network failed in a way that retrying later may fix (exit 3)."""

    kind: UnavailableKind

    def __init__(self, kind: UnavailableKind, message: str, hint: str = "", **kwargs: Any) -> None:
        kwargs.setdefault("error_id", f"graph.{kind}")
        GraphError.__init__(self, message, hint, **kwargs)
        self.kind = kind


class DeltaExpiredError(GraphRefused):
    """The saved /users/delta link is no longer valid: a full listing is needed."""


class EntraAuthError(RemoteRefused):
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


class EntraUnavailable(Unavailable):
    """Entra ID or the network failed (5xx, timeout, DNS, TLS): retrying later may help."""

    kind: UnavailableKind

    def __init__(self, kind: UnavailableKind, message: str, hint: str = "") -> None:
        super().__init__(kind, message, hint, service="entra")
