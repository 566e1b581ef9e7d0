"""Shared machinery of the instance resolver: context, finding helpers, URL and host checks.

The resolver is split by domain (resolve_secrets, resolve_credly, resolve_entra, resolve); each
part is a mixin over `ResolverBase`, which holds the state they share.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TypeVar
from urllib.parse import SplitResult, urlsplit

from pydantic import BaseModel, ValidationError

from credly_connector.config.findings import Finding, Severity, error, warning
from credly_connector.config.raw import INVALID, SECRET_FIELDS, RawInstance
from credly_connector.endpoints import (
    CREDLY_LEGACY_HOSTS,
)
from credly_connector.secrets import register_secret_value

EXPIRY_WARNING = timedelta(days=30)

_M = TypeVar("_M", bound=BaseModel)


@dataclass(frozen=True)
class Context:
    config_path: Path | None
    environ: Mapping[str, str]
    today: date
    file_mode: int | None = None  # st_mode of the configuration file, for the CFG018 check


class ResolverBase:
    def __init__(self, raw: RawInstance, ctx: Context) -> None:
        # A copy: resolving takes special keys out of the sections and must not change the input.
        self.raw = RawInstance(
            raw.name, {k: dict(v) for k, v in raw.sections.items()}, dict(raw.origins)
        )
        self.ctx = ctx
        self.base = f"instances.{raw.name}"
        self.findings: list[Finding] = []
        self.custom_hosts: set[str] = set()
        self.inline_secret_paths: list[str] = []
        self.allow_custom = False
        self._sections: dict[str, BaseModel] = {}

    def path(self, section: str, key: str) -> str:
        return f"{self.base}.{section}.{key}"

    def add(self, finding: Finding) -> None:
        key = finding.path.removeprefix(f"{self.base}.")
        if finding.id == "CFG004" and self.raw.origins.get(key) == INVALID:
            return  # the value is there but malformed, which has its own finding
        self.findings.append(finding)

    def by(self, section: str, key: str) -> str:
        origin = self.raw.origin(section, key)
        return f" (set by {origin[4:]})" if origin.startswith("env:") else ""

    def file_path(self, value: Path) -> Path:
        """Relative paths are relative to the configuration file, not the working directory."""
        value = value.expanduser()
        if not value.is_absolute() and self.ctx.config_path is not None:
            return self.ctx.config_path.parent / value
        return value

    def section(self, name: str, model: type[_M]) -> _M:
        cached = self._sections.get(name)
        if isinstance(cached, model):
            return cached
        result = self._validate_section(name, model)
        self._sections[name] = result
        return result

    def _validate_section(self, name: str, model: type[_M]) -> _M:
        data = dict(self.raw.sections.get(name, {}))
        for _ in range(len(data) + 1):
            try:
                return model.model_validate(data)
            except ValidationError as exc:
                for err in exc.errors():
                    key = str(err["loc"][0])
                    sub = "".join(f".{part}" for part in err["loc"][1:])
                    shown = ""
                    if (name, key) not in SECRET_FIELDS and isinstance(
                        err.get("input"), str | int | float | bool
                    ):
                        shown = f" (got {str(err['input'])[:60]!r})"
                    self.add(
                        error(
                            "CFG003",
                            f"{self.path(name, key)}{sub}",
                            f"{err['msg']}{shown}{self.by(name, key)}.",
                            "See docs/configuration.md for the accepted values.",
                        )
                    )
                    data.pop(key, None)
                    self.raw.origins[f"{name}.{key}"] = INVALID
        return model()  # unreachable in practice: every failing key has been dropped

    def url(self, section: str, key: str, value: str) -> SplitResult | None:
        path = self.path(section, key)
        try:
            parts = urlsplit(value.strip())
            _ = parts.port  # raises ValueError on a malformed port
        except ValueError:
            self.add(error("CFG003", path, "This is not a valid URL.", "e.g. https://host"))
            return None
        if not parts.hostname:
            self.add(
                error("CFG003", path, "This is not an absolute URL.", "Write https://<host>...")
            )
            return None
        if parts.username is not None or parts.password is not None:
            # Never shown (config show), never sent (the Graph scope is built from the URL).
            for part in (parts.username, parts.password):
                if part:
                    register_secret_value(part)
            host = parts.hostname + (f":{parts.port}" if parts.port else "")
            self.add(
                error(
                    "CFG034",
                    path,
                    "The URL holds a user name or password (user:password@host); credlyctl "
                    "never sends those to an endpoint.",
                    f"Remove them: https://{host}{parts.path}",
                )
            )
            return None
        if parts.scheme.lower() != "https":
            self.add(
                error(
                    "CFG012",
                    path,
                    f"The URL uses {parts.scheme or 'no scheme'}:, but credentials only travel "
                    "over https.",
                    f"Use https://{parts.netloc}{parts.path}",
                )
            )
            return None
        return parts

    def custom(self, section: str, key: str, host: str, what: str) -> bool:
        """Accept an unknown host only with the explicit opt-in."""
        if self.allow_custom:
            self.custom_hosts.add(host)
            return True
        self.add(
            error(
                "CFG013",
                self.path(section, key),
                f"{host} is not a known {what} host; credlyctl only sends credentials to the "
                "known hosts of the configured environment.",
                f"Remove {key} to use the standard host, or (for the simulator or a test "
                "double only) set network.allow_custom_hosts = true.",
            )
        )
        return False

    def expiry(self, path: str, what: str, expires: date, hint: str) -> None:
        today = self.ctx.today
        if expires < today:
            self.add(error("CFG029", path, f"{what} expired on {expires.isoformat()}.", hint))
        elif expires - today <= EXPIRY_WARNING:
            self.add(warning("CFG029", path, f"{what} expires on {expires.isoformat()}.", hint))

    def ignored(self, section: str, keys: str, because: str) -> Finding:
        return warning(
            "CFG023",
            f"{self.base}.{section}",
            f"{keys} is set but ignored because of {because}.",
            "Remove what is not used, so nobody rotates the wrong credential.",
        )


def legacy_host(path: str, host: str) -> Finding:
    return error(
        "CFG025",
        path,
        f"{host} is the retired Acclaim host.",
        f"Use https://{CREDLY_LEGACY_HOSTS[host]} (base_url) or remove the key and set "
        "environment.",
    )


def mixed(path: str, host: str, belongs_to: str, configured: str) -> Finding:
    return error(
        "CFG015",
        path,
        f"{host} belongs to {belongs_to}, but this instance is configured for {configured}; "
        "credentials of one environment never work in the other.",
        f"Use the {configured} host (remove the URL to derive it), or change the environment "
        "or cloud setting.",
    )


def missing(path: str, message: str, hint: str) -> Finding:
    return error("CFG004", path, message, hint)


def any_error(findings: list[Finding]) -> bool:
    return any(f.severity == Severity.ERROR for f in findings)
