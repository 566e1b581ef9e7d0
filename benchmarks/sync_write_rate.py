"""Benchmark: full crawls with the DEFAULT configuration against several ingestion limits.

The writer is meant to find the rate Graph allows by itself (issue 12, goal 1): nothing in
the configuration says what the limit is. For each limit (items per second per connection)
the simulator enforces, the script runs `credlyctl sync --full` as a real process with a
configuration that sets only the state folder, and prints:

* the write phase (first `plan` to last `batch` event of the crawl log) against the write
  floor, items written / limit;
* the whole crawl (interpreter start included) against the crawl floor,
  max(items / limit, Credly pages x latency / 8 + user pages x latency);
* the 429s the simulator gave, by reason: `rate` (the ingestion limit: the probing costs a
  few) and `concurrency` (more than 25 operations in flight: must be 0);
* the write rate the crawl ended at and the highest it reached.

The simulator (its own process) also enforces Graph's 25 concurrent operations per
connection, as it does by default.

    python benchmarks/sync_write_rate.py                       # 5,000 users, limits 25 200 500
    python benchmarks/sync_write_rate.py --limits 200 --users 2000 --badges 8000
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

MAIN = "from credly_connector.cli.app import main; main()"


def _serve(conn: Connection, users: int, badges: int, latency: float) -> None:
    """The simulator process: answers control commands from the benchmark over a pipe."""
    from credly_connector.simulator.generator import generate
    from credly_connector.simulator.runner import start_simulator

    with start_simulator(generate(users=users, badges=badges, seed=1)) as sim:
        sim.set_faults(latency_seconds=latency)
        conn.send({"ready": True})
        while True:
            command, argument = conn.recv()
            if command == "config":
                conn.send(sim.config_toml(state_dir=argument))
            elif command == "limit":
                sim.set_faults(graph_ingestion_limit_per_second=argument)
                sim.clear_request_log()
                done = len(sim.graph_throttled())
                conn.send(done)
            elif command == "report":
                pages: Counter[str] = Counter()
                for entry in sim.request_log():
                    path = entry.path.split("?")[0]
                    if entry.service == "credly-api" and path.endswith("/badges"):
                        pages["credly"] += 1
                    elif entry.service == "graph" and path.endswith("/users"):
                        pages["users"] += 1
                reasons = Counter(t["reason"] for t in sim.graph_throttled()[argument:])
                conn.send({"pages": dict(pages), "throttled": dict(reasons)})
            elif command == "stop":
                conn.send(True)
                return


def _sync(config: Path, log: Path) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    command = [sys.executable, "-c", MAIN, "sync", "--full", "--json", "--config", str(config)]
    done = subprocess.run(
        [*command, "--log-file", str(log)],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"credlyctl sync failed ({done.returncode}): {done.stdout[:800]}")
    return json.loads(done.stdout), wall


def _write_seconds(log: Path) -> float:
    """From the crawl's first `plan` event to its last `batch` event."""
    stamps: dict[str, list[datetime]] = {}
    for line in log.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        stamps.setdefault(event["event"], []).append(datetime.fromisoformat(event["time"]))
    return (max(stamps["batch"]) - stamps["plan"][0]).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--badges", type=int, default=20_000)
    parser.add_argument("--latency", type=float, default=0.020, help="seconds added per request")
    parser.add_argument("--limits", type=float, nargs="+", default=[25, 200, 500])
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    context = multiprocessing.get_context("spawn")
    control, child_end = context.Pipe()
    server = context.Process(
        target=_serve, args=(child_end, args.users, args.badges, args.latency), daemon=True
    )
    print(f"Generating {args.users} users and {args.badges} badges; starting the simulator...")
    server.start()
    control.recv()
    folder = Path(tempfile.mkdtemp(prefix="credlyctl-rate-"))
    control.send(("config", str(folder / "state")))
    config = folder / "credlyctl.toml"
    config.write_text(control.recv(), encoding="utf-8")  # the defaults: no sync tuning at all
    subprocess.run(
        [sys.executable, "-c", MAIN, "setup", "--config", str(config)],
        capture_output=True,
        check=True,
    )
    results = []
    for limit in args.limits:
        control.send(("limit", limit))
        seen = control.recv()
        log = folder / f"crawl-{limit:g}.log"
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        document, wall = _sync(config, log)
        control.send(("report", seen))
        remote: dict[str, Any] = control.recv()
        report = document["instances"][0]
        items = report["counts"]["written"] + report["counts"]["deleted"]
        write = _write_seconds(log)
        write_floor = items / limit
        read_floor = (
            remote["pages"].get("credly", 0) * args.latency / 8
            + remote["pages"].get("users", 0) * args.latency
        )
        floor = max(write_floor, read_floor)
        throttling = report["throttling"]
        result = {
            "limit": limit,
            "items": items,
            "write_seconds": round(write, 2),
            "write_floor_seconds": round(write_floor, 2),
            "write_ratio": round(write / write_floor, 3),
            "wall_seconds": round(wall, 2),
            "crawl_seconds": report["duration_seconds"],
            "floor_seconds": round(floor, 2),
            "ratio": round(wall / floor, 3),
            "crawl_ratio": round(report["duration_seconds"] / floor, 3),
            "throttled": remote["throttled"],
            "final_write_rate": throttling["final_write_rate"],
            "load_before": round(load, 2),
        }
        results.append(result)
        print(
            f"\n== limit {limit:g} items/s: {items} items\n"
            f"   write phase {write:7.2f} s   floor {write_floor:7.2f} s   "
            f"ratio {result['write_ratio']}\n"
            f"   whole crawl {wall:7.2f} s   floor {floor:7.2f} s   ratio {result['ratio']} "
            f"(crawl only {result['crawl_ratio']})\n"
            f"   429s by reason {remote['throttled'] or {}}; final write rate "
            f"{throttling['final_write_rate']} items/s; load average before {load:.2f}"
        )
    control.send(("stop", None))
    control.recv()
    server.join(timeout=30)
    if args.json:
        summary = {
            "users": args.users,
            "badges": args.badges,
            "latency_seconds": args.latency,
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "runs": results,
        }
        args.json.write_text(json.dumps(summary, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
