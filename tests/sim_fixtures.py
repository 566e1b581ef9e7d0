"""Simulator fixtures for every test folder.

Registered for all tests through `pytest_plugins` in tests/conftest.py, so a test just asks
for `sim` (one demo simulator per module: do not mutate it) or `fresh_sim` (a new one per
test: mutate freely). Both run the shipped demo scenario with its expectations stripped.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import httpx
import pytest

from credly_connector.simulator.runner import Simulator, start_simulator


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with start_simulator("demo") as simulator:
        yield simulator


@pytest.fixture
def fresh_sim() -> Iterator[Simulator]:
    with start_simulator("demo") as simulator:
        yield simulator


def sim_ssl_context(simulator: Simulator) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(simulator.ca_path))


def sim_http(simulator: Simulator, **options: object) -> httpx.Client:
    """An httpx client trusting only the simulator's CA and ignoring proxy/CA env vars."""
    return httpx.Client(verify=sim_ssl_context(simulator), trust_env=False, **options)  # type: ignore[arg-type]
