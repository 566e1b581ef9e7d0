"""Every badge a crawl read, on disk instead of in memory (issue 12, goal 4).

A user's item depends on all of their badges, which may be on any Credly page, so a crawl
must keep what it read until the last page is in. Kept as `Badge` objects that grows with the
organization (about 1 KB per badge: 500 MB for 500,000 badges); kept here it costs a bounded
page cache. The spool is SQLite's private temporary database (file name ""): the library
picks the platform's temporary folder and deletes the file when the connection closes, so a
killed crawl leaves nothing that a later crawl reads.

Pages are added as they arrive, before the directory is read (matching needs the directory,
the badge's own checks and its item entry do not); `assign` then matches each distinct
recipient address once. Everything a plan needs afterwards is a query: counts per skip
reason, each user's entries in item order, the observations the state records and the badges
that reached nobody.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from credly_connector.credly.models import Badge, parse_datetime
from credly_connector.identity.addresses import normalize_email
from credly_connector.identity.eligibility import BadgeSkip, badge_skip_reasons
from credly_connector.identity.entities import BadgeEntry, badge_entry
from credly_connector.sync.records import BadgeDetail, BadgeObservation

# SQLite's page cache for the spool, in KiB (negative cache_size): what the spool may hold in
# memory before it works from its file. 20,000 users / 80,000 badges (about 40 MB) mostly fit.
CACHE_KIB = 32 * 1024

_SCHEMA = (
    # One row per badge id: a badge read twice (pages shift while badges are issued) is kept
    # once, the copy read last.
    """CREATE TABLE badges (
        id TEXT PRIMARY KEY,
        email TEXT,               -- the recipient address, normalized; NULL when absent
        skip TEXT,                -- the first badge-level skip reason; NULL when indexable
        state TEXT NOT NULL,
        public INTEGER NOT NULL,
        recipient_email TEXT,
        issued_to TEXT,
        first_name TEXT,
        last_name TEXT,
        sort_key TEXT,            -- the item entry (NULL unless indexable), see BadgeEntry
        certification INTEGER,
        text TEXT,
        expires_at TEXT           -- ISO text, kept so the state can check expiry again later
    )""",
    "CREATE INDEX badges_by_email ON badges (email)",
    # Filled by `assign`: who each address reaches and why its badges are not indexed.
    """CREATE TABLE addresses (
        email TEXT PRIMARY KEY,
        user_id TEXT,
        skip TEXT
    )""",
    "CREATE INDEX addresses_by_user ON addresses (user_id)",
)

_INSERT = "INSERT OR REPLACE INTO badges VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

# (user id or None, skip reason or None) for one normalized recipient address.
AddressVerdict = tuple[str | None, str | None]

NO_ID = "#"  # prefix of the spool key of a badge Credly sent without an id


class BadgeSpool:
    def __init__(self, cache_kib: int = CACHE_KIB) -> None:
        # Writer threads build item bodies from the spool while the main thread plans.
        self._conn = sqlite3.connect("", check_same_thread=False)
        self._lock = threading.Lock()
        self._conn.execute(f"PRAGMA cache_size = -{cache_kib}")
        self._conn.execute("PRAGMA journal_mode = OFF")  # scratch data: nothing to roll back
        self._conn.execute("PRAGMA synchronous = OFF")
        for statement in _SCHEMA:
            self._conn.execute(statement)
        self.added = 0  # badge rows added (a badge read twice counts twice)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> BadgeSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- filling --------------------------------------------------------------------------

    def add(self, badges: Iterable[Badge], now: datetime) -> None:
        """One page (or any number) of badges, with their own checks and item entries."""
        rows = [_row(badge, now, self.added + n) for n, badge in enumerate(badges)]
        with self._lock, self._conn:
            self._conn.executemany(_INSERT, rows)
        self.added += len(rows)

    def add_known(self, badges: Iterable[BadgeObservation], now: datetime) -> None:
        """Badges as an earlier crawl recorded them (with their detail), expiry checked again.

        An incremental crawl that reads only the changed badges takes the others of the
        people concerned from the state; a changed badge added afterwards replaces its copy.
        """
        rows = [_known_row(b, now) for b in badges if b.detail is not None]
        with self._lock, self._conn:
            self._conn.executemany(_INSERT, rows)
        self.added += len(rows)

    def add_indexed_from(self, state_file: Path, now: datetime) -> None:
        """Every badge an item was built from when the state in `state_file` last recorded
        it, expiry checked again (sync/head_start.py).

        Copied by SQLite itself: the head start runs while Credly pages are parsed, and
        500,000 badges turned into Python objects on the way would take that thread's time.
        The columns are the state's badge details (state.py, schema 4); expiry is compared
        as UTC ISO text, as `SyncState.expired_since` does.
        """
        expired = "d_expires_at IS NOT NULL AND d_expires_at <= :now"
        with self._lock:
            self._conn.execute("ATTACH DATABASE ? AS known", (str(state_file),))
            try:
                with self._conn:
                    self._conn.execute(
                        "INSERT OR REPLACE INTO badges SELECT id, d_email, "
                        f"CASE WHEN {expired} THEN :expired END, state, public, "
                        "recipient_email, d_issued_to, d_first_name, d_last_name, "
                        f"CASE WHEN {expired} THEN NULL ELSE d_sort_key END, "
                        f"CASE WHEN {expired} THEN NULL ELSE d_certification END, "
                        f"CASE WHEN {expired} THEN NULL ELSE d_entry END, d_expires_at "
                        "FROM known.badges WHERE d_badge_skip IS NULL AND d_entry IS NOT NULL",
                        {"now": now.astimezone(UTC).isoformat(), "expired": BadgeSkip.EXPIRED},
                    )
            finally:
                self._conn.execute("DETACH DATABASE known")
            self.added = int(self._conn.execute("SELECT COUNT(*) FROM badges").fetchone()[0])

    def assign(self, verdict: Callable[[str], AddressVerdict]) -> None:
        """Match each distinct recipient address once: `verdict(address)`."""
        with self._lock:
            emails = [
                str(row[0])
                for row in self._conn.execute(
                    "SELECT DISTINCT email FROM badges WHERE email IS NOT NULL"
                )
            ]
            with self._conn:
                self._conn.execute("DELETE FROM addresses")
                self._conn.executemany(
                    "INSERT INTO addresses VALUES (?, ?, ?)",
                    ((email, *verdict(email)) for email in emails),
                )

    # ---- reading --------------------------------------------------------------------------

    def count(self) -> int:
        """Distinct badges read."""
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM badges").fetchone()[0])

    def skip_counts(self) -> dict[str | None, int]:
        """Badges per reason they are not indexed (None: indexed), each badge counted once."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT COALESCE(b.skip, a.skip) AS reason, COUNT(*) FROM badges b "
                "LEFT JOIN addresses a ON a.email = b.email GROUP BY reason"
            ).fetchall()
        return {row[0]: int(row[1]) for row in rows}

    def ids(self) -> Iterator[str]:
        """Every badge id read, in ascending order (no-id badges left out)."""
        for row in self._fetch("SELECT id FROM badges ORDER BY id"):
            if not str(row[0]).startswith(NO_ID):
                yield str(row[0])

    def entries_by_user(self) -> Iterator[tuple[str, list[BadgeEntry]]]:
        """(user id, entries in item order) for every user with an indexed badge, by user id.

        The addresses are walked in user id order (their index) and each one's badges found
        by theirs (CROSS JOIN keeps that order), so SQLite sorts one user's badges at a time
        instead of every indexed badge with its text: measured at 100,000 users / 500,000
        badges, a peak 15 MB lower for 0.3 s more planning."""
        query = (
            "SELECT a.user_id, b.sort_key, b.id, b.certification, b.text FROM addresses a "
            "CROSS JOIN badges b ON a.email = b.email "
            "WHERE b.skip IS NULL AND a.skip IS NULL AND a.user_id IS NOT NULL "
            "ORDER BY a.user_id, b.sort_key, b.id"
        )
        current: str | None = None
        entries: list[BadgeEntry] = []
        for row in self._fetch(query):
            if row[0] != current:
                if current is not None:
                    yield current, entries
                current, entries = str(row[0]), []
            entries.append(BadgeEntry(str(row[1]), str(row[2]), bool(row[3]), str(row[4])))
        if current is not None:
            yield current, entries

    def entries_for(self, user_id: str) -> list[BadgeEntry]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT b.sort_key, b.id, b.certification, b.text FROM badges b "
                "JOIN addresses a ON a.email = b.email "
                "WHERE a.user_id = ? AND b.skip IS NULL AND a.skip IS NULL "
                "ORDER BY b.sort_key, b.id",
                (user_id,),
            ).fetchall()
        return [BadgeEntry(r[0], r[1], bool(r[2]), r[3]) for r in rows]

    def entries_for_addresses(self, emails: Sequence[str]) -> list[BadgeEntry]:
        """The item entries of the indexable badges sent to these normalized addresses, in
        item order: a user's entries before `assign` (sync/streamed.py), when `emails` are
        the addresses whose badges reach that user."""
        marks = ", ".join("?" * len(emails))
        with self._lock:
            rows = self._conn.execute(
                "SELECT sort_key, id, certification, text FROM badges "
                f"WHERE email IN ({marks}) AND skip IS NULL ORDER BY sort_key, id",
                tuple(emails),
            ).fetchall()
        return [BadgeEntry(r[0], r[1], bool(r[2]), r[3]) for r in rows]

    def observations(self) -> Iterator[BadgeObservation]:
        """Each badge as this crawl saw it, for the state's badge records."""
        query = (
            "SELECT b.id, b.state, b.public, b.recipient_email, a.user_id, "
            "COALESCE(b.skip, a.skip), b.email, b.skip, b.expires_at, b.sort_key, "
            "b.certification, b.text, b.issued_to, b.first_name, b.last_name "
            "FROM badges b LEFT JOIN addresses a ON a.email = b.email"
        )
        for row in self._fetch(query):
            badge_id = str(row[0])
            t = [_text(value) for value in row]
            detail = BadgeDetail(
                t[6], t[7], t[8], t[9], None if row[10] is None else bool(row[10]), *t[11:15]
            )
            yield BadgeObservation(
                "" if badge_id.startswith(NO_ID) else badge_id,
                str(row[1]),
                bool(row[2]),
                t[3],
                t[4],
                t[5],
                detail,
            )

    def reached_nobody(self) -> Iterator[tuple[str, str, str | None, str | None, str | None]]:
        """(id, recipient address, name, first name, last name) of each badge with an
        address that reached no user."""
        query = (
            "SELECT b.id, b.recipient_email, b.issued_to, b.first_name, b.last_name "
            "FROM badges b LEFT JOIN addresses a ON a.email = b.email "
            "WHERE b.recipient_email IS NOT NULL AND a.user_id IS NULL"
        )
        for row in self._fetch(query):
            badge_id = str(row[0])
            yield (
                "" if badge_id.startswith(NO_ID) else badge_id,
                str(row[1]),
                _text(row[2]),
                _text(row[3]),
                _text(row[4]),
            )

    def _fetch(self, query: str) -> Iterator[tuple[object, ...]]:
        # In chunks, so a large result never sits in memory and the lock is released between.
        with self._lock:
            cursor = self._conn.execute(query)
        while True:
            with self._lock:
                rows = cursor.fetchmany(1000)
            if not rows:
                return
            yield from rows


