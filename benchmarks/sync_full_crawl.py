"""Benchmark: full and incremental crawls against the simulator's large generated organization.

The simulator runs in its own process (multiprocessing); each crawl is a real `credlyctl sync`
process, so its peak memory is measured alone (os.wait4). Prints, per crawl: wall time, the
floor the simulator's limits imply, their ratio, HTTP requests by kind from the simulator's
request log, and credlyctl's peak memory.

Floor = max(items written / ingestion limit, Credly pages x latency / parallel page reads),
parallel page reads being min(8, sync.credly_page_concurrency).

    python benchmarks/sync_full_crawl.py                      # 20,000 users, 80,000 badges
    python benchmarks/sync_full_crawl.py --users 2000 --badges 8000
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

CONNECTION = "credlybadges"
MAIN = "from credly_connector.cli.app import main; main()"


def _serve(conn: Connection, users: int, badges: int, latency: float, limit: float) -> None:
    """The simulator process: answers control commands from the benchmark over a pipe."""
    from credly_connector.simulator.generator import generate
    from credly_connector.simulator.runner import start_simulator

    scenario = generate(users=users, badges=badges, seed=1)
    org_id = scenario["credly"]["organizations"][0]["id"]
    with start_simulator(scenario) as sim:
        sim.set_faults(latency_seconds=latency, graph_ingestion_limit_per_second=limit)
        conn.send({"ready": True})
        while True:
            command, argument = conn.recv()
            if command == "config":
                conn.send(sim.config_toml(state_dir=argument))
            elif command == "clear_log":
                sim.clear_request_log()
                conn.send(True)
            elif command == "log":
                kinds: Counter[str] = Counter()
                for entry in sim.request_log():
                    path = entry.path.split("?")[0]
                    if entry.service == "credly-api":
                        kind = "credly.badges" if path.endswith("/badges") else "credly.other"
                    elif entry.service == "graph":
                        kind = "graph " + (
                            "$batch"
                            if path.endswith("/$batch")
                            else "users.delta"
                            if "/users/delta" in path
                            else "users"
                            if "/users" in path
                            else "other"
                        )
                    else:
                        kind = entry.service
                    kinds[f"{entry.method} {kind}"] += 1
                conn.send(dict(sorted(kinds.items())))
            elif command == "change":
                # Give `argument` percent of the users holding an item one more badge.
                items = sorted(sim.graph_items(CONNECTION))
                chosen = items[:: max(1, round(100 / argument))]
                by_id = {u["id"].replace("-", ""): u for u in sim.directory.all_users()}
                for item_id in chosen:
                    user = by_id[item_id]
                    sim.add_badge(
                        org_id,
                        state="accepted",
                        public=True,
                        accepted_at="2026-11-01T00:00:00Z",
                        recipient_email=user["userPrincipalName"],
                        badge_template={"id": "bench", "name": "Benchmark badge"},
                    )
                conn.send(len(chosen))
            elif command == "items":
                conn.send(len(sim.graph_items(CONNECTION)))
            elif command == "stop":
                conn.send(True)
                return


def _run(
    config: Path, *args: str, profile: Path | None = None
) -> tuple[dict[str, Any], float, float, float]:
    """One credlyctl run: its JSON document, wall seconds, peak RSS in MB and CPU seconds.

    CPU (user + system, from os.wait4) is the figure to compare on a loaded machine: wall
    time there mostly measures the other processes."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", _profiled(profile), *args, "--config", str(config), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    document = json.loads(output)
    if process.returncode not in (0, 1):
        raise SystemExit(f"credlyctl {' '.join(args)} failed: {json.dumps(document)[:800]}")
    cpu = usage.ru_utime + usage.ru_stime
    return document, wall, usage.ru_maxrss / 1024, cpu  # Linux reports KiB


def _profiled(profile: Path | None) -> str:
    """The command to run: credlyctl's main, under cProfile when a profile file is asked."""
    if profile is None:
        return MAIN
    main = MAIN.replace("; ", "\n")
    return f"import cProfile; cProfile.run({main!r}, {str(profile)!r})"


