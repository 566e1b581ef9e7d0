"""A redacted, JSON-ready view of resolved settings for `config show`.

Secrets appear only as their source and fingerprint; a proxy password is masked.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from enum import Enum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from credly_connector.config.resolved import InstanceSettings
from credly_connector.secrets import REDACTED, Secret


def redact_url(url: str) -> str:
    """The URL with any password in it replaced by the redaction marker."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:{REDACTED}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _plain(value: Any) -> Any:
    if isinstance(value, Secret):
        return value.describe()
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, frozenset | set | tuple | list):
        return sorted(_plain(v) for v in value)
    return value


def settings_view(settings: InstanceSettings) -> dict[str, dict[str, Any]]:
    """Section -> key -> JSON value, including the derived URLs the tool will call."""
    view: dict[str, dict[str, Any]] = {}
    for part in ("credly", "entra", "graph", "sync", "network"):
        section = getattr(settings, part)
        view[part] = {f.name: _plain(getattr(section, f.name)) for f in dataclasses.fields(section)}
    view["credly"]["token_url"] = settings.credly.token_url
    view["entra"]["authority"] = settings.entra.authority
    view["entra"]["graph_scope"] = settings.entra.graph_scope
    network = settings.network
    view["network"].pop("environment_proxy", None)
    if network.proxy:
        view["network"]["proxy"] = redact_url(network.proxy)
        view["network"]["proxy_source"] = "network.proxy"
    elif network.environment_proxy:
        view["network"]["proxy"] = redact_url(network.environment_proxy)
        view["network"]["proxy_source"] = "environment (HTTPS_PROXY / NO_PROXY, read by httpx)"
    else:
        view["network"]["proxy_source"] = None
    view["entra"]["auth"] = settings.entra.credential_kind
    # No URL is shown with a user name or password in it (validate-config refuses them too).
    for section in view.values():
        for key, value in section.items():
            if isinstance(value, str) and "@" in value and "://" in value:
                section[key] = redact_url(value)
    return view


def format_value(value: Any) -> str:
    if isinstance(value, dict) and set(value) == {"source", "fingerprint"}:
        return f"<secret from {value['source']}, {value['fingerprint']}>"
    if value is None:
        return "(not set)"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "(none)"
    return str(value)
