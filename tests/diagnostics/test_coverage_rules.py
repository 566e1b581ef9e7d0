"""coverage follows the shared rules: mailboxes or "could not tell", item content, near users."""

from __future__ import annotations

import random
import string
from dataclasses import replace
from datetime import timedelta

from credly_connector.diagnostics.coverage import _ClosestIndex, build_report
from credly_connector.graph.models import DirectoryUser
from credly_connector.identity.addresses import normalize_email, primary_smtp
from credly_connector.identity.entities import input_digest
from credly_connector.identity.near_miss import edit_distance
from credly_connector.identity.outcome import Mailbox, mailbox_from_plans
from tests.diagnostics.test_coverage import NOW, _badge, _item, _user

TENANT = "11111111-2222-3333-4444-555555555555"


def test_a_user_without_mailbox_is_not_counted_as_synced() -> None:
    ann = _user("ann@contoso.com")
    report = build_report(
        org_id="o",
        badges=[_badge("1", "ann@contoso.com")],
        users=[ann],
        items={"a": _item(ann, NOW)},
        now=NOW,
        mailboxes={ann.id: mailbox_from_plans(ann, [])},
    )
    assert report.causes == {"user_no_mailbox": 1}
    assert report.funnel["synced"] == 0 and report.funnel["user_has_mailbox"] == 0
    assert report.people[0].verdict == "not_visible"


def test_unreadable_plans_say_could_not_tell_never_has_a_mailbox() -> None:
    ann = _user("ann@contoso.com")
    unread = mailbox_from_plans(ann, None, error="GraphPermissionError")
    assert unread.present is None and "could not be read" in unread.how
    for mailboxes in ({ann.id: unread}, {}, None):
        report = build_report(
            org_id="o",
            badges=[_badge("1", "ann@contoso.com")],
            users=[ann],
            items={"a": _item(ann, NOW)},
            now=NOW,
            mailboxes=mailboxes,
        )
        assert report.causes == {"user_mailbox_unknown": 1}
        assert report.funnel["user_has_mailbox"] == 0
        assert report.people[0].verdict == "could_not_tell"
        assert report.to_dict()["mailbox_check"]["status"] == "could_not_tell"


def test_mailbox_rule_reads_an_enabled_exchange_plan() -> None:
    ann = _user("ann@contoso.com")
    plan = {"service": "exchange", "capabilityStatus": "Enabled"}
    assert mailbox_from_plans(ann, [plan]).present is True
    assert mailbox_from_plans(ann, [{**plan, "capabilityStatus": "Deleted"}]).present is False
    nomail = DirectoryUser(id="x", user_principal_name="x@contoso.com")
    assert mailbox_from_plans(nomail, [plan]).present is False  # no mail, no mailbox


def test_a_content_neutral_badge_update_stays_synced() -> None:
    """L4: updated_at bumped after the last write, same item content: not `not_synced_yet`."""
    ann = _user("ann@contoso.com")
    written = NOW - timedelta(days=1)
    bumped = _badge("1", "ann@contoso.com", updated_at="2026-11-28T11:00:00Z")
    digest = input_digest(ann, [bumped], TENANT)
    record = replace(_item(ann, written), hash=digest)
    mailboxes = {ann.id: Mailbox(True, "test")}
    report = build_report(
        org_id="o",
        badges=[bumped],
        users=[ann],
        items={"a": record},
        now=NOW,
        mailboxes=mailboxes,
        tenant_id=TENANT,
    )
    assert report.causes == {} and report.stale == []
    # A real change (another name) is not synced until the next write.
    changed = _badge(
        "1",
        "ann@contoso.com",
        updated_at="2026-11-28T11:00:00Z",
        badge_template={"name": "Renamed"},
    )
    report = build_report(
        org_id="o",
        badges=[changed],
        users=[ann],
        items={"a": record},
        now=NOW,
        mailboxes=mailboxes,
        tenant_id=TENANT,
    )
    assert report.causes == {"not_synced_yet": 1}
    assert [s.reason for s in report.stale] == ["badge changed after the last write"]


def _brute_force(email: str, users: list[DirectoryUser]) -> str | None:
    best: tuple[int, int, str] | None = None
    for order, user in enumerate(users):
        for address in sorted({user.user_principal_name, primary_smtp(user) or ""} - {""}):
            distance = edit_distance(email, normalize_email(address), limit=2)
            if distance <= 2 and (best is None or (distance, order) < best[:2]):
                best = (distance, order, user.user_principal_name)
    return best[2] if best else None


def test_indexed_closest_user_equals_comparing_every_user() -> None:
    rng = random.Random(7)
    letters = string.ascii_lowercase
    users = [
        _user(f"{''.join(rng.choices(letters, k=rng.randint(3, 9)))}{i % 7}@contoso.com")
        for i in range(400)
    ]
    index = _ClosestIndex(users)
    for _ in range(400):
        base = rng.choice(users).user_principal_name
        chars = list(base)
        for _ in range(rng.randint(0, 3)):
            at = rng.randrange(len(chars))
            if chars[at] == "@":
                continue  # an address keeps its @ (a recipient email always has one)
            op = rng.choice("sid")
            if op == "s":
                chars[at] = rng.choice(letters)
            elif op == "i":
                chars.insert(at, rng.choice(letters))
            elif len(chars) > 1:
                del chars[at]
        email = "".join(chars)
        found = index.find(email, 1, None)
        if found.reason == "close spelling" or found.reason is None:
            assert found.suggestion == _brute_force(email, users), email
