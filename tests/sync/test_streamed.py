"""Streamed writes (sync/streamed.py): with Credly's listing sorted by recipient address, a
full crawl writes the items of users whose badges are all read while later pages are still
being read; the crawl's own plan still decides what Graph ends with.

The crawls here get their sorted pages from a wrapper that sorts the simulator's listing
itself, so these tests hold whatever Credly (or the simulator) does with `sort`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from credly_connector.credly.models import Badge
from credly_connector.identity.addresses import normalize_email
from credly_connector.simulator.generator import generate
from credly_connector.simulator.runner import Simulator, start_simulator
from credly_connector.sync import runner
from credly_connector.sync.clients import build_clients
from credly_connector.sync.ports import SyncClients
from credly_connector.sync.runner import SyncOptions, SyncReport, run_sync
from credly_connector.sync.state import open_readonly, state_path
from credly_connector.sync.streamed import SortedPrefix
from tests.sync.simhelpers import (
    WatchedGraph,
    cli_popen,
    configure,
    do_setup,
    do_sync,
    graph_view,
    log_events,
    oracle,
    org_id,
    settings_of,
)
from tests.sync.test_sync_cli import batches, wait_for

WAIT = 20.0  # seconds: far above what any step here takes, so only a missing overlap fails
PER_PAGE = 10  # small pages, so the test organization spans several


def _badge(email: str | None) -> Badge:
    return Badge.from_api({"id": f"id-{email}", "recipient_email": email})


# ---- the order check ------------------------------------------------------------------------


def test_the_bound_rises_with_the_pages_read_in_a_row_whatever_order_they_arrive_in() -> None:
    prefix = SortedPrefix()
    assert not prefix.add(2, [_badge("c@x"), _badge("d@x")])  # page 1 not in yet
    assert prefix.bound is None
    assert prefix.add(1, [_badge("A@x"), _badge(None), _badge("b@x")])
    assert prefix.bound == "d@x"  # pages 1 and 2 are in: everything below d@x is read
    assert not prefix.add(4, [_badge("f@x")])
    assert prefix.add(3, [])  # a page of addressless badges moves nothing itself
    assert prefix.bound == "f@x" and prefix.broken is None


def test_an_address_may_continue_on_the_next_page() -> None:
    prefix = SortedPrefix()
    prefix.add(1, [_badge("a@x"), _badge("b@x")])
    assert prefix.add(2, [_badge("B@x"), _badge("c@x")])
    assert prefix.broken is None and prefix.bound == "c@x"


def test_a_page_out_of_order_inside_breaks_the_check() -> None:
    prefix = SortedPrefix()
    prefix.add(1, [_badge("a@x")])
    assert not prefix.add(2, [_badge("c@x"), _badge("b@x")])
    assert prefix.broken == "page 2 is not sorted by recipient address"
    assert not prefix.add(3, [_badge("z@x")])  # nothing moves once broken
    assert prefix.bound == "a@x"


def test_a_page_starting_below_the_one_before_breaks_the_check() -> None:
    prefix = SortedPrefix()
    prefix.add(2, [_badge("b@x"), _badge("c@x")])
    assert not prefix.add(1, [_badge("a@x"), _badge("d@x")])
    assert prefix.broken == "page 2 starts below the end of the page before"


# ---- crawls against the simulator -------------------------------------------------------------


def _sorted_pages(
    credly: Any,
    last_page_waits_for: threading.Event | None,
    reorder: Callable[[list[Badge]], list[Badge]] = lambda badges: badges,
) -> Callable[[], Iterator[tuple[int, list[Badge]]]]:
    """Pages of the listing sorted by address, the two first swapped (pages arrive in any
    order); the last one only once `last_page_waits_for` is set (or the wait runs out)."""
    released: list[bool] = []

    def read() -> Iterator[tuple[int, list[Badge]]]:
        badges = [b for _, page in credly.iter_badge_pages() for b in page]
        badges.sort(
            key=lambda b: (b.recipient_email is None, normalize_email(b.recipient_email or ""))
        )
        badges = reorder(badges)
        pages = [badges[n : n + PER_PAGE] for n in range(0, len(badges), PER_PAGE)]
        numbered = list(enumerate(pages, start=1))
        assert len(numbered) >= 3, "the organization must span several pages"
        numbered[0], numbered[1] = numbered[1], numbered[0]
        yield from numbered[:-1]
        if last_page_waits_for is not None:
            released.append(last_page_waits_for.wait(WAIT))
        yield numbered[-1]

    read.released = released  # type: ignore[attr-defined]
    return read


def _sync_with(
    settings: Any, wrap: Callable[[SyncClients, WatchedGraph], None], **options: Any
) -> tuple[SyncReport, WatchedGraph]:
    clients = build_clients(settings)
    try:
        ports = clients.for_sync()
        graph = WatchedGraph(ports.graph)
        ports.graph = graph
        wrap(ports, graph)
        return run_sync(settings, ports, SyncOptions(**options)), graph
    finally:
        clients.close()


def test_a_first_crawl_writes_before_the_last_credly_page_when_the_listing_is_sorted(
    big_sim: Simulator, tmp_path: Path
) -> None:
    settings = settings_of(configure(big_sim, tmp_path))
    do_setup(settings)
    expected = oracle(big_sim)
    seen: dict[str, Any] = {}

    def wrap(ports: SyncClients, graph: WatchedGraph) -> None:
        ports.read_sorted = seen["read"] = _sorted_pages(ports.credly, graph.first_batch)

    log = tmp_path / "first.log"
    report, graph = _sync_with(settings, wrap, kind="full", log_file=log)
    assert report.exit_code == 0, report.error
    # Without streaming no `$batch` goes out before the last page: the wait runs out.
    assert seen["read"].released == [True]
    [streamed] = log_events(log, "streamed")
    assert 0 < streamed["written"] < len(expected) and streamed["superseded"] == 0
    assert streamed["failed"] == 0
    assert log_events(log, "write_start")[0]["streamed"] is True
    counts = report.counts()
    assert counts["planned"]["create"] == len(expected) == counts["written"]
    assert graph_view(big_sim) == expected
    # Every item was written once: the streamed ones are not sent again.
    assert graph.puts == len(expected)


def test_a_late_badge_of_a_streamed_user_is_written_by_the_plan(
    big_sim: Simulator, tmp_path: Path
) -> None:
    """A listing that turns out not to be sorted (a badge of an early address on the last
    page): streaming stops there, and the plan rewrites the user streamed without it."""
    settings = settings_of(configure(big_sim, tmp_path))
    do_setup(settings)
    expected = oracle(big_sim)
    indexable = [
        normalize_email(b["recipient_email"])
        for b in big_sim.badges(org_id(big_sim))
        if b["state"] == "accepted" and b["public"] and b.get("recipient_email")
    ]
    late = min(e for e in indexable if indexable.count(e) > 1)
    user = big_sim.directory.get(late)
    assert user is not None

    def to_the_end(badges: list[Badge]) -> list[Badge]:
        index = next(
            n
            for n, b in enumerate(badges)
            if normalize_email(b.recipient_email or "") == late
            and b.state == "accepted"
            and b.public
        )
        return [*badges[:index], *badges[index + 1 :], badges[index]]

    def wrap(ports: SyncClients, graph: WatchedGraph) -> None:
        graph.watch = str(user["id"]).replace("-", "")
        ports.read_sorted = _sorted_pages(ports.credly, graph.watched, to_the_end)

    log = tmp_path / "late.log"
    report, graph = _sync_with(settings, wrap, kind="full", log_file=log)
    assert report.exit_code == 0, report.error
    assert graph.watched.is_set()  # streamed without its late badge
    [stopped, streamed] = log_events(log, "streamed")
    assert "not sorted" in stopped["stopped"]
    assert streamed["superseded"] == 1
    assert report.counts()["written"] == len(expected)
    assert graph_view(big_sim) == expected


def test_an_unsorted_listing_streams_nothing(big_sim: Simulator, tmp_path: Path) -> None:
    settings = settings_of(configure(big_sim, tmp_path))
    do_setup(settings)
    expected = oracle(big_sim)

    def wrap(ports: SyncClients, graph: WatchedGraph) -> None:
        ports.read_sorted = _sorted_pages(ports.credly, None, lambda badges: badges[::-1])

    log = tmp_path / "unsorted.log"
    report, graph = _sync_with(settings, wrap, kind="full", log_file=log)
    assert report.exit_code == 0, report.error
    [stopped] = log_events(log, "streamed")
    assert "stopped" in stopped and len(log_events(log, "write_start")) == 1
    assert report.counts()["written"] == len(expected) == graph.puts
    assert graph_view(big_sim) == expected


def test_a_full_crawl_too_big_for_a_head_start_streams_its_updates(
    big_sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_of(configure(big_sim, tmp_path))
    do_setup(settings)
    assert do_sync(settings, kind="full").exit_code == 0
    expected = oracle(big_sim)
    monkeypatch.setattr(runner, "HEAD_START_MAX_ITEMS", 0)

    def wrap(ports: SyncClients, graph: WatchedGraph) -> None:
        ports.read_sorted = _sorted_pages(ports.credly, graph.first_batch)

    log = tmp_path / "full.log"
    report, graph = _sync_with(settings, wrap, kind="full", log_file=log)
    assert report.exit_code == 0, report.error
    assert log_events(log, "head_start")[0]["skipped"].endswith("more than 0")
    [streamed] = log_events(log, "streamed")
    assert streamed["written"] > 0 and streamed["superseded"] == 0
    counts = report.counts()
    assert counts["planned"]["update"] == len(expected) == counts["written"]
    assert graph.puts == len(expected)
    assert graph_view(big_sim) == expected


def test_no_streaming_without_a_sorted_read(big_sim: Simulator, tmp_path: Path) -> None:
    settings = settings_of(configure(big_sim, tmp_path))
    do_setup(settings)

    def wrap(ports: SyncClients, graph: WatchedGraph) -> None:
        ports.read_sorted = None

    log = tmp_path / "plain.log"
    report, graph = _sync_with(settings, wrap, kind="full", log_file=log)
    assert report.exit_code == 0, report.error
    assert log_events(log, "streamed") == [] and not graph.watched.is_set()
    assert graph_view(big_sim) == oracle(big_sim)


@pytest.mark.integration
def test_a_first_crawl_killed_while_streaming_is_completed_by_the_next_one(
    tmp_path: Path,
) -> None:
    """SIGKILL after a streamed batch and before the last Credly page: the next crawl ends
    with what Graph should hold and does not rewrite what was confirmed with its final body."""
    with start_simulator(generate(users=300, badges=2000, seed=3)) as sim:
        config = configure(sim, tmp_path)
        settings = settings_of(config)
        do_setup(settings)
        expected = oracle(sim)
        # 40 Credly pages, 8 at a time, 0.3 s each: the read outlasts the first batches.
        sim.set_faults(latency_seconds=0.3)
        sim.clear_request_log()
        process = cli_popen(config, "sync", "--full")
        try:
            wait_for(lambda: batches(sim) >= 1 and bool(_confirmed(settings)), process)
            process.kill()
        finally:
            process.wait()
        pages_read = sum(1 for e in sim.request_log() if e.path.endswith("/badges"))
        assert pages_read < 40, "the crawl was not stopped while reading"
        sim.set_faults(latency_seconds=0.0)
        confirmed = _confirmed(settings)
        report = do_sync(settings, kind="full")
        assert report.exit_code == 0, report.error
        assert graph_view(sim) == expected
        # The killed crawl's cycle goes on: its confirmed items are not written again.
        assert report.counts()["written"] == len(expected) - len(confirmed & set(expected))


def _confirmed(settings: Any) -> set[str]:
    """The items the state holds as confirmed by Graph."""
    state = open_readonly(state_path(settings.sync.state_dir, settings.name))
    if state is None:
        return set()
    try:
        return {i for i, r in state.items().items() if r.hash}
    finally:
        state.close()


@pytest.mark.parametrize(
    ("setting", "why"),
    [("rejected", "Credly refused the sort"), ("ignored", "is not sorted by recipient address")],
)
def test_a_credly_that_refuses_or_ignores_the_sort_gets_every_item_written_after_the_read(
    big_sim: Simulator, tmp_path: Path, setting: str, why: str
) -> None:
    """Through the real client: the crawl log says why nothing more was streamed."""
    big_sim.set_switches(credly_badge_sort=setting)
    settings = settings_of(configure(big_sim, tmp_path))
    do_setup(settings)
    log = tmp_path / "crawl.log"
    report = do_sync(settings, kind="full", log_file=log)
    assert report.exit_code == 0, report.error
    stopped = [e["stopped"] for e in log_events(log, "streamed") if "stopped" in e]
    assert len(stopped) == 1 and why in stopped[0]
    assert report.counts()["written"] == len(oracle(big_sim))
    assert graph_view(big_sim) == oracle(big_sim)
