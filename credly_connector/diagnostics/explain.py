"""explain-user and diagnose: run the checks, then turn their results into a verdict.

The verdict lists the causes found in the order of Microsoft's troubleshooting table, then the
causes the table does not list, each once with its fix, whichever checks detected it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from credly_connector.diagnostics import registry
from credly_connector.diagnostics.context import DiagnosticContext
from credly_connector.diagnostics.model import TABLE_ROWS, CheckResult, CheckStatus, skipped
from credly_connector.diagnostics.user_lookup import prefetch, quietly
from credly_connector.exit_codes import ExitCode

# What each row of Microsoft's table means, in our words (the fix comes from the check).
ROW_TITLES: dict[str, str] = {
    "email-mismatch": "The badge's email does not match the user's UPN or primary SMTP address",
    "badge-not-accepted-or-private": "The badge is not accepted or not shared publicly",
    "user-inactive": "The user account is not active and licensed",
    "initial-sync-incomplete": "The initial sync has not completed",
    "not-synced-yet": "The badge has not been synced yet",
    "copilot-cites-office": "Copilot cites office.com instead of Credly (expected)",
    "invalid-org-id": "The Credly Organization ID is not valid",
    "bad-client-credentials": "The Client ID or Client Secret is wrong or expired",
    "wrong-endpoint-url": "The Credly API endpoint URL is wrong",
    "multiple-orgs": "Several Credly organizations need one instance each",
    "fixed-schema": "The schema cannot be customized",
}

CAUSE_STATUSES = frozenset({CheckStatus.FAIL})


def row_order(row: str | None) -> int:
    """Position of a row in Microsoft's table; causes the table does not list come after."""
    return TABLE_ROWS.index(row) if row in TABLE_ROWS else len(TABLE_ROWS)


def row_title(row: str | None) -> str:
    return ROW_TITLES.get(row or "", "Not in Microsoft's troubleshooting table")


@dataclass
class Cause:
    id: str  # the result's cause id, else its table row, else `check:<check id>`
    table_row: str | None
    check_ids: list[str] = field(default_factory=list)
    explanations: list[str] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)

    @property
    def in_table(self) -> bool:
        return self.table_row in TABLE_ROWS

    @property
    def title(self) -> str:
        return row_title(self.table_row) if self.in_table else self.explanations[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "table_row": self.table_row,
            "table_row_title": row_title(self.table_row) if self.in_table else None,
            "in_troubleshooting_table": self.in_table,
            "check_ids": self.check_ids,
            "explanations": self.explanations,
            "fixes": self.fixes,
        }


def causes_of(results: Iterable[CheckResult], *, strict: bool = False) -> list[Cause]:
    """One cause per cause id, ordered by the troubleshooting table, then as found."""
    statuses = CAUSE_STATUSES | ({CheckStatus.WARN} if strict else set())
    found: dict[str, Cause] = {}
    for result in results:
        if result.status not in statuses:
            continue
        key = result.cause or result.table_row or f"check:{result.check_id}"
        cause = found.setdefault(key, Cause(key, result.table_row))
        if result.check_id not in cause.check_ids:
            cause.check_ids.append(result.check_id)
        if result.explanation not in cause.explanations:
            cause.explanations.append(result.explanation)
        if result.fix and result.fix not in cause.fixes:
            cause.fixes.append(result.fix)
    ordered = list(found.values())
    return sorted(ordered, key=lambda c: (row_order(c.table_row), ordered.index(c)))


@dataclass
class Diagnosis:
    email: str | None
    results: list[CheckResult]
    causes: list[Cause]
    exit_code: ExitCode

    @property
    def notes(self) -> list[CheckResult]:
        return [r for r in self.results if r.status is CheckStatus.NOTE]

    @property
    def visible(self) -> bool:
        """True when the person's badges should be visible (nothing found that stops them)."""
        return self.exit_code is ExitCode.OK

    @property
    def next_command(self) -> str | None:
        return next_command(self)

    def to_dict(self) -> dict[str, Any]:
        counts = {str(s): 0 for s in CheckStatus}
        for result in self.results:
            counts[str(result.status)] += 1
        return {
            "email": self.email,
            "verdict": _verdict_word(self),
            "next_command": self.next_command,
            "causes": [c.to_dict() for c in self.causes],
            "notes": [r.explanation for r in self.notes],
            "counts": counts,
            "results": [r.to_dict() for r in self.results],
        }


# The command to run once the first cause's fix is done: the one that shows the fix worked.
_NEXT_BY_CAUSE_PREFIX: tuple[tuple[str, str], ...] = (
    ("no_completed_crawl", "credlyctl sync --full"),
    ("not_synced_yet", "credlyctl sync --user {email}"),
    ("item_has_stale_badges", "credlyctl sync --user {email}"),
    ("email_", "credlyctl sync --user {email}"),
    ("badge_in_other_organization", "credlyctl explain-user {email}"),
    ("badge_", "credlyctl sync --user {email}"),
    ("user_", "credlyctl sync --user {email}"),
    ("no_badges", "credlyctl explain-user ADDRESS-ON-THE-BADGE"),
)


# Connection causes: the command that checks the fix on its own, whoever was diagnosed.
_NEXT_FOR_CONNECTION: tuple[tuple[str, str], ...] = (
    ("config_", "credlyctl validate-config"),
    ("credly_", "credlyctl test-credentials"),
    ("org_", "credlyctl test-credentials"),
    ("entra_", "credlyctl test-credentials"),
    ("AADSTS", "credlyctl test-credentials"),
    ("graph_", "credlyctl test-credentials"),
    ("profile_source", "credlyctl setup"),
    ("connection_", "credlyctl setup"),
    ("schema_customization", "credlyctl validate-config"),
    ("schema_", "credlyctl setup"),
    ("last_crawl", "credlyctl status"),
    ("crawls_overdue", "credlyctl status"),
    ("deletes_held", "credlyctl status"),
)


