"""The state database: migrations, the write protocol, read APIs and the lock."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from credly_connector.errors import UsageError
from credly_connector.sync.state import (
    SCHEMA_VERSION,
    BadgeObservation,
    SyncLock,
    open_readonly,
    open_state,
)


def test_new_database_is_migrated_to_the_current_version(tmp_path: Path) -> None:
    state = open_state(tmp_path / "s.sqlite3", "contoso")
    assert state.schema_version == SCHEMA_VERSION
    assert state.get_meta("instance") == "contoso"
    assert state.is_new


def test_version_one_database_is_migrated_forward_keeping_rows(tmp_path: Path) -> None:
    from credly_connector.sync import state as state_module

    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    for statement in state_module._MIGRATIONS[1]:
        conn.execute(statement)
    conn.execute("INSERT INTO items (item_id, user_id, hash) VALUES ('i1', 'u1', 'h1')")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    state = open_state(path, "contoso")
    assert state.schema_version == SCHEMA_VERSION
    item = state.item_for_user("u1")
    assert item is not None and item.hash == "h1" and item.written_crawl is None


def test_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(UsageError, match="newer credlyctl"):
        open_state(path, "contoso")


def test_intent_clears_hash_until_the_result_is_recorded(tmp_path: Path) -> None:
    state = open_state(tmp_path / "s.sqlite3", "contoso")
    crawl = state.begin_crawl("full")
    state.mark_intents([("i1", "u1", "put", "a@c.com"), ("i2", "u2", "put", "b@c.com")])
    assert state.item_for_user("u1").hash is None  # type: ignore[union-attr]
    state.record_results(crawl, written=[("i1", "h1")], deleted=[], failed=[("i2", "400 bad")])
    i1, i2 = state.item_for_user("u1"), state.item_for_user("u2")
    assert i1 is not None and i1.hash == "h1" and i1.intent is None and i1.written_crawl == crawl
    assert i2 is not None and i2.hash is None and i2.last_error == "400 bad"
    state.mark_intents([("i1", "u1", "delete", None)])
    assert state.items()["i1"].hash is None and state.items()["i1"].upn == "a@c.com"
    state.record_results(crawl, written=[], deleted=["i1"], failed=[])
    assert state.item_for_user("u1") is None
    # Writing is not completing: only the end of a full crawl ends the missing-state period (H1).
    assert state.is_new


def test_crawl_history_and_last_crawl_filters(tmp_path: Path) -> None:
    state = open_state(tmp_path / "s.sqlite3", "contoso")
    first = state.begin_crawl("full")
    state.finish_crawl(first, "succeeded", {"written": 3}, [])
    second = state.begin_crawl("incremental")
    state.finish_crawl(second, "partial", {}, [{"item_id": "x", "error": "boom"}])
    third = state.begin_crawl("full")  # never finished: the process "died"
    fourth = state.begin_crawl("incremental")
    history = state.crawl_history(10)
    assert [c.id for c in history] == [fourth, third, second, first]
    assert history[1].outcome == "interrupted"
    assert state.last_crawl("full", successful=True).id == first  # type: ignore[union-attr]
    assert state.last_crawl(successful=False).id == fourth  # type: ignore[union-attr]
    assert state.last_crawl("incremental", successful=True) is None
    assert history[3].counts == {"written": 3} and history[3].duration_seconds is not None


def test_full_cycle_start_follows_interrupted_full_crawls(tmp_path: Path) -> None:
    state = open_state(tmp_path / "s.sqlite3", "contoso")
    done = state.begin_crawl("full")
    state.finish_crawl(done, "succeeded", {}, [])
    assert state.full_cycle_start() is None
    state.begin_crawl("full")
    interrupted = state.crawl_history(1)[0]
    state.begin_crawl("full")
    # The running crawl and the interrupted one before it form one cycle.
    assert state.full_cycle_start() == interrupted.started_at


def test_users_snapshot_and_delta_link_saved_with_the_crawl(tmp_path: Path) -> None:
    state = open_state(tmp_path / "s.sqlite3", "contoso")
    crawl = state.begin_crawl("full")
    state.finish_crawl(crawl, "succeeded", {}, [], users=[("u1", {"id": "u1"})], delta_link="L1")
    assert state.users_snapshot() == {"u1": {"id": "u1"}}
    assert state.delta_link() == "L1"


def test_a_delta_crawl_saves_only_the_changed_and_removed_users(tmp_path: Path) -> None:
    state = open_state(tmp_path / "s.sqlite3", "contoso")
    crawl = state.begin_crawl("full")
    users = [(u, {"id": u}) for u in ("u1", "u2", "u3")]
    state.finish_crawl(crawl, "succeeded", {}, [], users=users, delta_link="L1")
    crawl = state.begin_crawl("incremental")
    state.finish_crawl(
        crawl,
        "succeeded",
        {},
        [],
        users=[("u2", {"id": "u2", "name": "new"}), ("u4", {"id": "u4"})],
        users_removed=["u3"],
        delta_link="L2",
    )
    assert state.users_snapshot() == {
        "u1": {"id": "u1"},
        "u2": {"id": "u2", "name": "new"},
        "u4": {"id": "u4"},
    }
    assert state.delta_link() == "L2"


def test_badges_are_rewritten_only_when_their_observation_changes(tmp_path: Path) -> None:
    state = open_state(tmp_path / "s.sqlite3", "contoso")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    seen = BadgeObservation("b1", "accepted", True, "A@c.com", "u1", None)
    state.record_badges([seen], t0)
    state.record_badges([seen], t0 + timedelta(days=1))
    assert state.badge("b1").last_seen == t0  # type: ignore[union-attr]
    moved = BadgeObservation("b1", "accepted", True, "a@c.com", "u2", None)
    state.record_badges([moved], t0 + timedelta(days=2))
    record = state.badge("b1")
    assert record is not None and record.user_id == "u2"
    assert record.last_seen == t0 + timedelta(days=2) and record.first_indexed == t0


def test_badges_keep_first_indexed_and_are_found_by_email(tmp_path: Path) -> None:
    state = open_state(tmp_path / "s.sqlite3", "contoso")
    state.record_badges([BadgeObservation("b1", "pending", True, "A@C.com", "u1", "badge_pending")])
    record = state.badge("b1")
    assert record is not None and record.first_indexed is None
    state.record_badges([BadgeObservation("b1", "accepted", True, "a@c.com", "u1", None)])
    first = state.badge("b1").first_indexed  # type: ignore[union-attr]
    assert first is not None
    state.record_badges(
        [BadgeObservation("b1", "accepted", False, "a@c.com", "u1", "badge_private")]
    )
    again = state.badge("b1")
    assert (
        again is not None and again.first_indexed == first and again.skip_reason == "badge_private"
    )
    assert [b.id for b in state.badges_for_email("A@c.COM")] == ["b1"]


def test_readonly_open_of_missing_state_is_none(tmp_path: Path) -> None:
    assert open_readonly(tmp_path / "absent.sqlite3") is None
    open_state(tmp_path / "s.sqlite3", "contoso").close()
    readonly = open_readonly(tmp_path / "s.sqlite3")
    assert readonly is not None and readonly.crawl_history() == []


def test_lock_refuses_a_second_holder_and_is_released_on_death(tmp_path: Path) -> None:
    lock_path = tmp_path / "contoso.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path;"
            "from credly_connector.sync.state import SyncLock;"
            f"lock = SyncLock(Path({str(lock_path)!r})); lock.acquire('contoso');"
            "print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(UsageError, match=f"process {holder.pid}") as refused:
            SyncLock(lock_path).acquire("contoso")
        assert refused.value.exit_code == 2
        assert SyncLock(lock_path).held_elsewhere()
    finally:
        holder.kill()
        holder.wait()
    lock = SyncLock(lock_path)
    lock.acquire("contoso")  # the kernel released the dead holder's lock
    lock.release()


def test_a_completed_crawl_ends_the_missing_state_period_even_without_writes(
    tmp_path: Path,
) -> None:
    state = open_state(tmp_path / "s.sqlite3", "contoso")
    crawl = state.begin_crawl("full")
    state.finish_crawl(crawl, "failed", {}, [])
    assert state.is_new
    crawl = state.begin_crawl("full")
    state.finish_crawl(crawl, "succeeded", {}, [])
    assert not state.is_new
    state.forget_connection()
    assert state.is_new


def test_unmatched_badges_are_replaced_by_each_crawl(tmp_path: Path) -> None:
    from credly_connector.sync.state import UnmatchedBadgeRecord

    state = open_state(tmp_path / "s.sqlite3", "contoso")
    assert state.unmatched_badges() == [] and state.unmatched_badges_at() is None
    state.replace_unmatched_badges([UnmatchedBadgeRecord("b1", "A@X.com", "A B", "A", "B")])
    state.replace_unmatched_badges([UnmatchedBadgeRecord("b2", "c@x.com", None, None, None)])
    assert state.unmatched_badges() == [UnmatchedBadgeRecord("b2", "c@x.com", None, None, None)]
    assert state.unmatched_badges_at() is not None


def test_snapshot_search_finds_users_by_text_and_escapes_like_wildcards(tmp_path: Path) -> None:
    state = open_state(tmp_path / "s.sqlite3", "contoso")
    crawl = state.begin_crawl("full")
    users = [
        ("u1", {"id": "u1", "upn": "Miriam.Graham@contoso.com"}),
        ("u2", {"id": "u2", "upn": "mxriam_graham@contoso.com"}),
    ]
    state.finish_crawl(crawl, "succeeded", {}, [], users=users)
    assert [d["id"] for d in state.snapshot_users_mentioning("miriam.graham@")] == ["u1"]
    assert [d["id"] for d in state.snapshot_users_mentioning("m_riam")] == []
    assert [d["id"] for d in state.snapshot_users_mentioning("mxriam_graham")] == ["u2"]


def test_item_records_stream_in_user_id_order(tmp_path: Path) -> None:
    state = open_state(tmp_path / "s.sqlite", "default")
    try:
        users = [f"{n:08x}-0000-0000-0000-000000000000" for n in (9, 3, 0xA, 1, 0xB)] * 300
        state.mark_intents(
            (u.replace("-", "") + str(i), u, "put", None) for i, u in enumerate(users)
        )
        streamed = [r.user_id for r in state.items_by_user()]
        assert streamed == sorted(users) and len(streamed) == state.item_count() == 1500
        assert {r.item_id for r in state.items_by_user()} == set(state.items())
    finally:
        state.close()
