"""Shared pieces of the sync benchmarks (sync_at_scale.py, sync_full_crawl.py).

The simulator serves the generated organization (`credly_connector.simulator.generator`,
seed 1) in its own process, so that a `credlyctl sync` process measured with `os.wait4` is
alone in its figures (peak RSS, CPU) and the simulator's work does not share the benchmark's
interpreter. Each crawl is a real `credlyctl` process, interpreter start included.

`os.wait4` and the peak RSS it reports make these scripts Unix-only; ru_maxrss is in KiB on
Linux (the machine the figures in docs/benchmarks.md come from), in bytes on macOS.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from _bytecode import compile_credlyctl

MAIN = "from credly_connector.cli.app import main; main()"
CONNECTION = "credlybadges"
# Credly pages read in parallel: the ceiling of sync.credly_page_concurrency, and its default.
CREDLY_PAGE_READS = 8


def _request_kind(service: str, method: str, path: str) -> str:
    """A simulator request log entry's kind, e.g. "GET credly.badges", "POST graph $batch"."""
    path = path.split("?")[0]
    if service == "credly-api":
        kind = "credly.badges" if path.endswith("/badges") else "credly.other"
    elif service == "graph":
        if path.endswith("/$batch"):
            kind = "graph $batch"
        elif "/users/delta" in path:
            kind = "graph users.delta"
        elif path.endswith("/users"):
            kind = "graph users"  # a page of the directory listing
        else:
            kind = "graph other"
    else:
        kind = service
    return f"{method} {kind}"


def _serve(conn: Connection, users: int, badges: int, latency: float) -> None:
    """The simulator process: answers the benchmark's commands over a pipe."""
    from credly_connector.simulator.generator import generate
    from credly_connector.simulator.runner import start_simulator

    scenario = generate(users=users, badges=badges, seed=1)
    organization = scenario["credly"]["organizations"][0]
    # An estimate of the items a full crawl writes, before any crawl: the people owning an
    # accepted public badge (the generator only makes accepted badges public). An upper
    # bound: some of those badges went to addresses no user has.
    owners = {b["user"]["email"] for b in organization["badges"] if b["public"]}
    with start_simulator(scenario) as sim:
        sim.set_faults(latency_seconds=latency)
        conn.send(len(owners))
        throttled_before = 0
        while True:
            command, argument = conn.recv()
            if command == "config":
                conn.send(sim.config_toml(state_dir=argument))
            elif command == "limit":
                sim.set_faults(graph_ingestion_limit_per_second=argument)
                conn.send(True)
            elif command == "switches":
                sim.set_switches(**argument)
                conn.send(True)
            elif command == "reset":
                sim.clear_request_log()
                throttled_before = len(sim.graph_throttled())
                conn.send(True)
            elif command == "requests":
                kinds = Counter(
                    _request_kind(e.service, e.method, e.path) for e in sim.request_log()
                )
                reasons = Counter(t["reason"] for t in sim.graph_throttled()[throttled_before:])
                conn.send((dict(sorted(kinds.items())), dict(reasons)))
            elif command == "change":
                # Give `argument` percent of the users holding an item one more badge.
                items = sorted(sim.graph_items(CONNECTION))
                chosen = items[:: max(1, round(100 / argument))]
                by_id = {u["id"].replace("-", ""): u for u in sim.directory.all_users()}
                for item_id in chosen:
                    sim.add_badge(
                        organization["id"],
                        state="accepted",
                        public=True,
                        accepted_at="2026-11-01T00:00:00Z",
                        recipient_email=by_id[item_id]["userPrincipalName"],
                        badge_template={"id": "bench", "name": "Benchmark badge"},
                    )
                conn.send(len(chosen))
            elif command == "items":
                conn.send(len(sim.graph_items(CONNECTION)))
            elif command == "stop":
                conn.send(True)
                return


@dataclass
class Requests:
    """What the simulator saw since the last `reset`: requests by kind, 429s by reason."""

    kinds: dict[str, int]
    throttled: dict[str, int] = field(default_factory=dict)

    @property
    def credly_pages(self) -> int:
        return self.kinds.get("GET credly.badges", 0)

    @property
    def user_pages(self) -> int:
        return self.kinds.get("GET graph users", 0)


