"""Benchmark: the shipped configuration against each organization size and ingestion limit.

Issue 12 in one run. For each organization size (the generated organization, seed 1, in the
simulator's own process, 20 ms added to every request) the SHIPPED configuration: it sets
only the state folder and what reaches the simulator (no max_write_rate, no
write_concurrency, no credly_page_concurrency). Each size runs, as `credlyctl sync`
processes against the Graph ingestion limits the simulator enforces (items per second per
connection; Graph's 25 concurrent item operations per connection are enforced as by
default):

1. the organization's FIRST crawl (empty state) at the highest limit: it writes a user's
   item once Credly, asked for its listing sorted by recipient address, has sent every
   badge of that user (streamed writes, sync/streamed.py; the sort is inferred and checked
   at run time: with --credly-sort ignored the simulated Credly keeps its own order, and a
   first crawl writes nothing before the last page, since a user's badges may be on any);
2. a FULL crawl of the instance that has synced before (the weekly full crawl, which may
   start refreshing the items its state knows before Credly is read) at each limit, the
   highest first; right after the one at the highest limit, an incremental crawl with
   nothing changed and one with 1 % of the users changed.

Prints for each first and full crawl, labelled "first crawl" / "full crawl" ("crawl":
"first" / "full" in the JSON):

* the crawl against the floor, max(items / limit, Credly pages x latency / 8 + user pages x
  latency), start to exit (interpreter start included: the issue's 1.15 target) and on the
  crawl's own duration; the write phase (earliest `write_start` log event, the first `plan`
  when there is none, to the last `batch`) against items / limit; the 429s by reason
  (`concurrency` must be 0) and the final write rate;

and for each size: the peak RSS of the `credlyctl sync` processes (os.wait4, Linux only:
ru_maxrss is KiB there), the incremental CPU share (an incremental crawl's CPU, user + system,
divided by the full crawl's at the highest limit, not the first crawl's) with nothing changed
and with 1 % of the users changed, and the check that the latter writes exactly the changed
users. Also the machine's load average at start and end, Python version and CPU count.

Exits 1 only when a correctness check fails (a crawl fails, the connection does not hold what
the first or full crawl at the highest limit wrote, an incremental crawl writes other than
the changed users, a 429 for more than 25 operations in flight); a missed speed target prints
"not met" and exits 0.

The first crawl gives the item count. A size whose (estimated) write floor at the highest
limit exceeds --max-floor is skipped whole; a lower limit whose write floor (items / limit)
exceeds it is skipped and printed as such (20,000 users at 25 items/s is a 10-minute floor).

    python benchmarks/sync_at_scale.py                    # 2,000 5,000 20,000 x 25 200 500
    python benchmarks/sync_at_scale.py --sizes 500 --limits 200
    python benchmarks/sync_at_scale.py --sizes 100000:500000 --limits 500 --max-floor 0
    python benchmarks/sync_at_scale.py --max-floor 0 --json out.json   # everything
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

from _simulated_org import (
    SimulatedOrg,
    floor_seconds,
    load_average,
    log_stamps,
    phases,
    run_credlyctl,
    write_seconds,
)

RATIO_TARGET = 1.15  # whole crawl, start to exit, against the floor (goals 1 and 2)
CPU_SHARE_TARGET = 0.15  # incremental crawl with nothing changed / full crawl (goal 3)
# The crawls' "crawl" field (JSON) and their printed labels. A first crawl starts from an empty
# state: it cannot write a user's item before every Credly page is read (the user's badges may
# be on any page). A full crawl after a complete one (the weekly full crawl) may start
# refreshing the items its state knows at once, so the two are measured apart.
FIRST, FULL = "first", "full"
LABELS = {FIRST: "first crawl", FULL: "full crawl"}


def _rss_target(users: int) -> float | None:
    """Goal 4: 200 MB up to 20,000 users (80,000 badges), 300 MB up to 100,000 (500,000)."""
    if users <= 20_000:
        return 200.0
    if users <= 100_000:
        return 300.0
    return None


def _met(ok: bool) -> str:
    return "met" if ok else "not met"


def _size(text: str, badges_per_user: int) -> tuple[int, int]:
    """`USERS` or `USERS:BADGES`."""
    users, _, badges = text.partition(":")
    return int(users), int(badges) if badges else int(users) * badges_per_user


def _limits(text: str) -> list[float]:
    """`--limits` values: one limit or several separated by commas (`500,25`)."""
    return [float(part) for part in text.split(",") if part.strip()]


class Bench:
    """The crawls of one organization size, and the correctness checks they fail."""

    def __init__(self, org: SimulatedOrg, config: Path, latency: float) -> None:
        self.org, self.config, self.latency = org, config, latency
        self.failures: list[str] = []
        self._crawls = 0

    def crawl(self, name: str, limit: float, *flags: str) -> dict[str, Any] | None:
        """One `credlyctl sync` process; its figures, or None when it failed."""
        self.org.set_limit(limit)
        self.org.reset()
        self._crawls += 1
        log = self.config.with_name(f"crawl-{self._crawls}-{name}-{limit:g}.log")
        load = load_average()
        run = run_credlyctl(self.config, "sync", *flags, "--log-file", str(log))
        report = run.report
        if run.exit_code != 0 or "counts" not in report or report.get("failures"):
            failures = report.get("failures") or []
            self.failures.append(
                f"{LABELS.get(name, name)} at {limit:g} items/s failed (exit {run.exit_code}, "
                f"{len(failures)} failed items): {run.error or failures[:3]}"
            )
            print(f"   FAILED: {self.failures[-1]}")
            return None
        requests = self.org.requests()
        counts = report["counts"]
        items = counts["written"] + counts["deleted"]
        stamps = log_stamps(log)
        floor = floor_seconds(items, limit, requests, self.latency)
        write = write_seconds(stamps)
        result: dict[str, Any] = {
            "crawl": name,
            "kind": report["kind"],
            "limit": limit,
            "items_written": counts["written"],
            "items_deleted": counts["deleted"],
            "items_unchanged": counts["unchanged"],
            "credly_pages": requests.credly_pages,
            "user_pages": requests.user_pages,
            "floor_seconds": round(floor, 2),
            "wall_seconds": round(run.wall, 2),
            "crawl_seconds": report["duration_seconds"],
            "ratio": round(run.wall / floor, 3) if floor else None,
            "crawl_ratio": round(report["duration_seconds"] / floor, 3) if floor else None,
            "write_seconds": round(write, 2),
            "write_floor_seconds": round(items / limit, 2),
            "write_ratio": round(write * limit / items, 3) if items else None,
            "throttled": {"rate": 0, "concurrency": 0, **requests.throttled},
            "final_write_rate": report["throttling"]["final_write_rate"],
            "peak_rss_mb": round(run.peak_mb, 1),
            "cpu_seconds": round(run.cpu, 2),
            "load_before": round(load, 2),
            "phases_seconds": phases(stamps),
            "requests": requests.kinds,
        }
        if result["throttled"]["concurrency"]:
            self.failures.append(
                f"{LABELS.get(name, name)} at {limit:g} items/s: "
                f"{result['throttled']['concurrency']} item operations answered 429 for more "
                "than 25 in flight"
            )
        print(
            f"   {LABELS.get(name, name):<22} {limit:>5g}/s  wall {run.wall:7.2f} s  crawl "
            f"{report['duration_seconds']:7.2f} s  floor {floor:7.2f} s  ratio "
            f"{result['ratio']}  written {counts['written']}  CPU {run.cpu:.2f} s  "
            f"RSS {run.peak_mb:.0f} MB  load {load:.1f}",
            flush=True,
        )
        return result

    def check(self, ok: bool, failure: str) -> None:
        if not ok:
            self.failures.append(failure)


def _one_size(
    users: int, badges: int, args: argparse.Namespace, failures: list[str]
) -> dict[str, Any]:
    limits = sorted({limit for group in args.limits for limit in group}, reverse=True)
    print(f"\n== {users:,} users, {badges:,} badges: generating, starting the simulator...")
    summary: dict[str, Any] = {"users": users, "badges": badges, "full_crawls": [], "skipped": []}
    with (
        SimulatedOrg(users, badges, args.latency) as org,
        tempfile.TemporaryDirectory(prefix="credlyctl-scale-") as folder,
    ):
        if args.credly_sort is not None:
            org.set_switches(credly_badge_sort=args.credly_sort)
        summary["estimated_items"] = items = org.estimated_items
        if args.max_floor and items / limits[0] > args.max_floor:
            # Even the highest limit's floor is over: nothing of this size runs.
            summary["skipped"] = [
                {
                    "crawl": crawl,
                    "limit": limit,
                    "write_floor_seconds": round(items / limit, 1),
                    "estimated": True,
                }
                for crawl, limit in [(FIRST, limits[0]), *((FULL, limit) for limit in limits)]
            ]
            return summary
        # The shipped configuration: nothing in [sync] but the state folder.
        bench = Bench(org, org.configure(Path(folder)), args.latency)
        try:
            # The organization's first crawl (empty state), at the highest limit.
            first = bench.crawl(FIRST, limits[0], "--full")
            if first is not None:
                summary["items"] = items = first["items_written"] + first["items_deleted"]
                _check_held(bench, org, users, first)
                summary["full_crawls"].append(first)
            # Then full crawls of an instance that has synced before, the highest limit first;
            # the incremental crawls follow the one at the highest limit and compare with it.
            for limit in limits:
                # The highest limit runs whenever the size does (its first crawl did).
                if limit != limits[0] and args.max_floor and items / limit > args.max_floor:
                    summary["skipped"].append(
                        {
                            "crawl": FULL,
                            "limit": limit,
                            "write_floor_seconds": round(items / limit, 1),
                        }
                    )
                    continue
                full = bench.crawl(FULL, limit, "--full")
                if full is None:
                    continue
                summary["full_crawls"].append(full)
                if limit == limits[0]:
                    _check_held(bench, org, users, full)
                    _incremental(bench, org, limit, full, args.change_percent, summary)
        finally:
            failures.extend(bench.failures)
    incremental = summary.get("incremental") or {}
    crawls = summary["full_crawls"] + [
        c for c in (incremental.get("no_change"), incremental.get("changed")) if c
    ]
    if crawls:
        summary["peak_rss_mb"] = max(c["peak_rss_mb"] for c in crawls)
        summary["rss_target_mb"] = target = _rss_target(users)
        summary["rss_met"] = summary["peak_rss_mb"] <= target if target else None
    return summary


def _check_held(bench: Bench, org: SimulatedOrg, users: int, crawl: dict[str, Any]) -> None:
    """The connection holds what a full crawl wrote or left unchanged."""
    held = org.items()
    bench.check(
        held == crawl["items_written"] + crawl["items_unchanged"],
        f"{users} users: the connection holds {held} items after a {LABELS[crawl['crawl']]} "
        f"that wrote {crawl['items_written']} and left {crawl['items_unchanged']} unchanged",
    )


def _incremental(
    bench: Bench,
    org: SimulatedOrg,
    limit: float,
    full: dict[str, Any],
    percent: float,
    summary: dict[str, Any],
) -> None:
    """An incremental crawl with nothing changed, then one with `percent` of users changed."""
    same = bench.crawl("incremental", limit, "--incremental")
    if same is not None:
        bench.check(
            same["items_written"] == 0 and same["items_deleted"] == 0,
            f"{summary['users']} users: the incremental crawl with nothing changed wrote "
            f"{same['items_written']} and deleted {same['items_deleted']} items",
        )
    changed = org.change(percent)
    some = bench.crawl(f"incremental-{percent:g}%", limit, "--incremental")
    if some is not None:
        bench.check(
            some["items_written"] == changed and some["items_deleted"] == 0,
            f"{summary['users']} users: {changed} users changed, the incremental crawl wrote "
            f"{some['items_written']} and deleted {some['items_deleted']} items",
        )
    shares = {
        key: round(crawl["cpu_seconds"] / full["cpu_seconds"], 3) if crawl else None
        for key, crawl in (("no_change", same), ("changed", some))
    }
    summary["incremental"] = {
        "no_change": same,
        "changed": some,
        "users_changed": changed,
        "cpu_share": shares,
        "cpu_share_met": shares["no_change"] <= CPU_SHARE_TARGET
        if shares["no_change"] is not None
        else None,
    }


def _print_tables(sizes: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(
        f"\nFirst and full crawls, shipped configuration; latency {args.latency * 1000:g} ms; "
        "floor = max(items / limit, Credly pages x latency / 8 + user pages x latency)"
    )
    header = (
        f"{'users':>7} {'badges':>7} {'items':>6} {'crawl':>5} {'limit':>6} {'floor':>8} "
        f"{'wall':>8} {'ratio':>6} {'duration':>8} {'ratio':>6} {'write':>6} {'429 r/c':>9} "
        f"{'RSS MB':>7} {'CPU s':>6}  <= {RATIO_TARGET}"
    )
    print(header)
    for size in sizes:
        # The first crawl, then the full crawls from the lowest limit up.
        rows = sorted(
            size["full_crawls"] + size["skipped"], key=lambda r: (r["crawl"] != FIRST, r["limit"])
        )
        for row in rows:
            limit = row["limit"]
            lead = (
                f"{size['users']:>7,} {size['badges']:>7,} {size.get('items', '-'):>6} "
                f"{row['crawl']:>5} "
            )
            if "wall_seconds" not in row:
                about = "~" if row.get("estimated") else ""
                print(
                    f"{lead}{limit:>4g}/s  skipped (floor {about}{row['write_floor_seconds']:g} s"
                    f" > --max-floor {args.max_floor:g})"
                )
                continue
            throttled = f"{row['throttled']['rate']}/{row['throttled']['concurrency']}"
            print(
                f"{lead}{limit:>4g}/s {row['floor_seconds']:>7.2f}s {row['wall_seconds']:>7.2f}s "
                f"{row['ratio']:>6.2f} {row['crawl_seconds']:>7.2f}s {row['crawl_ratio']:>6.2f} "
                f"{row['write_ratio'] or 0:>6.2f} {throttled:>9} {row['peak_rss_mb']:>7.1f} "
                f"{row['cpu_seconds']:>6.2f}  {_met(row['ratio'] <= RATIO_TARGET)}"
            )
    print(
        "(first: the organization's first crawl, empty state / full: a full crawl after it; "
        "ratio: wall = start to exit, interpreter included / duration = the crawl's own; "
        "write: write phase (first write_start to last batch) / (items / limit); 429 r/c: "
        "answered for the rate / for more than 25 in flight)"
    )
    print(
        f"\n{'users':>7} {'peak RSS':>10} {'target':>8} {'':8} {'incr. CPU no change':>20} "
        f"{'1% changed':>11} {'':8} {'1% check: changed / written':>28}"
    )
    for size in sizes:
        if "peak_rss_mb" not in size:
            print(f"{size['users']:>7,}  not run")
            continue
        target = size["rss_target_mb"]
        verdict = "-" if target is None else _met(size["rss_met"])
        rss = f"{size['peak_rss_mb']:>8.1f}MB {target or '-':>6}MB {verdict:8}"
        incremental = size.get("incremental") or {}
        share = incremental.get("cpu_share") or {}
        changed = incremental.get("changed") or {}

        def percent(value: float | None) -> str:
            return "failed" if value is None else f"{value:.1%}"

        print(
            f"{size['users']:>7,} {rss} "
            f"{percent(share.get('no_change')):>20} {percent(share.get('changed')):>11} "
            f"{_met(bool(incremental.get('cpu_share_met'))):8} "
            f"{incremental.get('users_changed', '-')!s:>13} / {changed.get('items_written', '-')}"
        )
    print(
        f"(RSS: the highest of the size's `credlyctl sync` processes; incremental CPU share: "
        f"user + system against the full crawl's at the highest limit (not the first "
        f"crawl's), target <= {CPU_SHARE_TARGET:.0%})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        nargs="+",
        default=["2000", "5000", "20000"],
        help="organization sizes, USERS or USERS:BADGES (e.g. 100000:500000)",
    )
    parser.add_argument("--badges-per-user", type=int, default=4, help="for a size of USERS")
    parser.add_argument(
        "--limits",
        type=_limits,
        nargs="+",
        default=[[25.0, 200.0, 500.0]],
        help="items/s/connection, e.g. 500 25 or 500,25",
    )
    parser.add_argument("--latency", type=float, default=0.020, help="seconds added per request")
    parser.add_argument(
        "--max-floor",
        type=float,
        default=180,
        help="skip a size and limit whose write floor (items / limit) exceeds this many "
        "seconds; 0 runs everything",
    )
    parser.add_argument("--change-percent", type=float, default=1.0)
    parser.add_argument(
        "--credly-sort",
        choices=("honoured", "ignored", "rejected"),
        help="what the simulated Credly does with sort=recipient_email (an inferred "
        "behaviour, docs/fidelity.md C-BADGE-12; default: the simulator's, honoured): "
        "'ignored' shows a first crawl that cannot stream its writes",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    sizes = [_size(text, args.badges_per_user) for text in args.sizes]

    machine = {
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
    }
    print(
        f"Python {machine['python']}, {machine['cpus']} CPUs, {machine['platform']}; load "
        f"average at start {machine['load_average_start']}; simulated Credly sort: "
        f"{args.credly_sort or 'honoured (default)'}"
    )
    failures: list[str] = []
    results = [_one_size(users, badges, args, failures) for users, badges in sizes]
    machine["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    _print_tables(results, args)
    print(
        f"\nLoad average at start {machine['load_average_start']}, at end "
        f"{machine['load_average_end']}"
    )
    for failure in failures:
        print(f"CHECK FAILED: {failure}")
    if not failures:
        print("Correctness checks: all passed")
    if args.json:
        document = {
            **machine,
            "latency_seconds": args.latency,
            "credly_sort": args.credly_sort or "honoured",
            "max_floor_seconds": args.max_floor,
            "targets": {
                "ratio": RATIO_TARGET,
                "incremental_cpu_share": CPU_SHARE_TARGET,
                "rss_mb": {"20000": 200, "100000": 300},
            },
            "sizes": results,
            "failures": failures,
        }
        args.json.write_text(json.dumps(document, indent=2), encoding="utf-8")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