def next_command(diagnosis: Diagnosis) -> str | None:
    """What to run next: after the first cause's fix, the command that shows it worked."""
    email = diagnosis.email
    if diagnosis.exit_code is ExitCode.OK:
        return None if email else "credlyctl status"
    if not diagnosis.causes:
        return f"credlyctl diagnose {email}" if email else "credlyctl diagnose"
    first = diagnosis.causes[0].id
    for prefix, command in _NEXT_FOR_CONNECTION:
        if first.startswith(prefix):
            return command
    if email:
        for prefix, command in _NEXT_BY_CAUSE_PREFIX:
            if first.startswith(prefix):
                return command.format(email=email)
        return f"credlyctl diagnose {email}"
    return "credlyctl diagnose"


def _verdict_word(diagnosis: Diagnosis) -> str:
    if diagnosis.exit_code is ExitCode.OK:
        return "visible" if diagnosis.email else "healthy"
    if diagnosis.exit_code is ExitCode.REMOTE:
        return "incomplete"
    return "causes-found"


def _finish(email: str | None, results: list[CheckResult], strict: bool) -> Diagnosis:
    return Diagnosis(
        email=email,
        results=results,
        causes=causes_of(results, strict=strict),
        exit_code=registry.verdict(results, strict=strict),
    )


def user_check_ids() -> list[str]:
    return [c.id for c in registry.all_checks("user")]


def explain_user(ctx: DiagnosticContext, email: str, *, strict: bool = False) -> Diagnosis:
    """The user checks only: why this person's badges do or do not show."""
    ctx.email = email
    with _prefetched(ctx):
        results = registry.run_checks(ctx, scope="user")
    return _finish(email, results, strict)


@contextmanager
def _prefetched(ctx: DiagnosticContext, *, connection: bool = False) -> Iterator[None]:
    """Start the person's independent lookups now; wait for them before the context closes.

    With `connection`, the connection checks' reads that need nothing but a token start too,
    instead of waiting for the check they come after (a check still reports only what its
    prerequisites allow; an answer nobody reads is dropped)."""
    wanted = ctx.settings is not None and ctx.email is not None and "@" in ctx.email
    pool = prefetch(ctx) if wanted else None
    if connection and pool is not None:
        from credly_connector.diagnostics.checks.graph_checks import PROBE_ITEM_ID

        # The two probes are each read after another answer (the organization, the
        # connection) but do not depend on it: asked now, they cost no round of their own.
        lookups: list[Callable[[], Any]] = [
            ctx.connection,
            ctx.schema,
            ctx.profile_sources,
            ctx.profile_settings,
            ctx.badge_probe,
            partial(ctx.connection_item, PROBE_ITEM_ID),
        ]
        for lookup in lookups:
            pool.submit(quietly, lookup)
    try:
        yield
    finally:
        if pool is not None:
            pool.shutdown(wait=True)


# A connection check ending in one of these means the user checks cannot get trustworthy
# answers (no configuration, no credentials): they are reported as skipped instead of failing
# once more for the same reason.
BLOCKING_CONNECTION_PREFIXES = ("config.", "credly.credentials", "entra.", "graph.permissions")


def _blocking(results: list[CheckResult]) -> CheckResult | None:
    for result in results:
        if result.status in (CheckStatus.FAIL, CheckStatus.ERROR) and result.check_id.startswith(
            BLOCKING_CONNECTION_PREFIXES
        ):
            return result
    return None


def diagnose(
    ctx: DiagnosticContext,
    email: str | None = None,
    *,
    only: list[str] | None = None,
    strict: bool = False,
) -> Diagnosis:
    """Connection checks first, then (with an email) the user checks, sharing one context."""
    if email:
        ctx.email = email
    if only:
        checks = [registry.get(i) for i in only]
        if any(c.scope == "user" for c in checks) and not email:
            from credly_connector.errors import UsageError

            raise UsageError(
                "User checks need an email address.",
                "Give one: `credlyctl diagnose someone@contoso.com --only user.identity`.",
                error_id="email-required",
            )
        results = registry.run_checks(ctx, [c.id for c in checks], scope=None)
        return _finish(email, results, strict)
    # With an email, every check starts at once: the user checks' requests overlap the
    # connection checks' instead of waiting for them (diagnose EMAIL must stay under 3 s at
    # 100 ms per request). The verdict still reads connection results first.
    # The person's lookups need no connection check: they start now, with the checks.
    with _prefetched(ctx, connection=True):
        results = registry.run_checks(ctx, scope=None if email else "connection")
    if email:
        user_ids = {c.id for c in registry.all_checks("user")}
        connection = [r for r in results if r.check_id not in user_ids]
        blocker = _blocking(connection)
        if blocker is not None:
            reason = (
                f"Not checked because the connection check {blocker.check_id} ended as "
                f"{blocker.status}; fix that first."
            )
            results = connection + [
                check.stamp(
                    skipped(
                        reason,
                        evidence={"blocked_by": blocker.check_id},
                        remote_failure=blocker.remote_failure,
                    )
                )
                for check in registry.all_checks("user")
            ]
    return _finish(email, results, strict)