class SimulatedOrg:
    """The simulator serving a generated organization of `users` and `badges`, in its own
    process, every request delayed by `latency` seconds."""

    def __init__(self, users: int, badges: int, latency: float) -> None:
        context = multiprocessing.get_context("spawn")
        self._control, child_end = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child_end, users, badges, latency), daemon=True
        )
        self._process.start()
        self.estimated_items: int = self._control.recv()

    def _ask(self, command: str, argument: Any = None) -> Any:
        self._control.send((command, argument))
        return self._control.recv()

    def set_limit(self, items_per_second: float | None) -> None:
        """Graph's ingestion limit, items per second per connection (None: none)."""
        self._ask("limit", items_per_second)

    def set_switches(self, **values: Any) -> None:
        """Simulator switches (inferred behaviours, simulator/knobs.py), e.g.
        credly_badge_sort="ignored"."""
        self._ask("switches", values)

    def reset(self) -> None:
        """Forget the requests and 429s seen so far (before a crawl)."""
        self._ask("reset")

    def requests(self) -> Requests:
        kinds, throttled = self._ask("requests")
        return Requests(kinds, throttled)

    def change(self, percent: float) -> int:
        """Give `percent` of the users holding an item one more badge; how many users."""
        changed: int = self._ask("change", percent)
        return changed

    def items(self) -> int:
        """The items the Graph connection holds."""
        count: int = self._ask("items")
        return count

    def configure(self, folder: Path, *sync_lines: str) -> Path:
        """Write a credlyctl configuration reaching the simulator, its state in `folder`, plus
        `sync_lines` in its [sync] section (none: the shipped defaults); run `setup`."""
        state = folder / "state"
        text: str = self._ask("config", str(state))
        marker = f'state_dir = "{state}"'
        if marker not in text:
            raise SystemExit(f"no {marker!r} line in the simulator's configuration")
        config = folder / "credlyctl.toml"
        config.write_text(text.replace(marker, "\n".join((marker, *sync_lines))), "utf-8")
        setup = run_credlyctl(config, "setup")
        if setup.exit_code != 0:
            raise SystemExit(f"credlyctl setup failed ({setup.exit_code}): {setup.error}")
        return config

    def close(self) -> None:
        if self._process.is_alive():
            self._ask("stop")
        self._process.join(timeout=30)

    def __enter__(self) -> SimulatedOrg:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Run:
    """One credlyctl process: its JSON document, wall seconds (interpreter start included),
    peak RSS in MB and CPU seconds (user + system), from os.wait4."""

    document: dict[str, Any]
    wall: float
    peak_mb: float
    cpu: float
    exit_code: int
    error: str

    @property
    def report(self) -> dict[str, Any]:
        """The (only) instance's sync report."""
        instances: list[dict[str, Any]] = self.document.get("instances") or [{}]
        return instances[0]


def run_credlyctl(config: Path, *args: str, profile: Path | None = None) -> Run:
    """Run `credlyctl ARGS --config CONFIG --json` as its own process and measure it.

    CPU (user + system) is the figure to compare on a loaded machine: wall time there mostly
    measures the other processes."""
    compile_credlyctl()
    with tempfile.TemporaryFile("w+") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-c", _profiled(profile), *args, "--config", str(config), "--json"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        assert process.stdout is not None
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        stderr.seek(0)
        error = stderr.read()[-800:]
    try:
        document = json.loads(output)
    except json.JSONDecodeError:
        document, error = {}, (error or output[-800:])
    if process.returncode != 0 and not error:
        error = json.dumps(document)[:800]
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return Run(
        document=document,
        wall=wall,
        peak_mb=usage.ru_maxrss / scale,
        cpu=usage.ru_utime + usage.ru_stime,
        exit_code=process.returncode,
        error=error,
    )


def _profiled(profile: Path | None) -> str:
    """The command to run: credlyctl's main, under cProfile when a profile file is asked."""
    if profile is None:
        return MAIN
    main = MAIN.replace("; ", "\n")
    return f"import cProfile; cProfile.run({main!r}, {str(profile)!r})"


def log_stamps(log: Path) -> dict[str, list[datetime]]:
    """The times of each event of a crawl's --log-file, by event name."""
    stamps: dict[str, list[datetime]] = {}
    if not log.exists():
        return stamps
    for line in log.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        stamps.setdefault(event["event"], []).append(datetime.fromisoformat(event["time"]))
    return stamps


def _write_start(stamps: dict[str, list[datetime]]) -> datetime | None:
    """When the crawl started writing: its earliest `write_start` event. A full crawl that
    refreshes the items its state knows writes before Credly has been read, so before its
    `plan` event; the crawl's first `plan` event stands in when no `write_start` was logged."""
    starts = stamps.get("write_start") or stamps.get("plan")
    return min(starts) if starts else None


def phases(stamps: dict[str, list[datetime]]) -> dict[str, float]:
    """Seconds spent reading, planning, writing and recording, from the crawl's log events.

    read: crawl start to the last read event (Credly, directory); plan: from there to the
    first `plan` event; write: the earliest `write_start` (or `plan`) to the last `batch`;
    record: from the later of plan and last batch to the crawl's end. When writing overlaps
    reading the phases add up to more than the crawl; none is negative."""
    if not stamps.get("crawl_start") or not stamps.get("crawl_end"):
        return {}
    start = stamps["crawl_start"][0]
    read_end = max(
        stamps.get("credly_read", [start])
        + stamps.get("users_listed", [start])
        + stamps.get("users_delta", [start])
    )
    plan = stamps.get("plan", [read_end])[0]
    write_start = _write_start(stamps) or plan
    write_end = max(stamps.get("batch", [write_start]))
    end = stamps["crawl_end"][0]

    def seconds(since: datetime, until: datetime) -> float:
        return max(0.0, (until - since).total_seconds())

    return {
        "read": seconds(start, read_end),
        "plan": seconds(read_end, plan),
        "write": seconds(write_start, write_end),
        "record": seconds(max(write_end, plan), end),
    }


def write_seconds(stamps: dict[str, list[datetime]]) -> float:
    """The write phase: from the crawl's earliest `write_start` event (its first `plan` event
    when it logged none) to its last `batch` event; 0 when it wrote no batch."""
    write_start = _write_start(stamps)
    if write_start is None or not stamps.get("batch"):
        return 0.0
    return max(0.0, (max(stamps["batch"]) - write_start).total_seconds())


def floor_seconds(
    items: int,
    limit: float,
    requests: Requests,
    latency: float,
    page_reads: int = CREDLY_PAGE_READS,
) -> float:
    """The fastest a crawl can be on the simulator's limits (issue 12):
    max(items / limit, Credly pages x latency / parallel page reads + user pages x latency).
    The directory pages are sequential (each carries the next one's link)."""
    read = requests.credly_pages * latency / page_reads + requests.user_pages * latency
    return max(items / limit, read)


def load_average() -> float:
    """The machine's 1-minute load average (nan where the system has none)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
