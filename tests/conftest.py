"""Fixtures every test folder shares: isolation from the admin's environment, ../shared/."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = REPO_ROOT.parent / "shared"

# The simulator fixtures (`sim`, `fresh_sim`) are available to every test folder.
pytest_plugins = ["tests.sim_fixtures"]

_LEAKY_PREFIXES = ("CREDLYCTL_", "CREDLY_", "AZURE_", "MSAL_")
_LEAKY_NAMES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy")


def shared_path(*parts: str) -> Path:
    """A path under ../shared/; skips the test where it is absent, but never when CI=true."""
    path = SHARED_DIR.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} is missing, and CI=true requires ../shared/ to be present")
        pytest.skip(f"{path} is absent (a fresh clone without ../shared/)")
    return path


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test sees the developer's credlyctl settings, proxies or config folder."""
    for name in list(os.environ):
        if name.startswith(_LEAKY_PREFIXES) or name in _LEAKY_NAMES:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    yield
