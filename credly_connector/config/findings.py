"""Configuration findings: stable ids an admin (or a CI script) can search for and act on.

Every id is documented in docs/configuration.md with its cause and fix; a test checks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


# id -> one-line title (the docs table and `validate-config --json` consumers rely on the ids).
CATALOGUE: dict[str, str] = {
    "CFG000": "configuration file not found or not readable",
    "CFG001": "TOML syntax error",
    "CFG002": "unknown key",
    "CFG003": "invalid value",
    "CFG004": "missing required value",
    "CFG005": "Organization ID is not a GUID",
    "CFG006": "same Organization ID in several instances",
    "CFG007": "several Organization IDs in one instance",
    "CFG008": "schema customization attempt",
    "CFG009": "Graph connection id breaks Graph's rules",
    "CFG010": "secret environment variable not set",
    "CFG011": "secret file missing, unreadable or empty",
    "CFG012": "endpoint URL is not https",
    "CFG013": "unknown endpoint host without the opt-in",
    "CFG014": "Credly API host where the web host belongs",
    "CFG015": "sandbox and production mixed",
    "CFG016": "unsupported Microsoft cloud",
    "CFG017": "inline secret",
    "CFG018": "file with inline secrets readable by others",
    "CFG019": "custom endpoint hosts allowed",
    "CFG020": "CA bundle or certificate file missing or unusable",
    "CFG021": "no instance defined",
    "CFG022": "unknown or ambiguous instance",
    "CFG023": "conflicting credentials",
    "CFG024": "tenant or client id malformed",
    "CFG025": "legacy Acclaim host",
    "CFG026": "unknown CREDLYCTL_ environment variable",
    "CFG027": "invalid instance name",
    "CFG028": "crawl cadence inverted",
    "CFG029": "credential expired or expiring",
    "CFG030": "malformed secret reference",
    "CFG031": "malformed or unsupported proxy URL",
    "CFG032": "federated token file unusable",
    "CFG033": "managed identity endpoint unusable",
    "CFG034": "user name or password in an endpoint URL",
}


@dataclass(frozen=True)
class Finding:
    id: str
    severity: Severity
    path: str  # dotted key path, e.g. instances.contoso.credly.org_id ("" for the whole file)
    message: str  # what is wrong
    hint: str = ""  # how to fix it

    def __post_init__(self) -> None:
        if self.id not in CATALOGUE:  # a typo here would silently break the documented contract
            raise ValueError(f"undocumented finding id {self.id}")

    @property
    def is_error(self) -> bool:
        return self.severity == Severity.ERROR

    def to_dict(self) -> dict[str, str]:
        return {
            "id": self.id,
            "severity": str(self.severity),
            "path": self.path,
            "message": self.message,
            "hint": self.hint,
        }

    def line(self) -> str:
        where = f" {self.path}:" if self.path else ""
        fix = f" Fix: {self.hint}" if self.hint else ""
        return f"{self.id} {self.severity}{where} {self.message}{fix}"


def error(fid: str, path: str, message: str, hint: str = "") -> Finding:
    return Finding(fid, Severity.ERROR, path, message, hint)


def warning(fid: str, path: str, message: str, hint: str = "") -> Finding:
    return Finding(fid, Severity.WARNING, path, message, hint)


def info(fid: str, path: str, message: str, hint: str = "") -> Finding:
    return Finding(fid, Severity.INFO, path, message, hint)
