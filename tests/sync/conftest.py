"""Fixtures shared by the sync tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from credly_connector.simulator.runner import Simulator, start_simulator
from tests.sync.simhelpers import bigger_scenario

EXTRA_USERS = 45  # with the demo's 4: 49 items, three batches of at most 20


@pytest.fixture
def big_sim() -> Iterator[Simulator]:
    with start_simulator(bigger_scenario(EXTRA_USERS)) as simulator:
        yield simulator
