"""Fixtures shared by the simulator's own tests."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from credly_connector.simulator.runner import Simulator
from tests.sim_fixtures import sim_http


@pytest.fixture
def http(sim: Simulator) -> Iterator[httpx.Client]:
    """An HTTPS client that trusts the simulator's certificate authority."""
    with sim_http(sim) as client:
        yield client
