"""How long the offline configuration work takes (goal: unnoticeable, well under 100 ms).

Times load_instance on a one-instance file, validate_config on a file with many instances, and
the wall time of `credlyctl validate-org-id` / `validate-config` as a subprocess (dominated by
interpreter start-up and imports). Prints figures; no pass/fail.

    python benchmarks/config_validation.py [--runs 20] [--instances 200]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _bytecode import compile_credlyctl

from credly_connector.config.load import load_instance
from credly_connector.config.validate import validate_config

ORG = "ba92621f-f22c-41e5-9157-c2dc274e3cf0"


def _instance(name: str, index: int) -> str:
    org = f"{index:08x}-f22c-41e5-9157-c2dc274e3cf0"
    return f"""
[instances.{name}.credly]
org_id = "{org}"
client_id = "client-{index}"
client_secret = {{ env = "BENCH_SECRET" }}

[instances.{name}.entra]
tenant_id = "contoso.onmicrosoft.com"
client_id = "0f381ae3-f9d3-4545-9e21-dcda99431713"
client_secret = {{ env = "BENCH_SECRET" }}
"""


def _time(runs: int, action: Callable[[], object]) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return samples


def _report(label: str, samples: list[float]) -> None:
    median = statistics.median(samples) * 1000
    worst = max(samples) * 1000
    print(f"{label:<48} median {median:8.2f} ms   max {worst:8.2f} ms   ({len(samples)} runs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--instances", type=int, default=200)
    args = parser.parse_args()
    os.environ["BENCH_SECRET"] = "bench-secret-value"
    with tempfile.TemporaryDirectory() as folder:
        one = Path(folder) / "one.toml"
        one.write_text(_instance("contoso", 1))
        many = Path(folder) / "many.toml"
        many.write_text("".join(_instance(f"org{i}", i) for i in range(args.instances)))
        _report("load_instance, 1 instance", _time(args.runs, lambda: load_instance(one, None)))
        _report(
            f"validate_config, {args.instances} instances",
            _time(max(3, args.runs // 4), lambda: validate_config(many)),
        )
        program = shutil.which("credlyctl", path=str(Path(sys.executable).parent))
        if program is None:
            print("credlyctl is not installed next to this Python; skipping subprocess timings")
            return
        compile_credlyctl()
        env = {**os.environ, "NO_COLOR": "1"}
        for label, command in (
            ("credlyctl validate-org-id (subprocess)", [program, "validate-org-id", ORG]),
            (
                "credlyctl validate-config (subprocess)",
                [program, "validate-config", "--config", str(one)],
            ),
        ):
            samples = _time(
                max(3, args.runs // 4),
                lambda command=command: subprocess.run(  # type: ignore[misc]
                    command, capture_output=True, env=env, check=False
                ),
            )
            _report(label, samples)


if __name__ == "__main__":
    main()
