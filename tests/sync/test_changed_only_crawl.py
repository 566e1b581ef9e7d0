"""Incremental crawls that read only the badges Credly changed (sync/incremental.py).

Every way a person's item can change between crawls is made at once, then an incremental
crawl that reads only Credly's changed badges must leave Graph exactly as the oracle (which
reads the simulator's whole state) says, and read a handful of Credly pages, not all.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from credly_connector.exit_codes import ExitCode
from credly_connector.simulator.runner import Simulator
from credly_connector.sync.clients import build_clients
from credly_connector.sync.incremental import (
    BADGES_READ_AT,
    PLAN_BASIS,
    changes_window,
    plan_basis,
)
from credly_connector.sync.records import BadgeDetail, BadgeObservation
from credly_connector.sync.runner import SyncOptions, SyncReport, run_sync
from credly_connector.sync.state import StateStoreError, SyncState, open_state, state_path
from tests.sync.simhelpers import (
    change_badges_and_users,
    configure,
    do_setup,
    do_sync,
    graph_view,
    log_events,
    oracle,
    org_id,
    settings_of,
)


def _credly_badge_reads(sim: Simulator) -> int:
    return sum(
        1
        for e in sim.request_log()
        if e.service == "credly-api" and e.path.split("?")[0].endswith("/badges")
    )


def _sync_at(settings: Any, moment: datetime, **options: Any) -> SyncReport:
    clients = build_clients(settings)
    try:
        return run_sync(settings, clients.for_sync(), SyncOptions(**options), clock=lambda: moment)
    finally:
        clients.close()


def test_every_kind_of_change_through_the_changed_badges_only(
    big_sim: Simulator, tmp_path: Path
) -> None:
    settings = settings_of(configure(big_sim, tmp_path))
    do_setup(settings)
    badges = {b["recipient_email"]: b["id"] for b in big_sim.badges(org_id(big_sim))}
    # Indexable at the full crawl, expired by the incremental one, and last changed on
    # Credly long before: only the state's expiry check can notice.
    soon = datetime.now(UTC) + timedelta(hours=1)
    big_sim.update_badge(
        badges["extra007@contoso.com"],
        expires_at=soon.isoformat(),
        updated_at="2025-01-01T00:00:00Z",
    )
    assert do_sync(settings, kind="full").exit_code == 0
    assert graph_view(big_sim) == oracle(big_sim)

    change_badges_and_users(big_sim)
    big_sim.update_user(
        "dsiciliani@contoso.com",
        proxyAddresses=["SMTP:d.siciliani@contoso.com", "smtp:diego.siciliani@contoso.com"],
    )
    # A write whose answer was never recorded (a crash): that item is rewritten too.
    unsure = big_sim.directory.get("extra005@contoso.com")
    assert unsure is not None
    state = open_state(state_path(settings.sync.state_dir, settings.name), settings.name)
    try:
        uid = unsure["id"]
        state.mark_intents([(uid.replace("-", ""), uid, "put", "extra005@contoso.com")])
    finally:
        state.close()
    every = len(big_sim.badges(org_id(big_sim)))

    big_sim.clear_request_log()
    log = tmp_path / "incremental.log"
    later = soon + timedelta(minutes=1)
    report = _sync_at(settings, later, kind="incremental", log_file=log)
    assert report.exit_code == 0, report.error
    [used] = log_events(log, "credly_changes")
    assert used["used"] is True and used["changed"] == 4
    # The organization's total, then the filtered total and its one page; no full read:
    # the spool held the changed badges and the state's copies of the people concerned.
    assert _credly_badge_reads(big_sim) == 3
    assert report.counts()["badges_read"] < every // 2
    expected = oracle(big_sim, now=later)
    assert graph_view(big_sim) == expected
    assert report.plan is not None
    touched = {op.upn: str(op.action) for op in report.plan.ops if op.writes}
    assert touched == {
        "alex.wilber@contoso.com": "delete",
        "dsiciliani@contoso.com": "delete",
        "extra000@contoso.com": "delete",
        "extra001@contoso.com": "delete",
        "extra002@contoso.com": "delete",
        "extra004@contoso.com": "delete",
        "extra007@contoso.com": "delete",
        "extra003@contoso.com": "update",
        "extra010@contoso.com": "update",
        "extra005@contoso.com": "update",
    }

    # Nothing changed since: three Credly requests, nothing written, Graph still right.
    big_sim.clear_request_log()
    again = _sync_at(settings, later + timedelta(minutes=1), kind="incremental")
    assert again.exit_code == 0 and again.counts()["written"] == 0
    assert again.counts()["deleted"] == 0
    assert _credly_badge_reads(big_sim) == 3
    assert graph_view(big_sim) == expected


@pytest.mark.parametrize("answer", ["ignored", "rejected"])
def test_a_filter_credly_does_not_honour_sends_the_crawl_back_to_every_page(
    answer: str, big_sim: Simulator, tmp_path: Path
) -> None:
    settings = settings_of(configure(big_sim, tmp_path))
    do_setup(settings)
    assert do_sync(settings, kind="full").exit_code == 0
    big_sim.set_switches(credly_updated_at_filter=answer)
    badges = {b["recipient_email"]: b["id"] for b in big_sim.badges(org_id(big_sim))}
    big_sim.update_badge(badges["extra000@contoso.com"], state="revoked")
    log = tmp_path / "incremental.log"
    report = do_sync(settings, kind="incremental", log_file=log)
    assert report.exit_code == 0, report.error
    [verdict] = log_events(log, "credly_changes")
    assert verdict["used"] is False and verdict["verdict"] == "not_honoured"
    assert report.counts()["badges_read"] == len(big_sim.badges(org_id(big_sim)))
    assert graph_view(big_sim) == oracle(big_sim)


def test_a_changed_plan_basis_needs_a_crawl_that_reads_every_badge(
    big_sim: Simulator, tmp_path: Path
) -> None:
    settings = settings_of(configure(big_sim, tmp_path))
    do_setup(settings)
    assert do_sync(settings, kind="full").exit_code == 0
    opted = settings_of(configure(big_sim, tmp_path, opt_out=["extra003@contoso.com"]))
    log = tmp_path / "incremental.log"
    report = do_sync(opted, kind="incremental", log_file=log)
    assert report.exit_code == 0, report.error
    [verdict] = log_events(log, "credly_changes")
    assert verdict["used"] is False
    assert graph_view(big_sim) == oracle(big_sim, opt_out=("extra003@contoso.com",))


def test_after_a_teardown_no_crawl_relies_on_the_last_view_of_the_badges(tmp_path: Path) -> None:
    state = open_state(tmp_path / "s.sqlite", "default")
    try:
        basis = plan_basis("tenant", ())
        state.set_meta(PLAN_BASIS, basis)
        state.set_meta(BADGES_READ_AT, datetime(2026, 12, 1, tzinfo=UTC).isoformat())
        assert changes_window(state, basis) is not None
        state.forget_connection()
        assert changes_window(state, basis) is None
    finally:
        state.close()


def test_badges_a_full_read_no_longer_sees_are_forgotten(tmp_path: Path) -> None:
    state = open_state(tmp_path / "s.sqlite", "default")
    try:
        detail = BadgeDetail("a@c.com", None, None, "", False, "{}", None, None, None)
        state.record_badges(
            [BadgeObservation(i, "accepted", True, "a@c.com", "u1", None, detail) for i in "abc"]
        )
        assert state.forget_badges_not_in(iter(["a", "c"])) == 1
        assert sorted(b.id for b in state.known_badges(["a@c.com"])) == ["a", "c"]
        assert state.known_badge("b") is not None  # its history stays; only the detail goes
        assert state.known_badge("b").detail is None  # type: ignore[union-attr]
    finally:
        state.close()


def test_a_state_failure_while_badges_are_recorded_ends_the_crawl_as_a_user_error(
    big_sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Badge observations are recorded by a thread while the items are written: its failure
    # must reach the crawl's report (exit 2 with its hint), not vanish with the thread.
    settings = settings_of(configure(big_sim, tmp_path))
    do_setup(settings)

    def full_disk(self: SyncState, *args: Any, **kwargs: Any) -> None:
        raise StateStoreError.from_sqlite(
            sqlite3.OperationalError("database or disk is full"), self.path
        )

    monkeypatch.setattr(SyncState, "record_badges", full_disk)
    report = do_sync(settings, kind="full")
    assert report.error is not None and report.error.error_id == "disk_full"
    assert report.exit_code == ExitCode.USAGE
    # The items themselves were written and confirmed: nothing to redo but the records.
    assert report.write is not None and report.write.written == len(oracle(big_sim))
    assert graph_view(big_sim) == oracle(big_sim)
