"""support-bundle: one zip an admin can attach to a support request, with nothing secret in it.

It holds versions, the redacted configuration, `status`, the tail of the last crawl log, the
connection diagnosis, and the SHAPES of the answers the real services gave (keys, value types,
status codes; never values), so the simulator's inferred behaviours can be checked against
reality. Every file passes through the secret scrubber and an e-mail address filter before it
is written: the bundle leaves the organization, people's addresses must not.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

from credly_connector import __version__
from credly_connector.config.resolved import InstanceSettings
from credly_connector.diagnostics.context import DiagnosticContext, ShapeRecorder
from credly_connector.diagnostics.registry import run_checks, verdict
from credly_connector.errors import CredlyctlError, UsageError
from credly_connector.localfiles import (
    LocalFileError,
    create_private_file,
    ensure_folder,
    refuse_special_file,
)
from credly_connector.secrets import scrub

StatusProvider = Callable[[InstanceSettings], dict[str, Any]]

# OData annotations ("awards@odata.type") look like addresses but are field names: kept.
EMAIL = re.compile(r"[A-Za-z0-9._%+'\-]+@(?!odata\.)[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
LOG_TAIL_LINES = 500
PACKAGES = ("httpx", "msal", "pydantic", "typer", "rich", "platformdirs", "cryptography", "certifi")


def redact(text: str) -> str:
    """Known secrets and e-mail addresses removed (addresses identify people)."""
    return EMAIL.sub("<email>", scrub(text))


@dataclass
class BundleReport:
    path: Path
    files: list[str] = field(default_factory=list)
    diagnosis_exit_code: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "files": list(self.files),
            "diagnosis_exit_code": self.diagnosis_exit_code,
            "notes": list(self.notes),
        }


def versions() -> dict[str, Any]:
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return {
        "credlyctl": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(terse=True),
        "packages": found,
    }


def _error(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, CredlyctlError):
        return {"error": exc.to_dict()}
    return {"error": {"id": "internal", "message": type(exc).__name__, "hint": ""}}


def _configuration(ctx: DiagnosticContext) -> dict[str, Any]:
    from credly_connector.config.load import load_instance_with_origins
    from credly_connector.config.show import settings_view

    if ctx.settings is None:
        return {"loaded": False, **_error(ctx.config_error or UsageError("no configuration"))}
    try:
        settings, origins = load_instance_with_origins(ctx.config_path, ctx.instance)
    except CredlyctlError as exc:
        return {"loaded": False, **_error(exc)}
    return {
        "loaded": True,
        "instance": settings.name,
        "settings": settings_view(settings),
        "origins": dict(sorted(origins.items())),
        "warnings": list(settings.warnings),
    }


def _crawl_log(settings: InstanceSettings | None, explicit: Path | None) -> tuple[str, str]:
    """(file text, note) for the most recent crawl log: given, or found in the state folder."""
    candidates: list[Path] = []
    if explicit is not None:
        candidates = [explicit]
    elif settings is not None and settings.sync.state_dir.is_dir():
        candidates = sorted(
            (
                p
                for pattern in ("*.jsonl", "*.log")
                for p in settings.sync.state_dir.glob(pattern)
                if p.is_file()
            ),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
    if not candidates:
        return "", "no crawl log found (`credlyctl sync --log-file PATH` writes one)"
    path = candidates[0]
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        return "", f"the crawl log {path} could not be read ({type(exc).__name__})"
    return "\n".join(lines[-LOG_TAIL_LINES:]) + "\n", f"crawl log: last lines of {path.name}"


def _extra_reads(ctx: DiagnosticContext) -> None:
    """Read-only requests the checks do not make, so their answers' shapes are recorded too."""
    reads: list[Callable[[], Any]] = [
        lambda: next(iter(ctx.graph().iter_users()), None),
        ctx.profile_settings,
        lambda: ctx.credly().list_organizations(),
    ]
    for read in reads:
        try:
            read()
        except Exception:  # a shape we cannot get is simply absent from the bundle
            continue


def write_bundle(
    ctx: DiagnosticContext,
    output: Path | None = None,
    *,
    status_provider: StatusProvider | None = None,
    crawl_log: Path | None = None,
) -> BundleReport:
    """Run the connection diagnosis with shape recording and write the archive."""
    ctx.shapes = ctx.shapes or ShapeRecorder()
    stamp = ctx.now.astimezone(UTC).strftime("%Y%m%d-%H%M%S")
    name = ctx.settings.name if ctx.settings else (ctx.instance or "unconfigured")
    path = output or Path.cwd() / f"credlyctl-support-{name}-{stamp}.zip"
    if path.is_dir() and not path.is_symlink():
        path = path / f"credlyctl-support-{name}-{stamp}.zip"
    refuse_special_file(path, "support bundle path")  # before the diagnosis, not after it
    report = BundleReport(path)

    results = run_checks(ctx)
    report.diagnosis_exit_code = int(verdict(results))
    if ctx.settings is not None:
        _extra_reads(ctx)
    status: dict[str, Any]
    if ctx.settings is None or status_provider is None:
        status = {"available": False}
    else:
        try:
            status = status_provider(ctx.settings)
        except Exception as exc:
            status = _error(exc)
    log_text, log_note = _crawl_log(ctx.settings, crawl_log)
    report.notes.append(log_note)

    documents: dict[str, Any] = {
        "versions.json": {**versions(), "created_at": ctx.now.astimezone(UTC).isoformat()},
        "configuration.json": _configuration(ctx),
        "status.json": status,
        "diagnosis.json": {
            "exit_code": report.diagnosis_exit_code,
            "checks": [r.to_dict() for r in results],
        },
        "service-shapes.json": {
            "about": "Keys, value types and status codes of the answers Credly, Entra ID and "
            "Graph gave during this diagnosis; values are never recorded.",
            "answers": ctx.shapes.entries(),
        },
    }
    _write_zip(path, documents, log_text)
    report.files = [*documents, *(["crawl-log.jsonl"] if log_text else []), "README.txt"]
    return report


_README = """credlyctl support bundle

versions.json         credlyctl, Python and library versions
configuration.json    the effective configuration (secrets shown only as source + fingerprint)
status.json           what `credlyctl status` reports
diagnosis.json        the connection checks (`credlyctl diagnose` without an email)
service-shapes.json   keys, value types and status codes of the services' answers (no values)
crawl-log.jsonl       the last lines of the most recent crawl log, when one was found

Secrets and e-mail addresses are removed from every file.
"""


def _write_zip(path: Path, documents: dict[str, Any], log_text: str) -> None:
    """Write `path.partial`, then rename it over `path`: a reader never sees half a zip.

    A symlink, FIFO or device at either path is refused, never followed or replaced (writing
    `-o /dev/full` as root would otherwise replace the device node).
    """
    ensure_folder(path.parent, "folder for the support bundle")
    refuse_special_file(path, "support bundle path")
    partial = path.with_name(path.name + ".partial")
    fd = create_private_file(partial, "support bundle")
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zipped:
            for name, document in documents.items():
                text = json.dumps(document, indent=2, default=str, ensure_ascii=False)
                zipped.writestr(name, redact(text) + "\n")
            if log_text:
                zipped.writestr("crawl-log.jsonl", redact(log_text))
            zipped.writestr("README.txt", _README)
        refuse_special_file(path, "support bundle path")
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise LocalFileError.from_os_error(exc, path, "support bundle") from None
