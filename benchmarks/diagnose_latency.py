"""How long `credlyctl diagnose EMAIL` takes when every request costs 100 ms (target < 3 s).

Starts the demo simulator, runs `setup` and a full `sync` without latency, then adds the
latency and times `credlyctl diagnose EMAIL` as a subprocess (interpreter start included),
several times. Prints the wall times, the number of requests each run made and how long the
network part took (first request to last answer), both from the simulator's request log.

    python benchmarks/diagnose_latency.py [--latency 0.1] [--runs 5] [--email EMAIL]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from credly_connector.simulator.runner import start_simulator

TARGET_SECONDS = 3.0


def _credlyctl() -> list[str]:
    found = shutil.which("credlyctl", path=str(Path(sys.executable).parent))
    return (
        [found]
        if found
        else [sys.executable, "-c", "from credly_connector.cli.app import main; main()"]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added per request")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--email", default="alex.wilber@contoso.com")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="credlyctl-bench-"))
    with start_simulator("demo") as sim:
        config = sim.write_config(folder / "credlyctl.toml", state_dir=folder / "state")
        env = {**os.environ, "CREDLYCTL_CONFIG": str(config), "NO_COLOR": "1"}
        for step in (["setup"], ["sync"]):
            subprocess.run([*_credlyctl(), *step], env=env, check=True, capture_output=True)
        sim.set_faults(latency_seconds=args.latency)
        times: list[float] = []
        requests: list[int] = []
        network: list[float] = []
        codes: set[int] = set()
        for _ in range(args.runs):
            sim.clear_request_log()
            started = time.perf_counter()
            done = subprocess.run(
                [*_credlyctl(), "diagnose", args.email, "--json"], env=env, capture_output=True
            )
            times.append(time.perf_counter() - started)
            log = sim.request_log()
            requests.append(len(log))
            if log:
                network.append(max(e.time + e.duration for e in log) - min(e.time for e in log))
            codes.add(done.returncode)
        sim.set_faults(latency_seconds=0.0)
        started = time.perf_counter()
        subprocess.run([*_credlyctl(), "--version"], env=env, capture_output=True, check=True)
        startup = time.perf_counter() - started
    median = statistics.median(times)
    print(
        f"machine: {platform.machine()} {platform.system()} python {platform.python_version()}"
        f", {os.cpu_count()} CPUs"
    )
    print(
        f"latency per request: {args.latency * 1000:.0f} ms; runs: {args.runs}; exit codes: "
        f"{sorted(codes)}"
    )
    print(
        f"diagnose {args.email}: median {median:.2f} s, min {min(times):.2f} s, "
        f"max {max(times):.2f} s (target < {TARGET_SECONDS:.1f} s)"
    )
    print(
        f"requests per run: {statistics.median(requests):.0f} "
        f"(serial would take {statistics.median(requests) * args.latency:.1f} s of latency)"
    )
    if network:
        spread = statistics.median(network)
        print(f"network part (first request to last answer): median {spread:.2f} s")
    print(f"interpreter start + `credlyctl --version`: {startup:.2f} s")
    print("PASS" if max(times) < TARGET_SECONDS else "OVER TARGET")
    return 0 if max(times) < TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
