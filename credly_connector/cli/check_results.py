"""How one diagnostic check result reads in a terminal (diagnose, explain-user, demo).

Shared by several commands, so it lives outside cli/commands/: command modules do not import
each other (the import contract in pyproject.toml).
"""

from __future__ import annotations

from rich.console import Console

from credly_connector.diagnostics.model import CheckResult, CheckStatus

MARKS = {
    CheckStatus.OK: "[✓]",
    CheckStatus.WARN: "[!]",
    CheckStatus.FAIL: "[✗]",
    CheckStatus.ERROR: "[✗]",
    CheckStatus.SKIPPED: "[-]",
    CheckStatus.NOTE: "[i]",
}


def render_result(console: Console, result: CheckResult, *, verbose: bool) -> None:
    label = " (note)" if result.status is CheckStatus.NOTE else ""
    if result.status is CheckStatus.ERROR:
        label = " (could not check)"
    ref = result.check_id
    if result.cause and result.status in (CheckStatus.WARN, CheckStatus.FAIL):
        ref += f": {result.cause}"
    console.print(f"{MARKS[result.status]} {result.title}{label}  [{ref}]")
    console.print(f"    {result.explanation}")
    if result.fix and result.status not in (CheckStatus.OK, CheckStatus.SKIPPED):
        console.print(f"    Fix: {result.fix}")
    if verbose and result.evidence:
        for key, value in result.evidence.items():
            console.print(f"    · {key}: {value}")
