"""What credlyctl remembers about one instance: an SQLite database in the state folder.

Crash safety (kill -9 at any moment) rests on one write protocol, see docs/sync.md:

* Before a batch of item writes is sent, the rows of those items are marked in one
  transaction: the hash is cleared (the content in Graph is now unknown) and the intent
  recorded; a row is created for an item that did not exist yet.
* After the batch answers, one transaction records each confirmed write (new hash) or
  deletion (row removed); failed entries keep the cleared hash.

So a row exists for every item that may exist in Graph (no deletion can be lost), and a row
whose hash is empty is rewritten by the next run. The user snapshot and the delta link are
saved only when a crawl has finished reading and writing, so an interrupted run reads the
same changes again.

Never stores a secret: only ids, addresses, hashes, counts and error messages.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from credly_connector.errors import UsageError
from credly_connector.localfiles import LocalFileError, ensure_folder, refuse_special_file
from credly_connector.secrets import scrub
from credly_connector.sync.records import BadgeDetail, BadgeObservation, ItemRecord

SCHEMA_VERSION = 4


def utcnow() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="microseconds") if value else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


# Each step moves the schema one version forward; a database is never migrated backwards.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE crawls (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            outcome TEXT NOT NULL,
            counts TEXT NOT NULL DEFAULT '{}',
            errors TEXT NOT NULL DEFAULT '[]'
        )""",
        """CREATE TABLE items (
            item_id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            upn TEXT,
            hash TEXT,
            intent TEXT,
            last_write TEXT,
            last_error TEXT
        )""",
        """CREATE TABLE badges (
            id TEXT PRIMARY KEY,
            state TEXT NOT NULL,
            public INTEGER NOT NULL,
            recipient_email TEXT,
            user_id TEXT,
            skip_reason TEXT,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            first_indexed TEXT
        )""",
        "CREATE INDEX badges_by_email ON badges (recipient_email)",
        "CREATE TABLE users (id TEXT PRIMARY KEY, data TEXT NOT NULL)",
        "CREATE TABLE delta (name TEXT PRIMARY KEY, link TEXT NOT NULL, saved_at TEXT NOT NULL)",
    ),
    2: (
        "ALTER TABLE items ADD COLUMN written_crawl INTEGER",
        "CREATE INDEX items_by_user ON items (user_id)",
    ),
    # Badges that reached no user, as the last crawl that read every badge saw them: what
    # diagnosis needs to find a person's near-miss badges without reading Credly again.
    3: (
        """CREATE TABLE unmatched_badges (
            badge_id TEXT PRIMARY KEY,
            address TEXT NOT NULL,
            name TEXT,
            first_name TEXT,
            last_name TEXT
        )""",
    ),
    # What rebuilding an item needs, per badge (records.BadgeDetail), so an incremental crawl
    # can read only the badges Credly changed and take the others from here. NULL in rows
    # recorded before: the next crawl that reads every badge fills them.
    4: (
        *(
            f"ALTER TABLE badges ADD COLUMN {column}"
            for column in (
                "d_email TEXT",
                "d_badge_skip TEXT",
                "d_expires_at TEXT",
                "d_sort_key TEXT",
                "d_certification INTEGER",
                "d_entry TEXT",
                "d_issued_to TEXT",
                "d_first_name TEXT",
                "d_last_name TEXT",
            )
        ),
        "CREATE INDEX badges_by_address ON badges (d_email)",
    ),
}


@dataclass(frozen=True)
class CrawlRecord:
    id: int
    kind: str  # "full" | "incremental"
    started_at: datetime
    ended_at: datetime | None
    outcome: str  # running | succeeded | partial | deletes_held | failed | interrupted
    counts: dict[str, Any]
    errors: list[dict[str, Any]]

    @property
    def successful(self) -> bool:
        return self.outcome == "succeeded"

    @property
    def duration_seconds(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "duration_seconds": self.duration_seconds,
            "outcome": self.outcome,
            "counts": self.counts,
            "errors": self.errors,
        }


@dataclass(frozen=True)
class BadgeRecord:
    id: str
    state: str
    public: bool
    recipient_email: str | None
    user_id: str | None
    skip_reason: str | None  # None when indexed at the last crawl
    first_seen: datetime
    last_seen: datetime
    first_indexed: datetime | None


