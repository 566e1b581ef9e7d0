"""The planner: create/update/delete/unchanged with reasons, skip counts, full vs incremental."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from credly_connector.identity.entities import input_digest, item_body, item_id
from credly_connector.sync.planner import Action, PlanInputs, Reason, plan_sync
from credly_connector.sync.records import ItemRecord
from credly_connector.sync.spool import BadgeSpool
from tests.identity.factories import NOW, badge, user

ADA = user("aaaaaaaa-0000-0000-0000-000000000001", "ada@c.com")
BOB = user("bbbbbbbb-0000-0000-0000-000000000002", "bob@c.com", enabled=False)
CY = user("cccccccc-0000-0000-0000-000000000003", "cy@c.com", licenses=0)
DEE = user("dddddddd-0000-0000-0000-000000000004", "dee@c.com", smtp="d@c.com")


def record(u_id: str, h: str | None, last_write: Any = NOW) -> ItemRecord:
    return ItemRecord(item_id(u_id), u_id, None, h, None, last_write, None, None)


def plan(**kw: Any) -> Any:
    defaults: dict[str, Any] = {
        "badges": [],
        "users": [ADA, BOB, CY, DEE],
        "items": {},
        "tenant_id": "t",
        "now": NOW,
    }
    merged = {**defaults, **kw}
    spool = BadgeSpool()  # what a crawl fills page by page
    spool.add(merged.pop("badges"), merged["now"])
    return plan_sync(PlanInputs(badges=spool, **merged))


def by_user(p: Any) -> dict[str, tuple[Action, Reason]]:
    return {op.user_id: (op.action, op.reason) for op in p.ops}


def test_creates_for_qualifying_users_and_counts_skips_by_first_reason() -> None:
    badges = [
        badge("1", "ada@c.com"),
        badge("2", "D@C.com"),
        badge("3", "bob@c.com"),
        badge("4", "cy@c.com"),
        badge("5", "nobody@c.com"),
        badge("6", "ada@c.com", state="pending"),
        badge("7", "ada@c.com", public=False),
        badge("8", "ada@c.com", state="weird"),
    ]
    p = plan(badges=badges)
    assert by_user(p) == {
        ADA.id: (Action.CREATE, Reason.NEW_ITEM),
        DEE.id: (Action.CREATE, Reason.NEW_ITEM),
    }
    assert dict(p.badge_skips) == {
        "user_disabled": 1,
        "user_unlicensed": 1,
        "badge_no_matching_user": 1,
        "badge_pending": 1,
        "badge_private": 1,
        "badge_unknown_state": 1,
    }
    assert p.badges_read == 8 and p.badges_indexed == 2 and p.users_matched == 2


def test_unchanged_when_the_hash_matches_and_update_when_not() -> None:
    b = badge("1", "ada@c.com")
    same = input_digest(ADA, [b], "t")
    assert by_user(plan(badges=[b], items={"x": record(ADA.id, same)}))[ADA.id] == (
        Action.UNCHANGED,
        Reason.SAME_CONTENT,
    )
    assert by_user(plan(badges=[b], items={"x": record(ADA.id, "old")}))[ADA.id] == (
        Action.UPDATE,
        Reason.CONTENT_CHANGED,
    )
    assert by_user(plan(badges=[b], items={"x": record(ADA.id, None)}))[ADA.id] == (
        Action.UPDATE,
        Reason.UNCONFIRMED_WRITE,
    )


def test_full_crawl_refreshes_items_written_before_the_cycle_only() -> None:
    b = badge("1", "ada@c.com")
    same = input_digest(ADA, [b], "t")
    old = {"x": record(ADA.id, same, NOW - timedelta(days=8))}
    assert by_user(plan(badges=[b], items=old, refresh_before=NOW))[ADA.id] == (
        Action.UPDATE,
        Reason.FULL_REFRESH,
    )
    resumed = {"x": record(ADA.id, same, NOW + timedelta(seconds=1))}
    assert by_user(plan(badges=[b], items=resumed, refresh_before=NOW))[ADA.id][0] is (
        Action.UNCHANGED
    )


def test_a_write_the_head_start_sent_already_is_counted_not_kept() -> None:
    a, d = badge("1", "ada@c.com"), badge("2", "d@c.com")
    sent_digest = input_digest(ADA, [a], "t")
    items = {"a": record(ADA.id, "old"), "d": record(DEE.id, "old")}

    def sent(user_id: str, digest: str) -> str | None:
        # Ada's exact body went out; Dee's went out with content that has changed since.
        return "update" if (user_id, digest) in {(ADA.id, sent_digest), (DEE.id, "older")} else None

    p = plan(badges=[a, d], items=items, already_sent=sent)
    assert by_user(p) == {DEE.id: (Action.UPDATE, Reason.CONTENT_CHANGED)}
    assert p.actions()["update"] == 2 and dict(p.sent) == {"update": 1}
    assert [op.user_id for op in p.writes] == [DEE.id]


def test_deletions_for_every_way_a_user_stops_qualifying() -> None:
    items = {
        str(i): record(u.id, "h")
        for i, u in enumerate([ADA, BOB, CY, DEE, user("eeeeeeee-0", "gone@c.com")])
    }
    p = plan(
        badges=[badge("1", "d@c.com", state="revoked"), badge("2", "bob@c.com")],
        items=items,
        opt_out=["ADA@c.com"],
    )
    assert by_user(p) == {
        ADA.id: (Action.DELETE, Reason.USER_OPTED_OUT),
        BOB.id: (Action.DELETE, Reason.USER_DISABLED),
        CY.id: (Action.DELETE, Reason.USER_UNLICENSED),
        DEE.id: (Action.DELETE, Reason.NO_INDEXABLE_BADGE),
        "eeeeeeee-0": (Action.DELETE, Reason.USER_DELETED),
    }


def test_badge_moving_to_an_alias_no_longer_matches_and_deletes() -> None:
    moved = user(DEE.id, "dee@c.com", smtp="new@c.com", aliases=("d@c.com",))
    p = plan(badges=[badge("1", "d@c.com")], users=[moved], items={"x": record(DEE.id, "h")})
    assert by_user(p) == {DEE.id: (Action.DELETE, Reason.NO_INDEXABLE_BADGE)}
    assert p.badge_skips["badge_no_matching_user"] == 1


def test_missing_state_cleanup_deletes_every_non_qualifying_directory_user_and_warns() -> None:
    p = plan(badges=[badge("1", "ada@c.com")], cleanup_unknown=True)
    assert by_user(p) == {
        ADA.id: (Action.CREATE, Reason.NEW_ITEM),
        BOB.id: (Action.DELETE, Reason.STATE_MISSING_CLEANUP),
        CY.id: (Action.DELETE, Reason.STATE_MISSING_CLEANUP),
        DEE.id: (Action.DELETE, Reason.STATE_MISSING_CLEANUP),
    }
    assert any("deleted from the directory" in w for w in p.warnings)
    assert "cannot" not in " ".join(plan(badges=[]).warnings)


def test_a_user_listed_twice_is_planned_once_with_their_badges() -> None:
    # Paging a directory that changes meanwhile may return a user twice.
    p = plan(
        badges=[badge("1", "ada@c.com"), badge("2", "ada@c.com")],
        users=[ADA, BOB, ADA, CY],
        cleanup_unknown=True,
    )
    assert [(op.user_id, op.action, op.badge_count) for op in p.ops if op.user_id == ADA.id] == [
        (ADA.id, Action.CREATE, 2)
    ]
    assert p.users_matched == 1


def test_only_user_ids_limits_the_plan_to_those_users() -> None:
    items = {"x": record(BOB.id, "h"), "y": record("gone", "h")}
    p = plan(
        badges=[badge("1", "ada@c.com"), badge("2", "d@c.com")],
        items=items,
        only_user_ids=frozenset({DEE.id}),
    )
    assert by_user(p) == {DEE.id: (Action.CREATE, Reason.NEW_ITEM)}


def test_opted_out_recipient_email_is_skipped_even_without_a_user() -> None:
    p = plan(badges=[badge("1", "left@c.com")], opt_out=["left@c.com"])
    assert dict(p.badge_skips) == {"user_opted_out": 1}


people = st.lists(
    st.tuples(st.sampled_from(["p1", "p2", "p3", "p4"]), st.booleans(), st.integers(0, 2)),
    unique_by=lambda p: p[0],
)
issued = st.lists(
    st.tuples(
        st.sampled_from(["p1", "p2", "p3", "p4", "P1", "zz"]),
        st.sampled_from(["accepted", "pending", "revoked", "odd"]),
        st.booleans(),
    ),
    max_size=8,
)


@given(before=people, after=people, badges_before=issued, badges_after=issued)
def test_applying_a_plan_converges_and_no_deletion_is_lost(
    before: list[Any], after: list[Any], badges_before: list[Any], badges_after: list[Any]
) -> None:
    def users(spec: list[Any]) -> list[Any]:
        return [
            user(f"{name}-id", f"{name}@c.com", enabled=enabled, licenses=licenses)
            for name, enabled, licenses in spec
        ]

    def badges(spec: list[Any]) -> list[Any]:
        return [
            badge(str(n), f"{who}@c.com", state=state, public=public)
            for n, (who, state, public) in enumerate(spec)
        ]

    graph: dict[str, str] = {}  # item id -> hash: what "Graph" holds
    items: dict[str, ItemRecord] = {}

    def apply(p: Any) -> None:
        for op in p.ops:
            if op.action is Action.DELETE:
                graph.pop(op.item_id, None)
                items.pop(op.item_id, None)
            elif op.action is not Action.UNCHANGED:
                graph[op.item_id] = op.hash
                items[op.item_id] = record(op.user_id, op.hash)

    apply(plan(users=users(before), badges=badges(badges_before), items=items))
    second = plan(users=users(after), badges=badges(badges_after), items=dict(items))
    apply(second)
    qualifying = {
        name
        for name, enabled, licenses in after
        if enabled
        and licenses > 0
        and any(w.lower() == name and s == "accepted" and pub for w, s, pub in badges_after)
    }
    expected = {item_id(f"{name}-id") for name in qualifying}
    assert set(graph) == expected  # items of users who stopped qualifying are gone
    again = plan(users=users(after), badges=badges(badges_after), items=dict(items))
    assert all(op.action is Action.UNCHANGED for op in again.ops)


def test_the_body_of_a_write_is_built_where_it_is_written() -> None:
    b = badge("1", "ada@c.com")
    (op,) = [o for o in plan(badges=[b]).ops if o.user_id == ADA.id]
    assert op.action is Action.CREATE and op.body is None  # the plan holds no body
    assert op.payload() == item_body(ADA, [b], "t")


class _Streamed:
    """Records as the state hands them over: in user id order, one pass only."""

    def __init__(self, records: list[ItemRecord]) -> None:
        self.records = sorted(records, key=lambda r: r.user_id)
        self.passes = 0

    def items_by_user(self) -> Iterator[ItemRecord]:
        self.passes += 1
        yield from self.records


def test_streamed_records_meet_their_users_and_the_rest_are_users_gone() -> None:
    b = badge("1", "ada@c.com")
    gone_before = record("00000000-0000-0000-0000-000000000000", "h")
    gone_between = record("bbbbbbbb-0000-0000-0000-000000000001", "h")
    gone_after = record("ffffffff-0000-0000-0000-000000000009", "h")
    source = _Streamed(
        [gone_after, record(ADA.id, "old"), gone_between, record(BOB.id, "h"), gone_before]
    )
    p = plan(badges=[b], items=source)
    assert source.passes == 1
    assert by_user(p) == {
        ADA.id: (Action.UPDATE, Reason.CONTENT_CHANGED),
        BOB.id: (Action.DELETE, Reason.USER_DISABLED),
        gone_before.user_id: (Action.DELETE, Reason.USER_DELETED),
        gone_between.user_id: (Action.DELETE, Reason.USER_DELETED),
        gone_after.user_id: (Action.DELETE, Reason.USER_DELETED),
    }
    # The same plan as from a mapping, and --user still limits it.
    as_map = {r.item_id: r for r in source.records}
    assert by_user(plan(badges=[b], items=as_map)) == by_user(p)
    only = plan(badges=[b], items=_Streamed(source.records), only_user_ids=frozenset({ADA.id}))
    assert by_user(only) == {ADA.id: (Action.UPDATE, Reason.CONTENT_CHANGED)}
