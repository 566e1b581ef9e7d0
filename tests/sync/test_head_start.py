"""A full crawl's head start (sync/head_start.py): items the state can rebuild are written
while Credly is still being read, and the crawl's own plan still decides what Graph ends with.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from credly_connector.credly.errors import CredlyError
from credly_connector.credly.models import Badge
from credly_connector.exit_codes import ExitCode
from credly_connector.simulator.runner import Simulator
from credly_connector.sync import runner
from credly_connector.sync.clients import build_clients
from credly_connector.sync.early import merged
from credly_connector.sync.ports import SyncClients
from credly_connector.sync.runner import SyncOptions, SyncReport, run_sync
from credly_connector.sync.spool import BadgeSpool
from credly_connector.sync.state import open_readonly, state_path
from credly_connector.sync.writer import ItemFailure, WriteReport
from tests.sync.simhelpers import (
    WatchedGraph,
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

WAIT = 20.0  # seconds: far above what any step here takes, so only a missing overlap fails


class _Credly:
    """The real Credly client whose last page waits for a signal (or fails instead)."""

    def __init__(
        self, credly: Any, release: threading.Event, fail: BaseException | None = None
    ) -> None:
        self._credly, self._release, self._fail = credly, release, fail
        self.released = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._credly, name)

    def iter_badge_pages(self) -> Iterator[tuple[int, list[Badge]]]:
        pages = list(self._credly.iter_badge_pages())
        yield from pages[:-1]
        self.released = self._release.wait(WAIT)
        if self._fail is not None:
            raise self._fail
        yield pages[-1]

    def iter_badges(self, *, recipient_email: str | None = None) -> Iterable[Badge]:
        found: Iterable[Badge] = self._credly.iter_badges(recipient_email=recipient_email)
        return found


def _item_of(sim: Simulator, address: str) -> str:
    user = sim.directory.get(address)
    assert user is not None
    return str(user["id"]).replace("-", "")


def _sync_with(
    settings: Any, wrap: Any, moment: datetime | None = None, **options: Any
) -> SyncReport:
    clients = build_clients(settings)
    try:
        ports: SyncClients = clients.for_sync()
        wrap(ports)
        kwargs: dict[str, Any] = {"clock": (lambda: moment)} if moment is not None else {}
        return run_sync(settings, ports, SyncOptions(**options), **kwargs)
    finally:
        clients.close()


def test_a_full_crawl_after_a_complete_one_writes_before_the_last_credly_page(
    big_sim: Simulator, tmp_path: Path
) -> None:
    settings = settings_of(configure(big_sim, tmp_path))
    do_setup(settings)
    assert do_sync(settings, kind="full").exit_code == 0
    expected = oracle(big_sim)
    assert graph_view(big_sim) == expected
    seen: dict[str, Any] = {}

    def wrap(ports: SyncClients) -> None:
        graph = WatchedGraph(ports.graph)
        ports.graph = graph
        ports.credly = seen["credly"] = _Credly(ports.credly, graph.first_batch)

    log = tmp_path / "full.log"
    report = _sync_with(settings, wrap, kind="full", log_file=log)
    assert report.exit_code == 0, report.error
    # Without a head start no `$batch` goes out before the last page: the wait runs out.
    assert seen["credly"].released
    [head] = log_events(log, "head_start")
    assert head["written"] == len(expected) and head["superseded"] == 0
    # The head start's writer, then the rest's (nothing left here).
    assert [(e.get("head_start"), e["items"]) for e in log_events(log, "write_start")] == [
        (True, len(expected)),
        (None, 0),
    ]
    counts = report.counts()
    assert counts["written"] == len(expected) and counts["planned"]["update"] == len(expected)
    assert graph_view(big_sim) == expected


def test_every_kind_of_change_in_a_full_crawl_with_a_head_start(
    big_sim: Simulator, tmp_path: Path
) -> None:
    settings = settings_of(configure(big_sim, tmp_path))
    do_setup(settings)
    badges = {b["recipient_email"]: b["id"] for b in big_sim.badges(org_id(big_sim))}
    soon = datetime.now(UTC) + timedelta(hours=1)
    big_sim.update_badge(badges["extra007@contoso.com"], expires_at=soon.isoformat())
    assert do_sync(settings, kind="full").exit_code == 0

    before = graph_view(big_sim)
    # Users the head start leaves alone (not qualifying, or gone from the directory), and
    # one whose only change is an expiry the state's copy sees too.
    untouched = {
        _item_of(big_sim, e)
        for e in ("alex.wilber@contoso.com", "extra004@contoso.com", "extra007@contoso.com")
    }
    change_badges_and_users(big_sim)
    big_sim.update_badge(badges["extra020@contoso.com"], badge_template={"name": "Renamed"})
    later = soon + timedelta(minutes=1)
    expected = oracle(big_sim, now=later)

    def wrap(ports: SyncClients) -> None:
        graph = WatchedGraph(ports.graph)
        ports.graph = graph
        ports.credly = _Credly(ports.credly, graph.first_batch)

    log = tmp_path / "full.log"
    report = _sync_with(settings, wrap, later, kind="full", log_file=log, allow_deletes=True)
    assert report.exit_code == 0, report.error
    # Items whose content changed were written twice, the head start's (old) body first:
    # Graph holding the oracle's view proves the plan's write landed last.
    assert graph_view(big_sim) == expected
    [head] = log_events(log, "head_start")
    changed = {i for i in before if before[i] != expected.get(i)} - untouched
    assert changed and head["superseded"] == len(changed)
    assert head["written"] == len(set(before) - changed - untouched)
    assert [e.get("head_start") for e in log_events(log, "write_start")] == [True, None]
    state = open_readonly(state_path(settings.sync.state_dir, settings.name))
    assert state is not None
    try:
        items = state.items()
    finally:
        state.close()
    assert set(items) == set(expected) and all(r.hash for r in items.values())
    rewritten = {i for i, r in items.items() if r.written_crawl == report.crawl_id}
    assert report.counts()["written"] == len(rewritten)


def test_a_first_crawl_and_a_changed_plan_basis_get_no_head_start(
    big_sim: Simulator, tmp_path: Path
) -> None:
    settings = settings_of(configure(big_sim, tmp_path))
    do_setup(settings)
    first = tmp_path / "first.log"
    assert do_sync(settings, kind="full", log_file=first).exit_code == 0
    assert not log_events(first, "head_start")
    opted = settings_of(configure(big_sim, tmp_path, opt_out=["extra003@contoso.com"]))
    log = tmp_path / "opted.log"
    assert do_sync(opted, kind="full", log_file=log).exit_code == 0
    assert not log_events(log, "head_start")
    # (Such a crawl may stream its writes instead: sync/streamed.py, tests/sync/test_streamed.py.)
    assert all(e.get("head_start") is None for e in log_events(log, "write_start"))
    assert graph_view(big_sim) == oracle(big_sim, opt_out=("extra003@contoso.com",))


def test_a_failing_credly_read_stops_the_head_start_and_the_next_crawl_completes(
    big_sim: Simulator, tmp_path: Path
) -> None:
    settings = settings_of(configure(big_sim, tmp_path, max_write_rate=20, write_concurrency=1))
    do_setup(settings)
    assert do_sync(settings, kind="full").exit_code == 0
    badges = {b["recipient_email"]: b["id"] for b in big_sim.badges(org_id(big_sim))}
    big_sim.update_badge(badges["extra000@contoso.com"], state="revoked")
    failure = CredlyError("Credly answered 500 five times.", "Try again later.", error_id="x")

    def wrap(ports: SyncClients) -> None:
        graph = WatchedGraph(ports.graph)
        ports.graph = graph
        ports.credly = _Credly(ports.credly, graph.first_batch, fail=failure)

    log = tmp_path / "failed.log"
    report = _sync_with(settings, wrap, kind="full", log_file=log)
    assert report.error is failure and report.exit_code != ExitCode.OK
    # The head start had begun (20 items/s: it cannot have finished) and was stopped.
    assert log_events(log, "batch") and not log_events(log, "head_start")
    assert do_sync(settings, kind="full").exit_code == 0
    assert graph_view(big_sim) == oracle(big_sim)


def test_two_write_phases_report_as_one() -> None:
    failure = ItemFailure("i", None, "update", 400, None, "no")
    first = WriteReport(written=3, failures=[failure], batches=1, peak_rate=50, final_rate=40)
    then = WriteReport(written=2, deleted=1, batches=2, peak_rate=30, final_rate=35)
    both = merged(first, then)
    assert (both.written, both.deleted, both.batches) == (5, 1, 3)
    assert both.failures == [failure] and both.peak_rate == 50 and both.final_rate == 35


def test_a_resumed_full_cycle_does_not_rewrite_what_the_head_start_confirmed(
    big_sim: Simulator, tmp_path: Path
) -> None:
    """A head start interrupted by a failure leaves its confirmed writes counted: the next full
    crawl continues the cycle and writes only the rest."""
    settings = settings_of(configure(big_sim, tmp_path, max_write_rate=20, write_concurrency=1))
    do_setup(settings)
    assert do_sync(settings, kind="full").exit_code == 0
    failure = CredlyError("Credly answered 500 five times.", "Try again later.", error_id="x")

    def wrap(ports: SyncClients) -> None:
        graph = WatchedGraph(ports.graph)
        ports.graph = graph
        ports.credly = _Credly(ports.credly, graph.first_batch, fail=failure)

    assert _sync_with(settings, wrap, kind="full").error is failure
    state = open_readonly(state_path(settings.sync.state_dir, settings.name))
    assert state is not None
    try:
        failed_crawl = state.crawl_history(1)[0]
        confirmed = {
            i for i, r in state.items().items() if r.hash and r.written_crawl == failed_crawl.id
        }
    finally:
        state.close()
    assert confirmed
    report = do_sync(settings, kind="full")
    assert report.exit_code == 0
    assert report.counts()["written"] == len(oracle(big_sim)) - len(confirmed)
    assert graph_view(big_sim) == oracle(big_sim)


def _unreadable(*args: Any) -> None:
    raise sqlite3.OperationalError("unable to open database")


@pytest.mark.parametrize(
    ("owner", "name", "value", "why"),
    [
        # A state the head start cannot read: no head start, not a failed crawl.
        (BadgeSpool, "add_indexed_from", _unreadable, "the state's badges could not be read"),
        # An organization above the size limit (memory).
        (runner, "HEAD_START_MAX_ITEMS", 10, "items, more than 10"),
    ],
)
def test_without_a_head_start_the_crawl_writes_after_the_read(
    big_sim: Simulator,
    tmp_path: Path,
    monkeypatch: Any,
    owner: Any,
    name: str,
    value: Any,
    why: str,
) -> None:
    settings = settings_of(configure(big_sim, tmp_path))
    do_setup(settings)
    assert do_sync(settings, kind="full").exit_code == 0
    monkeypatch.setattr(owner, name, value)
    log = tmp_path / "full.log"
    report = do_sync(settings, kind="full", log_file=log)
    assert report.exit_code == 0, report.error
    [head] = log_events(log, "head_start")
    assert why in head["skipped"]
    # Above the size limit the crawl may stream its writes instead (tests/sync/test_streamed.py).
    assert all(e.get("head_start") is None for e in log_events(log, "write_start"))
    assert report.counts()["written"] == len(oracle(big_sim))
    assert graph_view(big_sim) == oracle(big_sim)
