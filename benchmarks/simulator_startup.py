"""How long the simulator takes to start (target: under 2 seconds for the demo scenario).

Times `start_simulator("demo")` in a fresh interpreter (the first start generates the RSA
keys of the demo's app certificates; later starts in the same process reuse them), then
warm starts, then a first HTTPS answer from each service, then a generated large organization
(start-up only, the generation itself timed separately). Prints figures; no pass/fail except
the demo target line.

    python benchmarks/simulator_startup.py [--runs 5] [--users 20000] [--badges 80000]
"""

from __future__ import annotations

import argparse
import os
import platform
import ssl
import statistics
import subprocess
import sys
import time

import httpx

from credly_connector.simulator.generator import generate
from credly_connector.simulator.runner import start_simulator

TARGET_SECONDS = 2.0

_COLD = """
import time
started = time.perf_counter()
from credly_connector.simulator.runner import start_simulator
sim = start_simulator("demo")
print(time.perf_counter() - started)
sim.stop()
"""


def cold_start() -> float:
    """Import and start in a new interpreter: what `credlyctl demo` or a test session pays."""
    output = subprocess.run(
        [sys.executable, "-c", _COLD], capture_output=True, text=True, check=True
    ).stdout
    return float(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--badges", type=int, default=80_000)
    args = parser.parse_args()

    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    colds = [cold_start() for _ in range(args.runs)]
    print(
        f"demo cold start (import + start, new process): median {statistics.median(colds):.3f} s"
        f", max {max(colds):.3f} s over {args.runs} runs"
    )

    warms = []
    for _ in range(args.runs):
        started = time.perf_counter()
        sim = start_simulator("demo")
        warms.append(time.perf_counter() - started)
        if len(warms) == 1:
            context = ssl.create_default_context(cafile=str(sim.ca_path))
            with httpx.Client(verify=context, trust_env=False) as http:
                first = time.perf_counter()
                for url in (
                    sim.urls.credly_web,
                    sim.urls.credly_api,
                    sim.urls.entra,
                    sim.urls.graph,
                ):
                    http.get(url + "/")
                print(
                    f"first HTTPS answer from all 4 services: {time.perf_counter() - first:.3f} s"
                )
        sim.stop()
    print(f"demo warm start (same process): median {statistics.median(warms):.3f} s")

    started = time.perf_counter()
    scenario = generate(args.users, args.badges, seed=1)
    generated = time.perf_counter() - started
    started = time.perf_counter()
    sim = start_simulator(scenario, copy=False)
    large = time.perf_counter() - started
    sim.stop()
    print(
        f"generate({args.users} users, {args.badges} badges): {generated:.2f} s; "
        f"start with it: {large:.2f} s"
    )

    verdict = "meets" if max(colds) < TARGET_SECONDS else "MISSES"
    print(
        f"target: demo start under {TARGET_SECONDS:.0f} s -> {verdict} "
        f"(worst cold start {max(colds):.3f} s)"
    )


if __name__ == "__main__":
    main()
