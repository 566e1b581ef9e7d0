"""What to tell the admin when a request got no answer at all (TLS or network failure).

Credly, Graph and Entra ID clients each raise their own error type, but the failure is the
same one and deserves the same words, so the classification and the text live here.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import httpx

from credly_connector.net.transport import is_tls_error
from credly_connector.secrets import scrub

TransportKind = Literal["tls", "network"]

_TLS_HINT = (
    "If a proxy inspects TLS traffic, set network.ca_bundle to its CA certificate; otherwise "
    "check the system clock"
)


class TransportFailure(NamedTuple):
    """The `kind, message, hint` every client's Unavailable error takes, in that order."""

    kind: TransportKind
    message: str
    hint: str


def describe_transport_error(
    exc: httpx.TransportError, host: str, *, service: str | None = None, detailed: bool = False
) -> TransportFailure:
    """Classify `exc` as a TLS or network failure towards `host` and word it for the admin.

    `service` names the remote in the message ("Microsoft Graph at host"). `detailed` keeps
    the Credly client's fuller wording, which it had before this was shared: the error text in
    the message, and the URL and the proxy settings in the hints.
    """
    if is_tls_error(exc):
        return TransportFailure(
            "tls",
            f"the TLS connection to {host} failed: {scrub(str(exc))[:300]}",
            f"{_TLS_HINT} and the URL." if detailed else f"{_TLS_HINT}.",
        )
    where = f"{service} at {host}" if service else host
    reason = exc.__class__.__name__
    if detailed:
        return TransportFailure(
            "network",
            f"could not reach {where}: {reason} {scrub(str(exc))[:200]}".strip(),
            "Check the network, DNS and proxy settings (network.proxy, HTTPS_PROXY), then retry.",
        )
    return TransportFailure(
        "network",
        f"could not reach {where}: {reason}",
        "Check the network, DNS and proxy settings, then retry.",
    )