@dataclass(frozen=True)
class UnmatchedBadgeRecord:
    """A badge whose recipient matched no user: its id, address and the name on it."""

    badge_id: str
    address: str
    name: str | None
    first_name: str | None
    last_name: str | None


# What a crawl left `running` by a process that died says, wherever it is read.
DIED = {
    "id": "interrupted",
    "message": "The process running this crawl stopped before the crawl completed (killed, "
    "crashed, or the machine restarted).",
    "hint": "Run `credlyctl sync` again; it resumes where that crawl stopped.",
}


def state_path(state_dir: Path, instance: str) -> Path:
    return state_dir / f"{instance}.sqlite3"


def lock_path(state_dir: Path, instance: str) -> Path:
    return state_dir / f"{instance}.lock"


# A sync that finds the lock taken waits this long before it refuses: `status` probes the lock
# by taking it for an instant, which must never make a real sync fail.
LOCK_WAIT_SECONDS = 1.0


class SyncLock:
    """An OS file lock per instance (filelock: flock on POSIX, msvcrt on Windows).

    The kernel releases it when the holder dies, so a killed sync never leaves a stale lock.
    The holder's process id goes to a separate file, for the message a second sync prints.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock: FileLock | None = None

    @property
    def _owner_path(self) -> Path:
        return self.path.with_name(self.path.name + ".pid")

    def acquire(self, instance: str, wait_seconds: float = LOCK_WAIT_SECONDS) -> None:
        ensure_folder(self.path.parent, "state folder")
        refuse_special_file(self.path, "lock file")
        lock = FileLock(self.path, timeout=wait_seconds)
        try:
            lock.acquire(poll_interval=0.02)
        except Timeout:
            holder = self._read_owner()
            pid = f" (process {holder})" if holder.isdigit() else ""
            raise UsageError(
                f"Another sync of instance '{instance}' is running{pid}.",
                "Wait for it to finish (see `credlyctl status`); a second sync of the same "
                "instance at the same time is refused.",
                error_id="sync_locked",
            ) from None
        except OSError as exc:
            raise LocalFileError.from_os_error(exc, self.path, "lock file") from None
        self._lock = lock
        # Without it, only the message of a refused second sync loses the process id.
        with contextlib.suppress(OSError):
            self._owner_path.write_text(str(os.getpid()), encoding="ascii")

    def _read_owner(self) -> str:
        try:
            return self._owner_path.read_text(encoding="ascii", errors="replace").strip()[:16]
        except OSError:
            return ""

    def held_elsewhere(self) -> bool:
        """True when another process holds the lock right now.

        Probing takes the lock for an instant; a sync starting at that moment waits
        (`LOCK_WAIT_SECONDS`) instead of failing. An unusable lock path counts as not held.
        """
        if not self.path.is_file():
            return False
        probe = FileLock(self.path, timeout=0)
        try:
            probe.acquire()
        except Timeout:
            return True
        except OSError:
            return False
        probe.release()
        return False

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


class StateStoreError(LocalFileError):
    """The state database cannot be read or written: full disk, permissions or corruption."""

    @classmethod
    def from_sqlite(cls, exc: sqlite3.Error, path: Path) -> StateStoreError:
        text = str(exc)
        lowered = text.lower()
        if "full" in lowered:
            return cls(
                f"The state database {path} cannot be written: the disk is full ({text}).",
                "Free disk space and run the command again; the next sync resumes where this "
                "one stopped (nothing already confirmed is lost).",
                error_id="disk_full",
            )
        if "readonly" in lowered or "read-only" in lowered or "unable to open" in lowered:
            return cls(
                f"The state database {path} cannot be written ({text}).",
                f"Give the account that runs credlyctl write access to {path} and its folder "
                "(the database keeps -wal and -shm files next to it).",
                error_id="state_not_writable",
            )
        if "locked" in lowered or "busy" in lowered:
            return cls(
                f"The state database {path} is busy ({text}).",
                "Another program holds it open (a backup or a database browser?): close it "
                "and run the command again.",
                error_id="state_busy",
            )
        return cls(
            f"The state database {path} is damaged ({text}).",
            "Move it aside (keep it for a support request); the next full crawl rebuilds it "
            "(see docs/sync.md, missing state).",
            error_id="state_unreadable",
        )


class SyncState:
    """The state database of one instance. Open with `open_state` or `open_readonly`.

    `locked`: this process holds the sync lock, so a crawl marked `running` that it did not
    begin belongs to a process that died. Without the lock, a `running` crawl is believed only
    while another process holds the lock. Otherwise it reads as `interrupted`, everywhere.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, *, locked: bool = False) -> None:
        self._conn = conn
        self.path = path
        self._locked = locked
        self._own_crawl: int | None = None  # the crawl this process began

    # ---- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._conn:
                yield self._conn
        except sqlite3.Error as exc:
            raise StateStoreError.from_sqlite(exc, self.path) from None

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        try:
            return list(self._conn.execute(sql, tuple(params)))
        except sqlite3.Error as exc:
            raise StateStoreError.from_sqlite(exc, self.path) from None

    def _row(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    @property
    def schema_version(self) -> int:
        row = self._row("PRAGMA user_version")
        return int(row[0]) if row else 0

    def get_meta(self, key: str) -> str | None:
        row = self._row("SELECT value FROM meta WHERE key = ?", (key,))
        return str(row[0]) if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as tx:
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    @property
    def is_new(self) -> bool:
        """True until a full crawl has reached its end with this state.

        While true, full crawls run the missing-state clean-up (docs/sync.md). Only the end of
        a full crawl clears it, never its first write: a crawl killed halfway through the
        clean-up leaves it pending, and the next full crawl plans it again.
        """
        return self.get_meta("first_write") is None

    # ---- crawls ----------------------------------------------------------------------------

    def begin_crawl(self, kind: str, now: datetime | None = None) -> int:
        with self._tx() as tx:
            # A crawl still "running" here belongs to a process that died: the lock is ours.
            tx.execute(
                "UPDATE crawls SET outcome = 'interrupted', errors = ? WHERE outcome = 'running'",
                (json.dumps([DIED]),),
            )
            cursor = tx.execute(
                "INSERT INTO crawls (kind, started_at, outcome) VALUES (?, ?, 'running')",
                (kind, _iso(now or utcnow())),
            )
            self._own_crawl = int(cursor.lastrowid or 0)
            return self._own_crawl

    def finish_crawl(
        self,
        crawl_id: int,
        outcome: str,
        counts: dict[str, Any],
        errors: list[dict[str, Any]],
        *,
        users: Iterable[tuple[str, dict[str, Any]]] | None = None,
        delta_link: str | None = None,
        now: datetime | None = None,
        users_removed: Iterable[str] | None = None,
    ) -> None:
        """Close a crawl; with `users`, replace the user snapshot and the delta link atomically.

        With `users_removed` too (an incremental crawl that applied /users/delta), `users` are
        only the changed entries and the rest of the snapshot is kept: the cost follows the
        change, not the directory.
        """
        with self._tx() as tx:
            if users is not None:
                if users_removed is None:
                    tx.execute("DELETE FROM users")
                else:
                    tx.executemany("DELETE FROM users WHERE id = ?", ((i,) for i in users_removed))
                tx.executemany(
                    "INSERT OR REPLACE INTO users (id, data) VALUES (?, ?)",
                    ((uid, json.dumps(data, separators=(",", ":"))) for uid, data in users),
                )
                if delta_link:
                    tx.execute(
                        "INSERT INTO delta (name, link, saved_at) VALUES ('users', ?, ?) "
                        "ON CONFLICT(name) DO UPDATE SET link = excluded.link, "
                        "saved_at = excluded.saved_at",
                        (delta_link, _iso(now or utcnow())),
                    )
                else:
                    tx.execute("DELETE FROM delta WHERE name = 'users'")
            kind = tx.execute("SELECT kind FROM crawls WHERE id = ?", (crawl_id,)).fetchone()
            if outcome in ("succeeded", "partial", "deletes_held") and kind and kind[0] == "full":
                # A full crawl that reached the end is a baseline even if it wrote nothing: no
                # later crawl needs the missing-state clean-up (held clean-ups have rows, see
                # `hold_deletes`). Incremental and --user crawls never see every user.
                tx.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('first_write', ?)",
                    (_iso(now or utcnow()),),
                )
            tx.execute(
                "UPDATE crawls SET ended_at = ?, outcome = ?, counts = ?, errors = ? WHERE id = ?",
                (
                    _iso(now or utcnow()),
                    outcome,
                    json.dumps(counts, sort_keys=True),
                    scrub(json.dumps(errors[:200], default=str)),
                    crawl_id,
                ),
            )

    def _sync_alive(self) -> bool:
        return SyncLock(lock_path(self.path.parent, self.path.stem)).held_elsewhere()

    def _as_read_now(self, row: sqlite3.Row) -> dict[str, Any]:
        """A `running` crawl whose process died (the lock is free) reads as `interrupted`."""
        if row["outcome"] != "running" or row["id"] == self._own_crawl:
            return dict(zip(row.keys(), row, strict=True))
        if not self._locked and self._sync_alive():
            return dict(zip(row.keys(), row, strict=True))
        # The lock was free: the crawl either died or finished since we read it (a sync
        # writes its outcome before it releases the lock). Read it again to tell which.
        again = self._row("SELECT * FROM crawls WHERE id = ?", (row["id"],)) or row
        fields = dict(zip(again.keys(), again, strict=True))
        if fields["outcome"] == "running":
            fields["outcome"] = "interrupted"
            fields["errors"] = json.dumps([DIED])
        return fields

    def _crawl(self, found: sqlite3.Row) -> CrawlRecord:
        row = self._as_read_now(found)
        started = _parse(row["started_at"])
        assert started is not None
        return CrawlRecord(
            id=int(row["id"]),
            kind=str(row["kind"]),
            started_at=started,
            ended_at=_parse(row["ended_at"]),
            outcome=str(row["outcome"]),
            counts=json.loads(row["counts"]),
            errors=json.loads(row["errors"]),
        )

    def last_crawl(
        self, kind: str | None = None, successful: bool | None = None
    ) -> CrawlRecord | None:
        sql = "SELECT * FROM crawls WHERE 1 = 1"
        params: list[Any] = []
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        if successful is True:
            sql += " AND outcome = 'succeeded'"
        elif successful is False:
            sql += " AND outcome != 'succeeded'"
        row = self._row(sql + " ORDER BY id DESC LIMIT 1", params)
        return self._crawl(row) if row else None

    def crawl_history(self, n: int = 10) -> list[CrawlRecord]:
        rows = self._rows("SELECT * FROM crawls ORDER BY id DESC LIMIT ?", (n,))
        return [self._crawl(row) for row in rows]

    def full_cycle_start(self) -> datetime | None:
        """Start of the unfinished full crawls a new full crawl resumes, if the last ones were.

        A full crawl that held its deletions back rewrote every item, so the next full crawl
        continues its cycle too instead of rewriting everything again.
        """
        start: datetime | None = None
        for crawl in self.crawl_history(50):
            if crawl.kind != "full" or crawl.outcome not in (
                "interrupted",
                "running",
                "failed",
                "deletes_held",
            ):
                break
            start = crawl.started_at
        return start

    # ---- items -----------------------------------------------------------------------------

    def _item(self, row: sqlite3.Row) -> ItemRecord:
        return ItemRecord(
            item_id=str(row["item_id"]),
            user_id=str(row["user_id"]),
            upn=row["upn"],
            hash=row["hash"],
            intent=row["intent"],
            last_write=_parse(row["last_write"]),
            last_error=row["last_error"],
            written_crawl=row["written_crawl"],
        )

    def items(self) -> dict[str, ItemRecord]:
        return {r["item_id"]: self._item(r) for r in self._rows("SELECT * FROM items")}

    def item_count(self) -> int:
        row = self._row("SELECT COUNT(*) FROM items")
        return int(row[0]) if row else 0

    def items_by_user(self) -> Iterator[ItemRecord]:
        """Every item record in user id order, a few at a time (planner.ItemSource): the plan
        of a large organization never holds them all."""
        try:
            cursor = self._conn.execute("SELECT * FROM items ORDER BY user_id")
            while rows := cursor.fetchmany(1000):
                yield from map(self._item, rows)
        except sqlite3.Error as exc:
            raise StateStoreError.from_sqlite(exc, self.path) from None

    def unconfirmed_users(self) -> set[str]:
        """Users whose item may differ from what the state says (a write not confirmed)."""
        return {str(r[0]) for r in self._rows("SELECT user_id FROM items WHERE hash IS NULL")}

    def item_for_user(self, user_id: str) -> ItemRecord | None:
        row = self._row("SELECT * FROM items WHERE user_id = ?", (user_id,))
        return self._item(row) if row else None

    def mark_intents(self, ops: Iterable[tuple[str, str, str, str | None]]) -> None:
        """Before sending writes: (item_id, user_id, "put"|"delete", upn) -> hash unknown."""
        with self._tx() as tx:
            tx.executemany(
                "INSERT INTO items (item_id, user_id, upn, hash, intent) VALUES (?, ?, ?, NULL, ?) "
                "ON CONFLICT(item_id) DO UPDATE SET hash = NULL, intent = excluded.intent, "
                "upn = COALESCE(excluded.upn, items.upn)",
                ((item_id, user_id, upn, op) for item_id, user_id, op, upn in ops),
            )

    def hold_deletes(self, ops: Iterable[tuple[str, str, str | None]]) -> None:
        """Deletions held back by the guard: (item_id, user_id, upn).

        An item the state already knows keeps its row untouched, so the next crawl plans its
        deletion again. A missing-state clean-up has no row yet and the baseline this crawl
        sets ends the clean-up, so such an item gets a row whose content is unknown: the next
        crawl then deletes it (or rewrites it if the user qualifies again).
        """
        with self._tx() as tx:
            tx.executemany(
                "INSERT OR IGNORE INTO items (item_id, user_id, upn, hash, intent) "
                "VALUES (?, ?, ?, NULL, 'delete')",
                ((item_id, user_id, upn) for item_id, user_id, upn in ops),
            )

    def record_results(
        self,
        crawl_id: int,
        written: Iterable[tuple[str, str]],
        deleted: Iterable[str],
        failed: Iterable[tuple[str, str]],
        now: datetime | None = None,
    ) -> None:
        """After a batch: written (item_id, hash), deleted item_ids, failed (item_id, error)."""
        stamp = _iso(now or utcnow())
        with self._tx() as tx:
            tx.executemany(
                "UPDATE items SET hash = ?, intent = NULL, last_write = ?, last_error = NULL, "
                "written_crawl = ? WHERE item_id = ?",
                ((h, stamp, crawl_id, item_id) for item_id, h in written),
            )
            tx.executemany("DELETE FROM items WHERE item_id = ?", ((i,) for i in deleted))
            tx.executemany(
                "UPDATE items SET last_error = ? WHERE item_id = ?",
                ((scrub(error)[:500], item_id) for item_id, error in failed),
            )

    def connection_created(self) -> None:
        """Setup just created the connection: it holds no item, so nothing needs cleaning."""
        if self.is_new:
            self.set_meta("connection_created_empty", "1")

    def forget_connection(self) -> None:
        """Teardown deleted the connection: its items, delta link and snapshot are gone too,
        and no crawl may rely on the last one's view of the badges (`badges_read_at`)."""
        with self._tx() as tx:
            tx.execute("DELETE FROM items")
            tx.execute("DELETE FROM users")
            tx.execute("DELETE FROM delta")
            tx.execute(
                "DELETE FROM meta WHERE key IN "
                "('first_write', 'connection_created_empty', 'badges_read_at')"
            )

    # ---- badges ----------------------------------------------------------------------------

    def record_badges(self, seen: Iterable[BadgeObservation], now: datetime | None = None) -> None:
        """Record the badges a crawl saw, writing only those whose observation changed.

        A crawl reads every badge, but most are as the last crawl saw them: rewriting them
        all would make the cost of an incremental crawl follow the organization instead of
        the change (issue 12). So `last_seen` is when a badge was last seen *different*
        (first seen, or its state, visibility, address, user or skip reason changed).
        """
        stamp = _iso(now or utcnow())
        with self._tx() as tx:
            for chunk in _chunks(seen, _CHUNK):
                tx.executemany(_UPSERT_BADGE, self._changed_badges(tx, chunk, stamp))

    def _changed_badges(
        self, tx: sqlite3.Connection, chunk: list[BadgeObservation], stamp: str | None
    ) -> list[tuple[Any, ...]]:
        # A chunk at a time, never a copy of every row: a crawl may see 500,000 badges.
        marks = ", ".join("?" * len(chunk))
        known = {
            str(row[0]): tuple(row[1:])
            for row in tx.execute(
                f"SELECT id, {_OBSERVED} FROM badges WHERE id IN ({marks})",
                [b.id for b in chunk],
            )
        }
        changed: list[tuple[Any, ...]] = []
        for b in chunk:
            observed = _observed(b)
            if known.get(b.id) == observed:
                continue
            indexed = stamp if b.skip_reason is None and b.user_id else None
            changed.append((b.id, *observed, stamp, stamp, indexed))
        return changed

    def forget_badges_not_in(self, read: Iterable[str]) -> int:
        """After a crawl that read every badge: drop the detail of badges it did not see
        (deleted from Credly), so no later crawl puts them back into an item. `read` must
        be the ids the crawl read, in ascending order. Returns how many were forgotten."""
        kept = iter(read)
        current = next(kept, None)
        gone: list[str] = []
        for row in self._conn.execute(
            "SELECT id FROM badges WHERE d_badge_skip IS NOT NULL OR d_entry IS NOT NULL "
            "ORDER BY id"
        ):
            badge_id = str(row[0])
            while current is not None and current < badge_id:
                current = next(kept, None)
            if current != badge_id:
                gone.append(badge_id)
        with self._tx() as tx:
            for start in range(0, len(gone), _CHUNK):
                part = gone[start : start + _CHUNK]
                tx.execute(
                    "UPDATE badges SET "
                    + ", ".join(f"{c} = NULL" for c in _OBSERVED_COLUMNS if c.startswith("d_"))
                    + f" WHERE id IN ({', '.join('?' * len(part))})",
                    part,
                )
        return len(gone)

    def known_badges(self, addresses: Iterable[str]) -> list[BadgeObservation]:
        """The badges recorded with a detail for these normalized recipient addresses."""
        wanted = sorted(set(addresses))
        found: list[BadgeObservation] = []
        for start in range(0, len(wanted), _CHUNK):
            part = wanted[start : start + _CHUNK]
            marks = ", ".join("?" * len(part))
            rows = self._rows(
                f"SELECT id, {_OBSERVED} FROM badges WHERE d_email IN ({marks})",
                part,
            )
            found.extend(_observation(row) for row in rows)
        return found

    def known_badge(self, badge_id: str) -> BadgeObservation | None:
        row = self._row(f"SELECT id, {_OBSERVED} FROM badges WHERE id = ?", (badge_id,))
        return _observation(row) if row else None

    def expired_since(self, now: datetime) -> list[str]:
        """Addresses with a badge that was indexable when recorded and has expired since."""
        rows = self._rows(
            "SELECT DISTINCT d_email FROM badges WHERE d_badge_skip IS NULL "
            "AND d_entry IS NOT NULL AND d_expires_at IS NOT NULL AND d_expires_at <= ?",
            (now.astimezone(UTC).isoformat(),),
        )
        return [str(r[0]) for r in rows if r[0] is not None]

    def _badge(self, row: sqlite3.Row) -> BadgeRecord:
        first_seen = _parse(row["first_seen"])
        last_seen = _parse(row["last_seen"])
        assert first_seen is not None and last_seen is not None
        return BadgeRecord(
            id=str(row["id"]),
            state=str(row["state"]),
            public=bool(row["public"]),
            recipient_email=row["recipient_email"],
            user_id=row["user_id"],
            skip_reason=row["skip_reason"],
            first_seen=first_seen,
            last_seen=last_seen,
            first_indexed=_parse(row["first_indexed"]),
        )

    def badge(self, badge_id: str) -> BadgeRecord | None:
        row = self._row("SELECT * FROM badges WHERE id = ?", (badge_id,))
        return self._badge(row) if row else None

    def badges_for_email(self, email: str) -> list[BadgeRecord]:
        rows = self._rows(
            "SELECT * FROM badges WHERE recipient_email = ? ORDER BY id", (email.strip().lower(),)
        )
        return [self._badge(row) for row in rows]

    def replace_unmatched_badges(
        self,
        badges: Iterable[UnmatchedBadgeRecord],
        now: datetime | None = None,
        *,
        read: Iterable[str] | None = None,
    ) -> None:
        """The badges that reached no user, in one transaction: after a crawl that read every
        badge they replace the list; after one that read only some (`read`: their ids),
        they replace those badges' entries."""
        with self._tx() as tx:
            if read is None:
                tx.execute("DELETE FROM unmatched_badges")
            else:
                tx.executemany(
                    "DELETE FROM unmatched_badges WHERE badge_id = ?", ((i,) for i in read)
                )
            tx.executemany(
                "INSERT OR REPLACE INTO unmatched_badges "
                "(badge_id, address, name, first_name, last_name) VALUES (?, ?, ?, ?, ?)",
                (
                    (b.badge_id, b.address.strip().lower(), b.name, b.first_name, b.last_name)
                    for b in badges
                ),
            )
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('unmatched_badges_at', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (_iso(now or utcnow()),),
            )

    def unmatched_badges(self) -> list[UnmatchedBadgeRecord]:
        rows = self._rows(
            "SELECT badge_id, address, name, first_name, last_name FROM unmatched_badges "
            "ORDER BY address, badge_id"
        )
        return [UnmatchedBadgeRecord(*row) for row in rows]

    def unmatched_badges_at(self) -> datetime | None:
        """When the unmatched badges were last recorded; None before the first such crawl."""
        return _parse(self.get_meta("unmatched_badges_at"))

    # ---- users snapshot and delta link -----------------------------------------------------

    def users_snapshot(self) -> dict[str, dict[str, Any]]:
        return {str(data.get("id")): data for data in self.iter_users_snapshot()}

    def iter_users_snapshot(self) -> Iterator[dict[str, Any]]:
        """The snapshot's entries one at a time (100,000 dicts at once cost about 70 MB)."""
        for row in self._conn.execute("SELECT id, data FROM users"):
            data = json.loads(row["data"])
            yield {**data, "id": data.get("id", str(row["id"]))}

    def has_users_snapshot(self) -> bool:
        return self._row("SELECT 1 FROM users LIMIT 1") is not None

    def snapshot_users_mentioning(self, text: str) -> list[dict[str, Any]]:
        """Snapshot entries whose stored form contains `text` (any case): a cheap pre-filter
        for diagnosis, which checks each entry itself."""
        pattern = (
            "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        )
        rows = self._rows("SELECT data FROM users WHERE lower(data) LIKE ? ESCAPE '\\'", (pattern,))
        return [json.loads(r["data"]) for r in rows]

    def delta_link(self) -> str | None:
        row = self._row("SELECT link FROM delta WHERE name = 'users'")
        return str(row[0]) if row else None


_CHUNK = 500  # badges compared per query (SQLite allows 999 parameters in older builds)

# The columns of a badge observation, in records.BadgeObservation / BadgeDetail order.
_OBSERVED_COLUMNS = (
    "state",
    "public",
    "recipient_email",
    "user_id",
    "skip_reason",
    "d_email",
    "d_badge_skip",
    "d_expires_at",
    "d_sort_key",
    "d_certification",
    "d_entry",
    "d_issued_to",
    "d_first_name",
    "d_last_name",
)
_OBSERVED = ", ".join(_OBSERVED_COLUMNS)

_UPSERT_BADGE = (
    f"INSERT INTO badges (id, {_OBSERVED}, first_seen, last_seen, first_indexed) "
    f"VALUES ({', '.join('?' * (len(_OBSERVED_COLUMNS) + 4))}) "
    "ON CONFLICT(id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in (*_OBSERVED_COLUMNS, "last_seen"))
    + ", first_indexed = COALESCE(badges.first_indexed, excluded.first_indexed)"
)


def _observed(b: BadgeObservation) -> tuple[Any, ...]:
    """A badge observation as the state's columns hold it (comparable with a stored row)."""
    email = b.recipient_email.lower() if b.recipient_email else None
    d = b.detail or BadgeDetail(None, None, None, None, None, None, None, None, None)
    cert = None if d.certification is None else int(d.certification)
    return (
        b.state,
        int(b.public),
        email,
        b.user_id,
        b.skip_reason,
        d.email,
        d.badge_skip,
        d.expires_at,
        d.sort_key,
        cert,
        d.entry,
        d.issued_to,
        d.first_name,
        d.last_name,
    )


def _observation(row: sqlite3.Row) -> BadgeObservation:
    v = tuple(row)
    # A row recorded with its detail has a skip reason or an entry; one recorded before
    # schema 4 has neither.
    recorded = v[7] is not None or v[11] is not None
    cert = None if v[10] is None else bool(v[10])
    detail = BadgeDetail(v[6], v[7], v[8], v[9], cert, *v[11:15]) if recorded else None
    return BadgeObservation(str(v[0]), str(v[1]), bool(v[2]), v[3], v[4], v[5], detail)


def _chunks(values: Iterable[BadgeObservation], size: int) -> Iterator[list[BadgeObservation]]:
    chunk: list[BadgeObservation] = []
    for value in values:
        chunk.append(value)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(
            f"{path.as_uri()}?mode=ro", uri=True, timeout=30, check_same_thread=False
        )
    else:
        # Writer threads share it; the runner serializes every call.
        conn = sqlite3.connect(
            path, timeout=30, isolation_level="DEFERRED", check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL is safe against a killed process (the WAL is in the OS cache); only a power
        # cut can lose the last transactions, which the next run then redoes.
        conn.execute("PRAGMA synchronous=NORMAL")
    conn.row_factory = sqlite3.Row
    return conn


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise UsageError(
            f"The state database {path} was written by a newer credlyctl "
            f"(schema {version}, this one knows {SCHEMA_VERSION}).",
            "Upgrade credlyctl; the state is never migrated backwards.",
            error_id="state_too_new",
        )
    for step in range(version + 1, SCHEMA_VERSION + 1):
        with conn:
            for statement in _MIGRATIONS[step]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {step}")


def _check_integrity(conn: sqlite3.Connection, path: Path) -> None:
    """`PRAGMA quick_check`: a damaged database is refused up front, never trusted.

    quick_check reads every page (no index cross-check): about 0.2 s for a 24 MB state
    (20,000 users, 80,000 badges). A corrupted file then stops `status` from saying OK and
    stops a sync before it writes anything.
    """
    problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check(3)")]
    if problems != ["ok"]:
        raise sqlite3.DatabaseError("; ".join(problems))


def _open_checked(path: Path, *, readonly: bool) -> tuple[sqlite3.Connection, int]:
    """Connect, run quick_check (and migrate for writing): any SQLite failure is user-facing."""
    try:
        conn = _connect(path, readonly=readonly)
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            _check_integrity(conn, path)
            if not readonly:
                _migrate(conn, path)
        except BaseException:
            conn.close()
            raise
    except sqlite3.Error as exc:
        raise StateStoreError.from_sqlite(exc, path) from None
    return conn, version


def open_state(path: Path, instance: str, *, locked: bool = False) -> SyncState:
    """Open (creating and migrating as needed) the state database for writing.

    `locked`: the caller holds the instance's sync lock (see `SyncState`).
    """
    ensure_folder(path.parent, "state folder")
    refuse_special_file(path, "state database")
    conn, _ = _open_checked(path, readonly=False)
    state = SyncState(conn, path, locked=locked)
    if state.get_meta("instance") is None:
        state.set_meta("instance", instance)
        state.set_meta("created_at", _iso(utcnow()) or "")
    return state


def open_readonly(path: Path) -> SyncState | None:
    """For status, dry runs and diagnostics: None when no state exists yet."""
    if not path.exists():
        return None
    refuse_special_file(path, "state database")
    conn, version = _open_checked(path, readonly=True)
    if version != SCHEMA_VERSION:
        # An older file is migrated by the next sync; reading it with today's queries may fail.
        conn.close()
        if version > SCHEMA_VERSION:
            raise UsageError(
                f"The state database {path} was written by a newer credlyctl.",
                "Upgrade credlyctl.",
                error_id="state_too_new",
            )
        return open_state(path, path.stem)
    return SyncState(conn, path)
