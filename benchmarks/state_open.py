"""What the integrity check costs when a state database is opened (status, diagnose, sync).

Builds a state the size of a large tenant (20,000 users with items, 80,000 badges, the user
snapshot), then times `open_readonly` (which runs `PRAGMA quick_check`) against a bare
SQLite connect, each many times. Prints medians in milliseconds and the file size.

    python benchmarks/state_open.py [--users 20000] [--badges 80000] [--runs 9]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from credly_connector.sync.state import BadgeObservation, open_readonly, open_state


def build(path: Path, users: int, badges: int) -> None:
    state = open_state(path, "bench")
    crawl = state.begin_crawl("full")
    state.mark_intents((f"i{n:06d}", f"u{n:06d}", "put", f"u{n}@contoso.com") for n in range(users))
    state.record_results(crawl, [(f"i{n:06d}", "h" * 64) for n in range(users)], [], [])
    state.record_badges(
        BadgeObservation(f"b{n}", "accepted", True, f"u{n % users}@contoso.com", None, None)
        for n in range(badges)
    )
    snapshot = [
        (f"u{n:06d}", {"id": f"u{n:06d}", "mail": f"u{n}@contoso.com"}) for n in range(users)
    ]
    state.finish_crawl(crawl, "succeeded", {}, [], users=snapshot)
    state.close()


def median_ms(action: object, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--badges", type=int, default=80_000)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.sqlite3"
        build(path, args.users, args.badges)

        def checked() -> None:
            state = open_readonly(path)
            assert state is not None
            state.close()

        def bare() -> None:
            sqlite3.connect(path).execute("PRAGMA user_version").fetchone()

        print(f"state file: {path.stat().st_size / 1e6:.1f} MB")
        print(f"open_readonly (with quick_check): {median_ms(checked, args.runs):.0f} ms")
        print(f"bare connect: {median_ms(bare, args.runs):.2f} ms")


if __name__ == "__main__":
    main()
