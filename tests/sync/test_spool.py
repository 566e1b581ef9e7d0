"""The crawl's badge spool: one row per badge, matching per address, queries in item order."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from credly_connector.identity.entities import badge_entry, item_body, item_body_from_entries
from credly_connector.sync.spool import BadgeSpool
from tests.identity.factories import NOW, badge, user

ADA = user("aaaaaaaa-0000-0000-0000-000000000001", "ada@c.com", smtp="ada.l@c.com")


def _verdict(email: str) -> tuple[str | None, str | None]:
    if email in ("ada@c.com", "ada.l@c.com"):
        return ADA.id, None
    return None, "badge_no_matching_user"


def test_a_badge_read_twice_is_kept_once_as_last_read() -> None:
    with BadgeSpool() as spool:
        spool.add([badge("b1", "ada@c.com", public=False)], NOW)
        spool.add([badge("b1", "ada@c.com"), badge("b2", "ADA.L@c.com ")], NOW)
        spool.assign(_verdict)
        assert spool.count() == 2
        assert spool.skip_counts() == {None: 2}
        assert [e.badge_id for e in spool.entries_for(ADA.id)] == ["b1", "b2"]


def test_badges_without_an_id_are_each_counted_and_recorded_without_one() -> None:
    with BadgeSpool() as spool:
        spool.add([badge("", "x@c.com"), badge("", "x@c.com")], NOW)
        spool.assign(_verdict)
        assert spool.count() == 2
        assert [o.id for o in spool.observations()] == ["", ""]
        assert [row[0] for row in spool.reached_nobody()] == ["", ""]


def test_the_badge_own_reason_comes_before_the_address_reason() -> None:
    with BadgeSpool() as spool:
        spool.add(
            [
                badge("p", "nobody@c.com", state="pending"),
                badge("n", "nobody@c.com"),
                badge("none", None),
            ],
            NOW,
        )
        spool.assign(_verdict)
        assert spool.skip_counts() == {
            "badge_pending": 1,
            "badge_no_matching_user": 1,
            "badge_no_recipient_email": 1,
        }
        seen = {o.id: (o.user_id, o.skip_reason) for o in spool.observations()}
        assert seen == {
            "p": (None, "badge_pending"),
            "n": (None, "badge_no_matching_user"),
            "none": (None, "badge_no_recipient_email"),
        }
        # Only badges with an address can be near misses of somebody.
        assert sorted(row[0] for row in spool.reached_nobody()) == ["n", "p"]


def test_entries_come_back_in_item_order_and_build_the_same_body() -> None:
    badges = [
        badge("b3", "ada@c.com", issued_at="2026-03-01"),
        badge(
            "b1", "ada@c.com", issued_at="2026-02-01", template={"type_category": "Certification"}
        ),
        badge("b2", "ada.l@c.com", issued_at="2026-02-01"),
    ]
    with BadgeSpool() as spool:
        spool.add(badges, NOW)
        spool.assign(_verdict)
        entries = spool.entries_for(ADA.id)
        assert entries == sorted(badge_entry(b) for b in badges)
        assert [(uid, len(e)) for uid, e in spool.entries_by_user()] == [(ADA.id, 3)]
        assert item_body_from_entries(ADA, entries, "t") == item_body(ADA, badges, "t")


_MEASURE = """
import gc, sys, tracemalloc
from credly_connector.sync.spool import BadgeSpool
from tests.identity.factories import NOW, badge
tracemalloc.start()
with BadgeSpool() as spool:
    for page in range(400):
        # One template, as in a real organization (template names are interned).
        spool.add(
            [badge(f"{page}-{n}", f"u{page}.{n}@c.com", template={"name": "Cloud"})
             for n in range(50)],
            NOW,
        )
    gc.collect()
    assert spool.count() == 20_000
    print(tracemalloc.get_traced_memory()[0])
"""


def test_the_spool_holds_badges_outside_python_memory() -> None:
    # 20,000 badges: their Python objects are gone once added; what stays is SQLite's page
    # cache (bounded by CACHE_KIB, outside Python's allocator), not a list growing with the
    # organization. Measured in a process of its own, so no other test's memory counts.
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE], capture_output=True, text=True, cwd=root, check=True
    )
    # Kept as Badge objects, 20,000 badges would hold about 16 MB (some 800 bytes each).
    assert int(done.stdout) < 2_000_000
