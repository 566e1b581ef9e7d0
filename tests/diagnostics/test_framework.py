"""The check registry: prerequisites, skipping, crashes as results, concurrency, verdicts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from credly_connector.diagnostics import registry
from credly_connector.diagnostics.context import DiagnosticContext
from credly_connector.diagnostics.model import CheckResult, CheckStatus, fail, note, ok, warn
from credly_connector.errors import RemoteError, UsageError
from credly_connector.exit_codes import ExitCode


@pytest.fixture
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An empty registry, so these tests do not depend on (or disturb) the real checks."""
    monkeypatch.setattr(registry, "_REGISTRY", {})
    monkeypatch.setattr(registry, "_loaded", True)
    yield


def ctx() -> DiagnosticContext:
    return DiagnosticContext(settings=None)


def test_results_come_in_registration_order_with_id_and_title(fresh_registry: None) -> None:
    @registry.register("a.first", "First", scope="connection")
    def _a(c: DiagnosticContext) -> CheckResult:
        time.sleep(0.05)  # finishes last, still listed first
        return ok("fine", evidence={"x": 1})

    @registry.register("a.second", "Second", scope="connection")
    def _b(c: DiagnosticContext) -> CheckResult:
        return warn("meh", "do this")

    results = registry.run_checks(ctx())
    assert [(r.check_id, r.title, r.status) for r in results] == [
        ("a.first", "First", CheckStatus.OK),
        ("a.second", "Second", CheckStatus.WARN),
    ]
    assert results[0].to_dict()["evidence"] == {"x": 1}


def test_failed_prerequisite_skips_dependants_with_reason(fresh_registry: None) -> None:
    ran: list[str] = []

    @registry.register("p.base", "Base", scope="connection")
    def _base(c: DiagnosticContext) -> CheckResult:
        return fail("broken", "fix it")

    @registry.register("p.child", "Child", scope="connection", requires=("p.base",))
    def _child(c: DiagnosticContext) -> CheckResult:
        ran.append("child")
        return ok("never")

    @registry.register("p.grandchild", "Grandchild", scope="connection", requires=("p.child",))
    def _grand(c: DiagnosticContext) -> CheckResult:
        ran.append("grandchild")
        return ok("never")

    results = registry.run_checks(ctx())
    assert ran == []
    assert [r.status for r in results] == [
        CheckStatus.FAIL,
        CheckStatus.SKIPPED,
        CheckStatus.SKIPPED,
    ]
    assert "p.base" in results[1].explanation
    assert results[1].evidence["requires"] == "p.base"
    assert results[2].evidence["requires"] == "p.child"


def test_warn_and_note_prerequisites_let_dependants_run(fresh_registry: None) -> None:
    @registry.register("w.base", "Base", scope="connection")
    def _base(c: DiagnosticContext) -> list[CheckResult]:
        return [warn("careful"), note("fyi")]

    @registry.register("w.child", "Child", scope="connection", requires=("w.base",))
    def _child(c: DiagnosticContext) -> CheckResult:
        return ok("ran")

    results = registry.run_checks(ctx())
    assert [r.status for r in results] == [CheckStatus.WARN, CheckStatus.NOTE, CheckStatus.OK]


def test_a_crashing_check_is_an_error_result_not_an_abort(fresh_registry: None) -> None:
    @registry.register("c.crash", "Crash", scope="connection")
    def _crash(c: DiagnosticContext) -> CheckResult:
        raise ZeroDivisionError("boom")

    @registry.register("c.other", "Other", scope="connection")
    def _other(c: DiagnosticContext) -> CheckResult:
        return ok("fine")

    results = registry.run_checks(ctx())
    assert results[0].status == CheckStatus.ERROR
    assert "ZeroDivisionError" in results[0].explanation
    assert results[1].status == CheckStatus.OK
    assert registry.verdict(results) == ExitCode.PROBLEMS