def _phases(log: Path) -> dict[str, float]:
    """Seconds spent reading, planning, writing and recording, from the crawl's log."""
    events = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    stamp: dict[str, list[datetime]] = {}
    for event in events:
        stamp.setdefault(event["event"], []).append(datetime.fromisoformat(event["time"]))
    start = stamp["crawl_start"][0]
    read_end = max(
        stamp.get("credly_read", [start])
        + stamp.get("users_listed", [start])
        + stamp.get("users_delta", [start])
    )
    plan = stamp.get("plan", [read_end])[0]
    write_end = max(stamp.get("batch", [plan]))
    end = stamp["crawl_end"][0]
    return {
        "read": (read_end - start).total_seconds(),
        "plan": (plan - read_end).total_seconds(),
        "write": (write_end - plan).total_seconds(),
        "record": (end - write_end).total_seconds(),
    }


def _crawl(
    name: str, control: Connection, config: Path, args: argparse.Namespace, *flags: str
) -> dict[str, Any]:
    control.send(("clear_log", None))
    control.recv()
    log = config.with_name(f"crawl-{name.split(',')[0].replace(' ', '-')}-{time.time():.0f}.log")
    profile = args.profile / f"{log.stem}.prof" if args.profile else None
    document, wall, peak, cpu = _run(
        config, "sync", *flags, "--log-file", str(log), profile=profile
    )
    phases = _phases(log)
    report = document["instances"][0]
    control.send(("log", None))
    kinds: dict[str, int] = control.recv()
    counts = report["counts"]
    items = counts["written"] + counts["deleted"]
    pages = kinds.get("GET credly.badges", 0)
    parallel = min(8, args.page_concurrency)
    floor = max(items / args.ingestion_limit, pages * args.latency / parallel)
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
        "credly_pages": pages,
        "requests": kinds,
        "throttled_entries": report["throttling"]["throttled_entries"],
        "peak_memory_mb": round(peak, 1),
        "cpu_seconds": round(cpu, 2),
        "load_average_1min": round(os.getloadavg()[0], 1),
        "phases_seconds": phases,
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
    print(f"   CPU (user+sys)   {cpu:8.2f} s   (load average {os.getloadavg()[0]:.1f})")
    print("   phases (from --log-file): " + ", ".join(f"{k} {v:.2f} s" for k, v in phases.items()))
    print("   requests (simulator log):")
    for kind, number in kinds.items():
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

    context = multiprocessing.get_context("spawn")
    control, child_end = context.Pipe()
    server = context.Process(
        target=_serve,
        args=(child_end, args.users, args.badges, args.latency, args.ingestion_limit),
        daemon=True,
    )
    print(f"Generating {args.users} users and {args.badges} badges; starting the simulator...")
    started = time.perf_counter()
    server.start()
    control.recv()
    print(
        f"Simulator ready after {time.perf_counter() - started:.1f} s "
        f"(latency {args.latency * 1000:.0f} ms, ingestion limit {args.ingestion_limit}/s)"
    )
    folder = Path(tempfile.mkdtemp(prefix="credlyctl-bench-"))
    control.send(("config", str(folder / "state")))
    text: str = control.recv()
    marker = f'state_dir = "{folder / "state"}"'
    text = text.replace(
        marker,
        # The writer finds the ingestion limit by itself: no sync.max_write_rate.
        marker
        + (f"\nwrite_concurrency = {args.write_concurrency}" if args.write_concurrency else "")
        + f"\ncredly_page_concurrency = {args.page_concurrency}",
    )
    config = folder / "credlyctl.toml"
    config.write_text(text, encoding="utf-8")
    _run(config, "setup")

    results = [_crawl("full", control, config, args, "--full")]
    results.append(_crawl("incremental, no change", control, config, args, "--incremental"))
    control.send(("change", 1.0))
    changed: int = control.recv()
    result = _crawl("incremental, 1% of users changed", control, config, args, "--incremental")
    result["users_changed"] = changed
    results.append(result)
    print(f"\nUsers changed: {changed}; items written by that crawl: {result['items_written']}")
    full_cpu = results[0]["cpu_seconds"]
    shares = {r["crawl"]: round(r["cpu_seconds"] / full_cpu, 3) for r in results[1:]}
    peak_mb = max(r["peak_memory_mb"] for r in results)
    for crawl, share in shares.items():
        print(f"Incremental CPU share ({crawl}): {share:.1%} of the full crawl's CPU")
    print(f"Peak memory (any crawl): {peak_mb:.1f} MB")
    control.send(("stop", None))
    control.recv()
    server.join(timeout=30)
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
