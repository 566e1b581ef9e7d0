"""Fixtures for the client tests."""

from __future__ import annotations

import pytest

from tests.clients.helpers import FakeServer


@pytest.fixture
def fake() -> FakeServer:
    return FakeServer()