def test_remote_failure_gives_retry_exit_code(fresh_registry: None) -> None:
    @registry.register("r.remote", "Remote", scope="connection")
    def _remote(c: DiagnosticContext) -> CheckResult:
        raise RemoteError("Credly did not answer.", "Try later.")

    @registry.register("r.child", "Child", scope="connection", requires=("r.remote",))
    def _child(c: DiagnosticContext) -> CheckResult:
        return ok("never")

    results = registry.run_checks(ctx())
    assert results[0].status == CheckStatus.ERROR and results[0].remote_failure
    assert results[1].status == CheckStatus.SKIPPED and results[1].remote_failure
    assert registry.verdict(results) == ExitCode.REMOTE


def test_only_runs_the_subset_and_its_prerequisites(fresh_registry: None) -> None:
    @registry.register("s.base", "Base", scope="connection")
    def _base(c: DiagnosticContext) -> CheckResult:
        return ok("base")

    @registry.register("s.child", "Child", scope="connection", requires=("s.base",))
    def _child(c: DiagnosticContext) -> CheckResult:
        return ok("child")

    @registry.register("s.unrelated", "Unrelated", scope="connection")
    def _unrelated(c: DiagnosticContext) -> CheckResult:
        return ok("unrelated")

    ids = [r.check_id for r in registry.run_checks(ctx(), ["s.child"])]
    assert ids == ["s.base", "s.child"]


def test_unknown_check_id_is_a_usage_error_with_suggestion(fresh_registry: None) -> None:
    @registry.register("entra.token", "Token", scope="connection")
    def _t(c: DiagnosticContext) -> CheckResult:
        return ok("t")

    with pytest.raises(UsageError) as info:
        registry.run_checks(ctx(), ["entra.tokn"])
    assert "entra.token" in info.value.hint


def test_scope_selects_checks(fresh_registry: None) -> None:
    @registry.register("u.user", "User", scope="user")
    def _u(c: DiagnosticContext) -> CheckResult:
        return ok("u")

    @registry.register("u.conn", "Conn", scope="connection")
    def _c(c: DiagnosticContext) -> CheckResult:
        return ok("c")

    assert [c.id for c in registry.all_checks()] == ["u.conn", "u.user"]
    assert [r.check_id for r in registry.run_checks(ctx(), scope="user")] == ["u.user"]


def test_independent_checks_run_concurrently(fresh_registry: None) -> None:
    barrier = threading.Barrier(4, timeout=10)

    def make(i: int) -> None:
        @registry.register(f"k.c{i}", f"C{i}", scope="connection")
        def _run(c: DiagnosticContext) -> CheckResult:
            barrier.wait()  # only returns when all four run at the same time
            return ok("together")

    for i in range(4):
        make(i)
    results = registry.run_checks(ctx())
    assert [r.status for r in results] == [CheckStatus.OK] * 4


def test_verdict_strict_makes_warnings_problems() -> None:
    results = [
        CheckResult("x", "X", CheckStatus.WARN, "w"),
        CheckResult("y", "Y", CheckStatus.NOTE, "n"),
    ]
    assert registry.verdict(results) == ExitCode.OK
    assert registry.verdict(results, strict=True) == ExitCode.PROBLEMS


def test_memo_computes_once_and_replays_failures() -> None:
    c = ctx()
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return 42

    assert c.memo("k", compute) == 42
    assert c.memo("k", compute) == 42
    assert calls == [1]

    def broken() -> int:
        calls.append(2)
        raise RemoteError("down")

    for _ in range(2):
        with pytest.raises(RemoteError):
            c.memo("bad", broken)
    assert calls == [1, 2]


def test_memo_single_flight_across_threads() -> None:
    c = ctx()
    calls: list[int] = []
    lock = threading.Lock()

    def compute() -> int:
        with lock:
            calls.append(1)
        time.sleep(0.05)
        return 7

    threads = [threading.Thread(target=c.memo, args=("k", compute)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [1]


def test_results_never_show_a_secret() -> None:
    from credly_connector.secrets import Secret

    secret = Secret("s3cr3t-value-for-test", "inline")
    result = CheckResult(
        "x", "X", CheckStatus.FAIL, f"oops {secret.reveal()}", evidence={"v": [secret.reveal()]}
    )
    text = str(result.to_dict())
    assert "s3cr3t-value-for-test" not in text