def _row(badge: Badge, now: datetime, number: int) -> tuple[object, ...]:
    skips = badge_skip_reasons(badge, now)
    entry = badge_entry(badge) if not skips else None
    email = badge.recipient_email
    return (
        # A badge without an id (malformed) is still counted, under a key no id can take.
        badge.id or f"{NO_ID}{number}",
        normalize_email(email) if email and email.strip() else None,
        str(skips[0]) if skips else None,
        badge.state,
        int(badge.public),
        email,
        badge.issued_to,
        badge.issued_to_first_name,
        badge.issued_to_last_name,
        entry.sort_key if entry else None,
        int(entry.certification) if entry else None,
        entry.text if entry else None,
        # In UTC, so the state can compare expiry dates as text.
        badge.expires_at.astimezone(UTC).isoformat() if badge.expires_at else None,
    )


def _known_row(badge: BadgeObservation, now: datetime) -> tuple[object, ...]:
    d = badge.detail
    assert d is not None
    skip = d.badge_skip
    # Time moved on since the badge was read: expiry comes before a missing address in the
    # rules' order, after the state and visibility reasons.
    expires = parse_datetime(d.expires_at)
    if expires is not None and expires <= now and skip in (None, BadgeSkip.NO_RECIPIENT_EMAIL):
        skip = str(BadgeSkip.EXPIRED)
    indexable = skip is None and d.entry is not None
    return (
        badge.id,
        d.email,
        skip,
        badge.state,
        int(badge.public),
        badge.recipient_email,
        d.issued_to,
        d.first_name,
        d.last_name,
        d.sort_key if indexable else None,
        int(bool(d.certification)) if indexable else None,
        d.entry if indexable else None,
        d.expires_at,
    )


def _text(value: object) -> str | None:
    return None if value is None else str(value)
