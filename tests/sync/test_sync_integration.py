"""The sync against the simulator over real HTTPS: rules, deletions, crawl kinds, faults."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from credly_connector.errors import UsageError
from credly_connector.simulator.core import TokenCheck
from credly_connector.simulator.runner import Simulator, start_simulator
from credly_connector.sync.ratelimit import RESUMED_SHARE, START_RATE
from credly_connector.sync.runner import WRITE_RATE_KEY, remembered_write_rate
from credly_connector.sync.state import open_readonly, open_state, state_path
from tests.sync.simhelpers import (
    CONNECTION,
    bigger_scenario,
    configure,
    do_setup,
    do_sync,
    graph_view,
    oracle,
    org_id,
    settings_of,
)

pytestmark = pytest.mark.integration


def graph_requests(sim: Simulator, method: str | None = None, contains: str = "") -> list[Any]:
    return [
        e
        for e in sim.request_log()
        if e.service == "graph" and (method is None or e.method == method) and contains in e.path
    ]


def test_setup_is_idempotent_and_puts_instances_ahead_of_foreign_sources(
    fresh_sim: Simulator, tmp_path: Path
) -> None:
    settings = settings_of(configure(fresh_sim, tmp_path))
    first = do_setup(settings)
    assert [s.status for s in first.steps] == ["created", "created", "created", "updated"]
    urls = fresh_sim.profile_property_settings()[0]["prioritizedSourceUrls"]
    graph = fresh_sim.urls.graph
    assert urls == [
        f"{graph}/v1.0/admin/people/profileSources(sourceId='credlybadges')",
        f"{graph}/v1.0/admin/people/profileSources(sourceId='4ce763dd-9214-4eff-af7c-da491cc3782d')",
        f"{graph}/v1.0/admin/people/profileSources(sourceId='MicrosoftCredly')",
    ]
    fresh_sim.clear_request_log()
    again = do_setup(settings)
    assert not again.changed
    assert graph_requests(fresh_sim) and all(e.method == "GET" for e in graph_requests(fresh_sim))

    # A second credlyctl instance goes after the first one, ahead of the Entra source.
    second_dir = tmp_path / "second"
    second_dir.mkdir()
    text = configure(fresh_sim, second_dir).read_text()
    (second_dir / "credlyctl.toml").write_text(
        text.replace('connection_id = "credlybadges"', 'connection_id = "credlybadges2"')
    )
    do_setup(settings_of(second_dir / "credlyctl.toml"))
    urls = fresh_sim.profile_property_settings()[0]["prioritizedSourceUrls"]
    assert [u.split("sourceId=")[1] for u in urls] == [
        "'credlybadges')",
        "'credlybadges2')",
        "'4ce763dd-9214-4eff-af7c-da491cc3782d')",
        "'MicrosoftCredly')",
    ]
    assert not do_setup(settings).changed  # the first instance does not fight for first place


def test_setup_refuses_a_connection_with_another_schema(
    fresh_sim: Simulator, tmp_path: Path
) -> None:
    from credly_connector.sync.clients import build_clients

    settings = settings_of(configure(fresh_sim, tmp_path))
    clients = build_clients(settings)
    clients.graph.create_connection(CONNECTION, "Someone else", "other", "people")
    operation = clients.graph.register_schema(
        CONNECTION, [{"name": "account", "type": "string", "labels": ["personAccount"]}]
    )
    while clients.graph.get_operation(operation).get("status") != "completed":
        time.sleep(0.1)  # the simulator applies schemas after a short delay, like Graph
    clients.close()
    with pytest.raises(UsageError, match="different schema") as refused:
        do_setup(settings)
    assert "property 'awards' is missing" in refused.value.message


def test_full_sync_writes_exactly_the_oracle_and_counts_every_skip_reason(
    fresh_sim: Simulator, tmp_path: Path
) -> None:
    settings = settings_of(configure(fresh_sim, tmp_path))
    do_setup(settings)
    report = do_sync(settings)
    assert report.kind == "full" and report.exit_code == 0
    expected = oracle(fresh_sim)
    assert graph_view(fresh_sim) == expected
    # Award vs certification: Alex holds one of each in the demo.
    alex = expected["6becbce9bdf35e09907101fc08c3ae25"]
    assert alex["awards"] and alex["certifications"]
    assert report.plan is not None
    assert dict(report.plan.badge_skips) == {
        "badge_expired": 1,
        "badge_no_matching_user": 4,  # alias, outside address, misspelling, unknown person
        "badge_pending": 2,
        "badge_private": 1,
        "badge_rejected": 1,
        "badge_revoked": 1,
        "user_disabled": 1,
        "user_unlicensed": 1,
    }
    # No cleanup deletes: setup created the connection, so it held no item.
    assert report.counts()["deleted"] == 0
    # Credly is only read: GETs and the token request.
    for entry in fresh_sim.request_log():
        if entry.service.startswith("credly"):
            assert entry.method == "GET" or (
                entry.method == "POST" and entry.path.endswith("/oauth/token")
            ), entry


def test_every_way_of_no_longer_qualifying_deletes_the_item(
    big_sim: Simulator, tmp_path: Path
) -> None:
    settings = settings_of(configure(big_sim, tmp_path))
    do_setup(settings)
    assert do_sync(settings).exit_code == 0
    before = graph_view(big_sim)
    big_sim.update_user("alex.wilber@contoso.com", accountEnabled=False)
    big_sim.update_user("christie.cline@contoso.com", assignedLicenses=[])
    big_sim.update_user(
        "dsiciliani@contoso.com",
        proxyAddresses=["SMTP:d.siciliani@contoso.com", "smtp:diego.siciliani@contoso.com"],
    )
    big_sim.delete_user("extra004@contoso.com")
    badges = {b["recipient_email"]: b["id"] for b in big_sim.badges(org_id(big_sim))}
    big_sim.update_badge(badges["extra000@contoso.com"], state="revoked")
    big_sim.update_badge(badges["extra001@contoso.com"], public=False)
    big_sim.update_badge(badges["extra002@contoso.com"], expires_at="2020-01-01T00:00:00Z")
    big_sim.update_badge(badges["extra005@contoso.com"], state="rejected")
    served = {badges["extra006@contoso.com"]: "archived"}  # a state credlyctl does not know
    big_sim.set_faults(unknown_badge_states=served)
    opted = configure(big_sim, tmp_path, opt_out=["EXTRA003@contoso.com"])
    report = do_sync(settings_of(opted), kind="incremental")
    assert report.kind == "incremental"
    expected = oracle(big_sim, opt_out=("extra003@contoso.com",), served_states=served)
    assert graph_view(big_sim) == expected
    assert report.plan is not None
    reasons = {op.upn: str(op.reason) for op in report.plan.ops if str(op.action) == "delete"}
    assert reasons == {
        "alex.wilber@contoso.com": "user_disabled",
        "christie.cline@contoso.com": "user_unlicensed",
        "dsiciliani@contoso.com": "no_indexable_badge",
        "extra004@contoso.com": "user_deleted",
        "extra000@contoso.com": "no_indexable_badge",
        "extra001@contoso.com": "no_indexable_badge",
        "extra002@contoso.com": "no_indexable_badge",
        "extra005@contoso.com": "no_indexable_badge",
        "extra006@contoso.com": "no_indexable_badge",
        "extra003@contoso.com": "user_opted_out",
    }
    assert report.plan.badge_skips["badge_unknown_state"] == 1
    assert len(before) - len(graph_view(big_sim)) == 10


def test_crawl_kind_choice_delta_use_and_expired_delta_fallback(
    fresh_sim: Simulator, tmp_path: Path
) -> None:
    settings = settings_of(configure(fresh_sim, tmp_path))
    do_setup(settings)
    assert do_sync(settings).kind == "full"
    assert do_sync(settings, if_due=True).skipped_reason == "no crawl is due"
    fresh_sim.clear_request_log()
    fresh_sim.update_user("lynne.robbins@contoso.com", accountEnabled=False)
    report = do_sync(settings)
    assert report.kind == "incremental" and report.counts()["deleted"] == 1
    assert report.counts()["written"] == 0  # unchanged users are not rewritten
    paths = [e.path for e in graph_requests(fresh_sim, "GET", "/users")]
    assert paths and all(p.endswith("/users/delta") for p in paths)  # no full listing
    assert graph_view(fresh_sim) == oracle(fresh_sim)

    fresh_sim.expire_delta_tokens()
    fresh_sim.update_user("lynne.robbins@contoso.com", accountEnabled=True)
    fresh_sim.clear_request_log()
    report = do_sync(settings, kind="incremental")
    assert any("expired" in w for w in report.warnings)
    assert any(e.path.endswith("/v1.0/users") for e in graph_requests(fresh_sim, "GET"))
    assert report.counts()["written"] == 1
    assert graph_view(fresh_sim) == oracle(fresh_sim)

    # A tiny full interval makes the next unflagged run a full crawl again.
    quick = settings_of(configure(fresh_sim, tmp_path, full_interval_days=1e-9))
    assert do_sync(quick).kind == "full"


def test_throttling_inside_batches_and_503s_are_retried_to_completion(
    big_sim: Simulator, tmp_path: Path
) -> None:
    settings = settings_of(configure(big_sim, tmp_path, write_concurrency=2))
    do_setup(settings)
    big_sim.set_faults(
        graph_ingestion_limit_per_second=15, error_503_next=2, error_503_services=["graph"]
    )
    report = do_sync(settings)
    assert report.exit_code == 0, report.error
    assert report.write is not None and report.write.throttled_entries > 0
    assert report.write.final_rate < report.write.peak_rate  # it slowed down on its own
    assert [e.fault for e in big_sim.request_log() if e.fault] == ["503", "503"]
    assert graph_view(big_sim) == oracle(big_sim)


def test_an_access_token_expiring_mid_run_is_renewed(
    fresh_sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_of(configure(fresh_sim, tmp_path))
    do_setup(settings)
    real = fresh_sim.tokens.verify
    calls = 0

    def verify(token: str | None) -> TokenCheck:
        nonlocal calls
        check = real(token)
        if check.claims and "aud" in check.claims:  # an Entra token presented to Graph
            calls += 1
            # The crawl's second Graph call sees its token expired, as after an hour.
            if calls == 2:
                return TokenCheck(check.claims, "expired")
        return check

    fresh_sim.clear_request_log()
    monkeypatch.setattr(fresh_sim.tokens, "verify", verify)
    report = do_sync(settings)
    assert report.exit_code == 0, report.error
    assert any(e.status == 401 for e in fresh_sim.request_log() if e.service == "graph")
    assert graph_view(fresh_sim) == oracle(fresh_sim)


def test_dry_run_writes_nothing_to_graph_or_state(fresh_sim: Simulator, tmp_path: Path) -> None:
    settings = settings_of(configure(fresh_sim, tmp_path))
    do_setup(settings)
    path = state_path(settings.sync.state_dir, settings.name)
    before_state = path.read_bytes()
    fresh_sim.clear_request_log()
    report = do_sync(settings, dry_run=True)
    assert report.plan is not None and report.plan.actions()["create"] == 4
    assert not graph_requests(fresh_sim, "POST") and not graph_requests(fresh_sim, "PUT")
    assert fresh_sim.graph_items(CONNECTION) == {}
    assert path.read_bytes() == before_state


def test_user_option_syncs_only_the_named_user(fresh_sim: Simulator, tmp_path: Path) -> None:
    settings = settings_of(configure(fresh_sim, tmp_path))
    do_setup(settings)
    report = do_sync(settings, users=("Christie.Cline@contoso.com",))
    assert report.kind == "user" and report.exit_code == 0
    assert list(graph_view(fresh_sim)) == ["a354d6b71420568096d10bf9ea51ffa0"]
    assert not any(e.path.endswith("/v1.0/users") and not e.query for e in fresh_sim.request_log())
    state = open_readonly(state_path(settings.sync.state_dir, settings.name))
    assert state is not None
    assert state.item_for_user("a354d6b7-1420-5680-96d1-0bf9ea51ffa0") is not None
    state.close()


def test_sync_refuses_when_the_connection_is_not_ready(
    fresh_sim: Simulator, tmp_path: Path
) -> None:
    settings = settings_of(configure(fresh_sim, tmp_path))
    report = do_sync(settings)
    assert report.exit_code == 2 and report.error is not None
    assert "does not exist" in report.error.message and "credlyctl setup" in report.error.hint


def test_an_item_graph_refuses_is_listed_and_retried_next_time(
    fresh_sim: Simulator, tmp_path: Path
) -> None:
    settings = settings_of(configure(fresh_sim, tmp_path))
    do_setup(settings)
    # A badge whose name makes Christie's item larger than Graph's 4 MB limit.
    huge = fresh_sim.add_badge(
        org_id(fresh_sim),
        state="accepted",
        public=True,
        recipient_email="christie.cline@contoso.com",
        badge_template={"id": "huge", "name": "x" * (4 * 1024 * 1024 + 10)},
    )
    report = do_sync(settings)
    assert report.exit_code == 1 and report.error is None
    assert [(f.user_principal_name, f.status, f.code) for f in report.failures] == [
        ("christie.cline@contoso.com", 413, "requestTooLarge")
    ]
    assert report.counts()["written"] == 3
    state = open_readonly(state_path(settings.sync.state_dir, settings.name))
    assert state is not None
    christie = state.item_for_user("a354d6b7-1420-5680-96d1-0bf9ea51ffa0")
    assert christie is not None and christie.hash is None and "4 MB" in (christie.last_error or "")
    assert state.last_crawl().outcome == "partial"  # type: ignore[union-attr]
    state.close()
    fresh_sim.update_badge(huge["id"], badge_template={"id": "huge", "name": "Normal again"})
    again = do_sync(settings, kind="incremental")
    assert again.exit_code == 0
    assert [(op.upn, str(op.reason)) for op in again.plan.writes] == [  # type: ignore[union-attr]
        ("christie.cline@contoso.com", "previous_write_unconfirmed")
    ]
    assert graph_view(fresh_sim) == oracle(fresh_sim)


def _concurrency_429s(sim: Simulator) -> int:
    return sum(1 for t in sim.graph_throttled() if t["reason"] == "concurrency")


def test_the_simulator_answers_429_past_25_concurrent_operations(
    big_sim: Simulator, tmp_path: Path
) -> None:
    """The check below can fail: two $batch of 20 at once get 429 for the entries past 25."""
    from credly_connector.graph.batch import BatchRequest
    from credly_connector.sync.clients import build_clients

    settings = settings_of(configure(big_sim, tmp_path))
    do_setup(settings)
    clients = build_clients(settings)
    try:
        clients.graph.batch([BatchRequest("1", "GET", f"/external/connections/{CONNECTION}")])
        # Token and connection ready: with 4 s each, both requests are in flight at once,
        # even on a loaded machine.
        big_sim.set_faults(latency_seconds=4)
        with ThreadPoolExecutor(2) as pool:
            futures = [
                pool.submit(
                    clients.graph.batch,
                    [
                        BatchRequest(
                            str(n), "GET", f"/external/connections/{CONNECTION}/items/x{n}"
                        )
                        for n in range(20)
                    ],
                )
                for _ in range(2)
            ]
            statuses = [a.status for f in futures for a in f.result()]
    finally:
        clients.close()
        big_sim.set_faults(latency_seconds=0)
    assert statuses.count(429) == 15 and _concurrency_429s(big_sim) == 15


@pytest.mark.parametrize("concurrency", [1, 2, 16])
def test_a_sync_never_has_more_than_25_item_operations_in_flight(
    tmp_path: Path, concurrency: int
) -> None:
    """Issue 8 item 4: zero 429s caused by our own oversubscription, in the simulator's log.

    400 items with 0.1 s per request: the write rate climbs far past 250 items/s, where
    more than 25 writes would be in flight without the cap."""
    with start_simulator(bigger_scenario(400)) as sim:
        settings = settings_of(configure(sim, tmp_path, write_concurrency=concurrency))
        do_setup(settings)
        sim.set_faults(latency_seconds=0.1)  # batches overlap, as over a real network
        report = do_sync(settings)
        assert report.exit_code == 0, report.error
        assert report.write is not None and report.write.written > 400
        assert _concurrency_429s(sim) == 0
        peak = sim.graph.external.operations.peak[CONNECTION]
        assert 1 < peak <= 25  # writes did overlap, up to the limit
        assert graph_view(sim) == oracle(sim)


def _remembered(settings: Any) -> float | None:
    state = open_state(state_path(settings.sync.state_dir, settings.name), settings.name)
    try:
        return remembered_write_rate(state)
    finally:
        state.close()


def test_the_next_crawl_starts_writing_near_the_rate_graph_accepted_last_time(
    big_sim: Simulator, tmp_path: Path
) -> None:
    settings = settings_of(configure(big_sim, tmp_path))
    do_setup(settings)
    first = do_sync(settings, kind="full")
    assert first.exit_code == 0, first.error
    assert first.write is not None and first.write.peak_rate > START_RATE  # it probed up
    remembered = _remembered(settings)
    # No ingestion limit here: what Graph confirmed, never more than the rate reached.
    assert remembered is not None and START_RATE <= remembered <= first.write.peak_rate
    log = tmp_path / "second.log"
    second = do_sync(settings, kind="full", log_file=log)
    assert second.exit_code == 0, second.error
    events = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    start = next(e for e in events if e["event"] == "write_start")  # the head start's
    assert start["rate"] == pytest.approx(remembered * RESUMED_SHARE, abs=0.01)
    assert graph_view(big_sim) == oracle(big_sim)


def test_the_rate_remembered_after_429s_is_what_graph_accepted_not_the_probing_peak(
    big_sim: Simulator, tmp_path: Path
) -> None:
    """Issue 12: the first crawl probes past the limit; the next must not start there."""
    big_sim.set_faults(graph_ingestion_limit_per_second=10)
    settings = settings_of(configure(big_sim, tmp_path))
    do_setup(settings)
    first = do_sync(settings, kind="full")
    assert first.exit_code == 0, first.error
    assert first.write is not None and first.write.throttled_entries > 0
    assert first.write.peak_rate > 20  # the probe overshot (the bucket's burst hides 10/s)
    remembered = _remembered(settings)
    assert remembered is not None and 5 <= remembered <= 15, (remembered, first.write)
    assert graph_view(big_sim) == oracle(big_sim)


@pytest.mark.parametrize("stored", ["", "abc", "nan", "inf", "-3", "0"])
def test_a_remembered_rate_that_makes_no_sense_is_ignored(stored: str, tmp_path: Path) -> None:
    state = open_state(tmp_path / "s.sqlite", "default")
    try:
        state.set_meta(WRITE_RATE_KEY, stored)
        assert remembered_write_rate(state) is None
    finally:
        state.close()
