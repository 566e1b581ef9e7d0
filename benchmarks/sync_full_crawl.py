"""Benchmark: one size's full and incremental crawls, tuned, with requests and profiles.

For the issue 12 figures (shipped configuration, several sizes and ingestion limits, the
targets) run benchmarks/sync_at_scale.py. This script is the closer look at one size: the
simulator (its own process, see _simulated_org.py) with one ingestion limit, the Credly page
and write concurrency chosen on the command line, a full crawl, an incremental crawl with no
change and one after 1% of the users changed. Prints, per crawl: wall time, the floor the
simulator's limits imply, their ratio, HTTP requests by kind from the simulator's request log,
the phases from the crawl log, CPU and peak memory; `--profile DIR` writes a cProfile file per
crawl.

Floor = max(items written / ingestion limit, Credly pages x latency / parallel page reads +
user pages x latency), parallel page reads being min(8, sync.credly_page_concurrency).

    python benchmarks/sync_full_crawl.py                      # 20,000 users, 80,000 badges
    python benchmarks/sync_full_crawl.py --users 2000 --badges 8000 --profile /tmp/prof
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _simulated_org import (
    SimulatedOrg,
    floor_seconds,
    load_average,
    log_stamps,
    phases,
    run_credlyctl,
)


def _crawl(
    name: str, org: SimulatedOrg, config: Path, args: argparse.Namespace, *flags: str
) -> dict[str, Any]:
    org.reset()
    # One log per crawl: the two incremental crawls may start within the same second.
    slug = "".join(c if c.isalnum() else "-" for c in name)
    log = config.with_name(f"crawl-{slug}-{time.time():.0f}.log")
    profile = args.profile / f"{log.stem}.prof" if args.profile else None
    run = run_credlyctl(config, "sync", *flags, "--log-file", str(log), profile=profile)
    if run.exit_code not in (0, 1):
        raise SystemExit(f"credlyctl sync {' '.join(flags)} failed: {run.error}")
    spent = phases(log_stamps(log))
    report = run.report
    requests = org.requests()
    counts = report["counts"]
    items = counts["written"] + counts["deleted"]
    parallel = min(8, args.page_concurrency)
    floor = floor_seconds(items, args.ingestion_limit, requests, args.latency, parallel)
    wall, peak, cpu = run.wall, run.peak_mb, run.cpu
    result = {
        "crawl": name,
        "kind": report["kind"],
        "wall_seconds": round(wall, 2),
        "crawl_seconds": report["duration_seconds"],
        "floor_seconds": round(floor, 2),
        "ratio": round(wall / floor, 2) if floor else None,
        "crawl_ratio": round(report["duration_seconds"] / floor, 2) if floor else None,
        "items_written": counts["written"],
        "items_deleted": counts["deleted"],
        "items_unchanged": counts["unchanged"],
        "credly_pages": requests.credly_pages,
        "requests": requests.kinds,
        "throttled_entries": report["throttling"]["throttled_entries"],
        "peak_memory_mb": round(peak, 1),
        "cpu_seconds": round(cpu, 2),
        "load_average_1min": round(load_average(), 1),
        "phases_seconds": spent,
    }
    print(f"\n== {name} ({report['kind']} crawl)")
    print(f"   wall time        {wall:8.2f} s   (crawl itself {report['duration_seconds']:.2f} s)")
    print(
        f"   floor            {floor:8.2f} s   ratio {result['ratio']} "
        f"(crawl only: {result['crawl_ratio']})"
    )
    print(
        f"   items written    {counts['written']:8d}   deleted {counts['deleted']}, "
        f"unchanged {counts['unchanged']}"
    )
    print(f"   peak memory      {peak:8.1f} MB")
    print(f"   CPU (user+sys)   {cpu:8.2f} s   (load average {load_average():.1f})")
    print("   phases (from --log-file): " + ", ".join(f"{k} {v:.2f} s" for k, v in spent.items()))
    print("   requests (simulator log):")
    for kind, number in requests.kinds.items():
        print(f"     {kind:32s} {number:7d}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--badges", type=int, default=80_000)
    parser.add_argument("--latency", type=float, default=0.020, help="seconds added per request")
    parser.add_argument("--ingestion-limit", type=float, default=500, help="items/s/connection")
    parser.add_argument("--page-concurrency", type=int, default=8)
    parser.add_argument(
        "--write-concurrency", type=int, help="sync.write_concurrency (default: the shipped one)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--profile", type=Path, help="folder for a cProfile file per crawl (slows the crawls)"
    )
    args = parser.parse_args()

    print(f"Generating {args.users} users and {args.badges} badges; starting the simulator...")
    started = time.perf_counter()
    org = SimulatedOrg(args.users, args.badges, args.latency)
    org.set_limit(args.ingestion_limit)
    print(
        f"Simulator ready after {time.perf_counter() - started:.1f} s "
        f"(latency {args.latency * 1000:.0f} ms, ingestion limit {args.ingestion_limit}/s)"
    )
    # The writer finds the ingestion limit by itself: no sync.max_write_rate.
    tuning = [f"credly_page_concurrency = {args.page_concurrency}"]
    if args.write_concurrency:
        tuning.append(f"write_concurrency = {args.write_concurrency}")
    config = org.configure(Path(tempfile.mkdtemp(prefix="credlyctl-bench-")), *tuning)

    results = [_crawl("full", org, config, args, "--full")]
    results.append(_crawl("incremental, no change", org, config, args, "--incremental"))
    changed = org.change(1.0)
    result = _crawl("incremental, 1% of users changed", org, config, args, "--incremental")
    result["users_changed"] = changed
    results.append(result)
    print(f"\nUsers changed: {changed}; items written by that crawl: {result['items_written']}")
    full_cpu = results[0]["cpu_seconds"]
    shares = {r["crawl"]: round(r["cpu_seconds"] / full_cpu, 3) for r in results[1:]}
    peak_mb = max(r["peak_memory_mb"] for r in results)
    for crawl, share in shares.items():
        print(f"Incremental CPU share ({crawl}): {share:.1%} of the full crawl's CPU")
    print(f"Peak memory (any crawl): {peak_mb:.1f} MB")
    org.close()
    summary = {
        "users": args.users,
        "badges": args.badges,
        "latency_seconds": args.latency,
        "ingestion_limit": args.ingestion_limit,
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "crawls": results,
        "incremental_cpu_share": shares,
        "peak_memory_mb": peak_mb,
    }
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
