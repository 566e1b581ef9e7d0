"""The shape of a diagnostic check and of its result (shared by every check in diagnostics/).

A check answers one question with live data and says, in one plain sentence, what it found.
Its result names the row of Microsoft's troubleshooting table it detects (`table_row`), so
`diagnose` can list causes in the table's order and docs/troubleshooting.md can map rows to
checks. Evidence holds the values that were compared, never a secret.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from credly_connector.errors import CredlyctlError, is_retryable
from credly_connector.exit_codes import ExitCode
from credly_connector.secrets import scrub

if TYPE_CHECKING:
    from credly_connector.diagnostics.context import DiagnosticContext

Scope = Literal["connection", "user"]


class CheckStatus(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIPPED = "skipped"  # a prerequisite did not pass; the explanation says which
    ERROR = "error"  # the check could not conclude (it crashed, or a service did not answer)
    NOTE = "note"  # expected behaviour worth saying, e.g. Copilot citing office.com


# A check whose prerequisite ended in one of these may still run.
PASSING = frozenset({CheckStatus.OK, CheckStatus.WARN, CheckStatus.NOTE})

# Stable keys for the rows of Microsoft's troubleshooting table
# (../shared/seed/credly-connector-troubleshooting.txt), in the table's order.
TABLE_ROWS: tuple[str, ...] = (
    "email-mismatch",
    "badge-not-accepted-or-private",
    "user-inactive",
    "initial-sync-incomplete",
    "not-synced-yet",
    "copilot-cites-office",
    "invalid-org-id",
    "bad-client-credentials",
    "wrong-endpoint-url",
    "multiple-orgs",
    "fixed-schema",
)


@dataclass(frozen=True)
class CheckResult:
    check_id: str
    title: str
    status: CheckStatus
    explanation: str  # one plain sentence
    fix: str = ""  # what to do; empty when ok
    evidence: dict[str, Any] = field(default_factory=dict)
    table_row: str | None = None
    # True when a service or the network failing (not a finding) kept this from concluding;
    # `verdict` then says "retry" (exit 3) rather than "problem found".
    remote_failure: bool = False
    # A finer, stable id of the cause found (e.g. "badge_pending", "email_no_user"): several
    # causes share one table row, and the verdict lists each cause once by this id.
    cause: str | None = None
    # Set on an ERROR result caused by a refusal or a usage error: the exit code its class
    # means (see credly_connector.errors), so a Graph 401 exits alike in diagnose and sync.
    exit_code: ExitCode | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "check_id": self.check_id,
            "title": self.title,
            "status": str(self.status),
            "explanation": scrub(self.explanation),
            "fix": scrub(self.fix),
            "evidence": _scrubbed(self.evidence),
            "table_row": self.table_row,
            "remote_failure": self.remote_failure,
            "cause": self.cause,
        }


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {str(k): _scrubbed(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrubbed(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return scrub(str(value))


RunFunction = Callable[["DiagnosticContext"], "CheckResult | list[CheckResult]"]


@dataclass
class Check:
    id: str  # stable and dotted, e.g. "credly.org_id_format"
    title: str
    scope: Scope
    run: RunFunction
    requires: tuple[str, ...] = ()
    table_rows: tuple[str, ...] = ()
    cause: str = ""  # for docs/checks.md
    fix: str = ""  # for docs/checks.md

    def stamp(self, result: CheckResult) -> CheckResult:
        """Fill in the check id and title a result built with `ok()`/`fail()`... leaves empty."""
        return replace(
            result,
            check_id=result.check_id or self.id,
            title=result.title or self.title,
        )


def _result(
    status: CheckStatus,
    explanation: str,
    fix: str = "",
    *,
    evidence: dict[str, Any] | None = None,
    table_row: str | None = None,
    remote_failure: bool = False,
    check_id: str = "",
    title: str = "",
    cause: str | None = None,
    exit_code: ExitCode | None = None,
) -> CheckResult:
    return CheckResult(
        check_id=check_id,
        title=title,
        status=status,
        explanation=explanation,
        fix=fix,
        evidence=dict(evidence or {}),
        table_row=table_row,
        remote_failure=remote_failure,
        cause=cause,
        exit_code=exit_code,
    )


# Builders for check functions; the registry stamps the check's id and title on the result.
def ok(explanation: str, *, evidence: dict[str, Any] | None = None, **kw: Any) -> CheckResult:
    return _result(CheckStatus.OK, explanation, evidence=evidence, **kw)


def warn(explanation: str, fix: str = "", **kw: Any) -> CheckResult:
    return _result(CheckStatus.WARN, explanation, fix, **kw)


def fail(explanation: str, fix: str = "", **kw: Any) -> CheckResult:
    return _result(CheckStatus.FAIL, explanation, fix, **kw)


def note(explanation: str, fix: str = "", **kw: Any) -> CheckResult:
    return _result(CheckStatus.NOTE, explanation, fix, **kw)


def skipped(explanation: str, **kw: Any) -> CheckResult:
    return _result(CheckStatus.SKIPPED, explanation, **kw)


def error(explanation: str, fix: str = "", **kw: Any) -> CheckResult:
    return _result(CheckStatus.ERROR, explanation, fix, **kw)


def error_from(exc: CredlyctlError, explanation: str, fix: str = "", **kw: Any) -> CheckResult:
    """An ERROR result for a check that `exc` kept from concluding.

    A retryable failure says "retry later" (exit 3); a refusal or a usage error keeps the exit
    code of its class (2); anything else counts as a problem found (1).
    """
    if is_retryable(exc):
        return error(
            explanation,
            fix or exc.hint or "Run the command again later.",
            remote_failure=True,
            **kw,
        )
    code = exc.exit_code if exc.exit_code is not ExitCode.INTERNAL else None
    return error(explanation, fix or exc.hint, exit_code=code, **kw)
