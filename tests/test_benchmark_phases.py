"""The sync benchmarks' reading of a crawl log (benchmarks/_simulated_org.py).

A full crawl after a complete one may start writing before Credly has been read, so before
its `plan` event: the write phase must start at the earliest `write_start`, and no phase may
come out negative. Figures only, no timing: the log times are made up here.
"""

from __future__ import annotations

import importlib.util
import sys
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "_simulated_org.py"
T0 = datetime(2026, 12, 2, 15, 0, 0)


@pytest.fixture(scope="module")
def org() -> ModuleType:
    # benchmarks/ is no package: load the module from its file. Its dataclasses look their
    # module up in sys.modules while they are built, so it is there while it loads.
    name = "benchmark_simulated_org"
    spec = importlib.util.spec_from_file_location(name, BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(BENCHMARK.parent))  # its sibling modules, as when run as a script
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
        sys.path.remove(str(BENCHMARK.parent))
    return module


def stamps(**seconds: list[float]) -> dict[str, list[datetime]]:
    return {event: [T0 + timedelta(seconds=s) for s in at] for event, at in seconds.items()}


def test_phases_in_sequence(org: ModuleType) -> None:
    # A first crawl: read, plan, then write; the write phase starts at write_start.
    log = stamps(
        crawl_start=[0],
        credly_read=[3],
        users_listed=[2],
        plan=[4],
        write_start=[4.5],
        batch=[5, 7],
        crawl_end=[8],
    )
    assert org.phases(log) == {"read": 3.0, "plan": 1.0, "write": 2.5, "record": 1.0}
    assert org.write_seconds(log) == 2.5


def test_writes_before_the_plan(org: ModuleType) -> None:
    # A full crawl refreshing known items while Credly is read: writes start at 1 s.
    log = stamps(
        crawl_start=[0],
        write_start=[1, 6],
        batch=[2, 3, 7],
        credly_read=[5],
        users_listed=[0.5],
        plan=[5.5],
        crawl_end=[7.5],
    )
    assert org.phases(log) == {"read": 5.0, "plan": 0.5, "write": 6.0, "record": 0.5}
    assert org.write_seconds(log) == 6.0


def test_all_writes_before_the_plan_leave_no_negative_phase(org: ModuleType) -> None:
    log = stamps(
        crawl_start=[0], write_start=[1], batch=[2], credly_read=[3], plan=[4], crawl_end=[5]
    )
    spent = org.phases(log)
    assert spent == {"read": 3.0, "plan": 1.0, "write": 1.0, "record": 1.0}
    assert min(spent.values()) >= 0


def test_without_write_start_the_plan_starts_the_write_phase(org: ModuleType) -> None:
    log = stamps(crawl_start=[0], credly_read=[1], plan=[2], batch=[3, 4], crawl_end=[5])
    assert org.phases(log)["write"] == 2.0
    assert org.write_seconds(log) == 2.0


def test_nothing_written(org: ModuleType) -> None:
    log = stamps(crawl_start=[0], credly_read=[1], plan=[2], write_start=[2.5], crawl_end=[3])
    assert org.write_seconds(log) == 0.0
    assert org.phases(log) == {"read": 1.0, "plan": 1.0, "write": 0.0, "record": 0.5}
    assert org.phases(stamps(crawl_start=[0])) == {}
