"""Where checks are registered, and how a set of them runs.

Checks run concurrently as soon as their prerequisites have finished: most of them wait on the
network, so independent ones overlap (`diagnose EMAIL` must stay under 3 s at 100 ms per request).
A check that raises becomes an `error` result; it never aborts the run. A check whose
prerequisite did not pass becomes `skipped`, naming that prerequisite.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

from credly_connector.diagnostics.model import (
    PASSING,
    Check,
    CheckResult,
    CheckStatus,
    RunFunction,
    Scope,
    error,
    error_from,
    skipped,
)
from credly_connector.errors import CredlyctlError, UsageError
from credly_connector.exit_codes import ExitCode, combine
from credly_connector.secrets import scrub

if TYPE_CHECKING:
    from credly_connector.diagnostics.context import DiagnosticContext

CHECKS_PACKAGE = "credly_connector.diagnostics.checks"
MAX_PARALLEL_CHECKS = 16

_REGISTRY: dict[str, Check] = {}
_LOAD_LOCK = threading.Lock()
_loaded = False


def register(
    id: str,
    title: str,
    *,
    scope: Scope,
    requires: tuple[str, ...] = (),
    table_rows: tuple[str, ...] = (),
    cause: str = "",
    fix: str = "",
) -> Callable[[RunFunction], RunFunction]:
    """Decorator: `@register("credly.org_id_format", "Organization ID format", scope=...)`."""

    def decorate(run: RunFunction) -> RunFunction:
        if id in _REGISTRY and _REGISTRY[id].run is not run:
            raise ValueError(f"check id {id!r} is registered twice")
        _REGISTRY[id] = Check(
            id=id,
            title=title,
            scope=scope,
            run=run,
            requires=requires,
            table_rows=table_rows,
            cause=cause,
            fix=fix,
        )
        return run

    return decorate


def load_builtin_checks() -> None:
    """Import every module of diagnostics/checks so its checks register themselves."""
    global _loaded
    with _LOAD_LOCK:
        if _loaded:
            return
        package = importlib.import_module(CHECKS_PACKAGE)
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
            if not info.name.startswith("_"):
                importlib.import_module(f"{CHECKS_PACKAGE}.{info.name}")
        _loaded = True


def all_checks(scope: Scope | None = None) -> list[Check]:
    """Registered checks in a stable order: connection checks first, then by module and
    definition order."""
    load_builtin_checks()
    position = {check_id: i for i, check_id in enumerate(_REGISTRY)}
    checks = [c for c in _REGISTRY.values() if scope is None or c.scope == scope]
    # Module name then definition order: stable whichever module happened to be imported first.
    return sorted(
        checks,
        key=lambda c: (0 if c.scope == "connection" else 1, c.run.__module__, position[c.id]),
    )


def get(check_id: str) -> Check:
    load_builtin_checks()
    try:
        return _REGISTRY[check_id]
    except KeyError:
        close = difflib.get_close_matches(check_id, list(_REGISTRY), n=1)
        hint = f"Did you mean {close[0]!r}? " if close else ""
        raise UsageError(
            f"There is no check with id {check_id!r}.",
            f"{hint}List the checks with `credlyctl diagnose --list-checks`.",
            error_id="unknown-check",
        ) from None


def _with_prerequisites(selected: Iterable[Check]) -> list[Check]:
    wanted: dict[str, Check] = {}

    def visit(check: Check, path: tuple[str, ...]) -> None:
        if check.id in path:
            raise ValueError(f"checks require each other in a cycle: {' -> '.join(path)}")
        for required in check.requires:
            visit(get(required), (*path, check.id))
        wanted.setdefault(check.id, check)

    for check in selected:
        visit(check, ())
    order = {c.id: i for i, c in enumerate(all_checks())}
    return sorted(wanted.values(), key=lambda c: order.get(c.id, len(order)))


def _results_of(check: Check, outcome: CheckResult | list[CheckResult]) -> list[CheckResult]:
    results = outcome if isinstance(outcome, list) else [outcome]
    if not results:
        return [check.stamp(error("The check returned no result; this is a bug in credlyctl."))]
    return [check.stamp(r) for r in results]


def _run_one(check: Check, ctx: DiagnosticContext) -> list[CheckResult]:
    try:
        return _results_of(check, check.run(ctx))
    except CredlyctlError as exc:
        return [check.stamp(error_from(exc, exc.message, evidence={"error": type(exc).__name__}))]
    except Exception as exc:  # a bug in the check: reported as a result, never fatal
        return [
            check.stamp(
                error(
                    f"The check itself failed ({type(exc).__name__}); this is a bug in credlyctl.",
                    "Run again with --debug and report it; the other checks are unaffected.",
                    evidence={"error": type(exc).__name__, "detail": scrub(str(exc))[:300]},
                )
            )
        ]


def _blocked_by(check: Check, done: dict[str, list[CheckResult]]) -> CheckResult | None:
    for required in check.requires:
        results = done[required]
        failing = [r for r in results if r.status not in PASSING]
        if failing:
            first = failing[0]
            return check.stamp(
                skipped(
                    f"Not checked because {first.title!r} ({required}) ended as {first.status}.",
                    evidence={"requires": required, "prerequisite_status": str(first.status)},
                    remote_failure=first.remote_failure,
                )
            )
    return None


def run_checks(
    ctx: DiagnosticContext,
    ids: Iterable[str] | None = None,
    scope: Scope | None = "connection",
) -> list[CheckResult]:
    """Run the given checks (or every check of `scope`) with their prerequisites.

    Results come back in registration order, whatever order the checks finished in.
    """
    selected = all_checks(scope) if ids is None else [get(i) for i in ids]
    plan = _with_prerequisites(selected)
    done: dict[str, list[CheckResult]] = {}
    pending = list(plan)
    running: dict[Future[list[CheckResult]], Check] = {}
    with ThreadPoolExecutor(max_workers=MAX_PARALLEL_CHECKS, thread_name_prefix="check") as pool:
        while pending or running:
            for check in list(pending):
                if all(r in done for r in check.requires):
                    pending.remove(check)
                    blocked = _blocked_by(check, done)
                    if blocked is not None:
                        done[check.id] = [blocked]
                    else:
                        running[pool.submit(_run_one, check, ctx)] = check
            if not running:
                continue
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                done[running.pop(future).id] = future.result()
    return [result for check in plan for result in done[check.id]]


_PROBLEMS = frozenset({CheckStatus.FAIL, CheckStatus.ERROR})


def verdict(results: Iterable[CheckResult], strict: bool = False) -> ExitCode:
    """The exit code for a set of results (see exit_codes.py for the precedence)."""
    codes = [ExitCode.OK]
    for result in results:
        failed = result.status not in PASSING
        if failed and result.remote_failure:
            codes.append(ExitCode.REMOTE)
        elif failed and result.exit_code is not None:
            codes.append(result.exit_code)
        elif result.status in _PROBLEMS or (strict and result.status == CheckStatus.WARN):
            codes.append(ExitCode.PROBLEMS)
    return combine(*codes)
