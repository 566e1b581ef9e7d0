"""How fast credlyctl starts, next to a minimal two-command Typer app (the floor we compare with).

Builds the minimal app in a temporary folder, then runs, interleaved so machine load hits both
alike: the minimal app's `--help`, `credlyctl --help`, `credlyctl validate-config` (on a valid
one-instance file), `credlyctl validate-org-id GUID` and `credlyctl config show`, each as a new
process, many times. Prints medians and the ratios to the minimal app's `--help`.
Goals (docs/benchmarks.md): `--help` within 1.5x, `validate-config` within 2x.

    python benchmarks/cli_startup.py [--runs 40] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bytecode import compile_credlyctl

MINIMAL_APP = '''
import typer

app = typer.Typer()


@app.command()
def hello(name: str) -> None:
    """Say hello."""
    print(f"Hello {name}")


@app.command()
def goodbye(name: str) -> None:
    """Say goodbye."""
    print(f"Goodbye {name}")


if __name__ == "__main__":
    app()
'''

CONFIG = """
[instances.contoso.credly]
org_id = "ba92621f-f22c-41e5-9157-c2dc274e3cf0"
client_id = "credly-client-id"
client_secret = { env = "BENCH_CREDLY_SECRET" }

[instances.contoso.entra]
tenant_id = "contoso.onmicrosoft.com"
client_id = "0f381ae3-f9d3-4545-9e21-dcda99431713"
client_secret = { env = "BENCH_ENTRA_SECRET" }
"""

GOALS = {"credlyctl --help": 1.5, "credlyctl validate-config": 2.0}


def credlyctl_command() -> list[str]:
    """The installed `credlyctl` next to this interpreter, as an admin runs it."""
    script = shutil.which("credlyctl", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "credly_connector"]


def _once(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0,):
        raise SystemExit(f"{argv} exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return elapsed


def measure(runs: int) -> dict[str, list[float]]:
    compile_credlyctl()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        (work / "minimal_app.py").write_text(MINIMAL_APP, encoding="utf-8")
        config = work / "config.toml"
        config.write_text(CONFIG, encoding="utf-8")
        config.chmod(0o600)
        env = {
            **os.environ,
            "BENCH_CREDLY_SECRET": "bench-credly-secret-value",
            "BENCH_ENTRA_SECRET": "bench-entra-secret-value",
            "CREDLYCTL_CONFIG": str(config),
            "COLUMNS": "100",
        }
        ctl = credlyctl_command()
        cases = {
            "minimal Typer app --help": [sys.executable, str(work / "minimal_app.py"), "--help"],
            "credlyctl --help": [*ctl, "--help"],
            "credlyctl validate-config": [*ctl, "validate-config"],
            "credlyctl validate-org-id": [
                *ctl,
                "validate-org-id",
                "ba92621f-f22c-41e5-9157-c2dc274e3cf0",
            ],
            "credlyctl config show": [*ctl, "config", "show"],
        }
        samples: dict[str, list[float]] = {label: [] for label in cases}
        for argv in cases.values():  # warm the file cache and bytecode once
            _once(argv, env)
        for _ in range(runs):
            for label, argv in cases.items():
                samples[label].append(_once(argv, env))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--json", type=Path, help="Also write the figures to this file.")
    args = parser.parse_args()
    samples = measure(args.runs)
    floor = statistics.median(samples["minimal Typer app --help"])
    figures = {}
    for label, values in samples.items():
        median = statistics.median(values)
        ratio = median / floor
        goal = GOALS.get(label)
        verdict = "" if goal is None else f"  goal {goal}x: {'met' if ratio <= goal else 'MISSED'}"
        print(
            f"{label:<28} median {median * 1000:7.1f} ms  min {min(values) * 1000:7.1f} ms"
            f"  ratio {ratio:4.2f}{verdict}"
        )
        figures[label] = {"median_s": median, "min_s": min(values), "ratio": ratio, "goal": goal}
    print(f"({args.runs} runs each, interleaved; Python {sys.version.split()[0]})")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
