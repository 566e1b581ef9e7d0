"""Hardening L2: values that passed validate-config and crashed (or hung) a later command.

Each is now refused where the configuration is read: validate-config names it (exit 1), and
every other command stops with a configuration error (exit 2) instead of exit 3 or 4.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from credly_connector.config.files import MAX_CONFIG_BYTES, read_toml
from credly_connector.config.load import load_instance
from credly_connector.config.validate import validate_config
from credly_connector.errors import ConfigError
from credly_connector.exit_codes import ExitCode
from tests.config.cfg import SECRET_ENV, config, write


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)


def _file(tmp_path: Path, section: str, **values: Any) -> Path:
    data = config()
    data["instances"]["contoso"].setdefault(section, {}).update(values)
    return write(tmp_path / "credlyctl.toml", data)


def _refused(path: Path, key: str) -> None:
    report = validate_config(path)
    assert report.exit_code(strict=False) is ExitCode.PROBLEMS
    assert any(key in f.path and f.is_error for f in report.findings), report.findings
    with pytest.raises(ConfigError):
        load_instance(path, None)


@pytest.mark.parametrize("key", ["full_interval_days", "incremental_interval_days"])
@pytest.mark.parametrize("value", [float("inf"), 1e308, float("nan")])
def test_endless_or_absurd_crawl_intervals_are_refused(
    tmp_path: Path, key: str, value: float
) -> None:
    _refused(_file(tmp_path, "sync", **{key: value}), key)


@pytest.mark.parametrize("value", [float("inf"), 1e300])
def test_endless_timeouts_are_refused(tmp_path: Path, value: float) -> None:
    _refused(_file(tmp_path, "network", timeout_seconds=value), "timeout_seconds")


@pytest.mark.parametrize(
    "text",
    [
        "a = " + "[" * 5000 + "]" * 5000,
        "a = " + "{b = " * 3000 + "1" + "}" * 3000,
    ],
    ids=["arrays", "inline-tables"],
)
def test_deeply_nested_toml_is_a_syntax_error_not_a_crash(tmp_path: Path, text: str) -> None:
    path = write(tmp_path / "deep.toml", text)
    failure = read_toml(path)
    assert not isinstance(failure, dict) and failure.kind == "syntax"
    assert "nested" in failure.message
    assert validate_config(path).exit_code(strict=False) is ExitCode.USAGE
    with pytest.raises(ConfigError):
        load_instance(path, None)


def test_nul_byte_in_a_secret_file_path_is_refused(tmp_path: Path) -> None:
    data = config()
    data["instances"]["contoso"]["credly"]["client_secret"] = {"file": "secret\x00.txt"}
    _refused(write(tmp_path / "credlyctl.toml", data), "client_secret")


def test_nul_byte_in_the_state_folder_is_refused(tmp_path: Path) -> None:
    _refused(_file(tmp_path, "sync", state_dir="state\x00dir"), "state_dir")


def test_a_ca_bundle_of_random_bytes_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_bytes(os.urandom(2048))
    _refused(_file(tmp_path, "network", ca_bundle="ca.pem"), "ca_bundle")


def test_a_huge_configuration_file_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "huge.toml"
    path.write_bytes(b"# " + b"x" * (MAX_CONFIG_BYTES + 10))
    failure = read_toml(path)
    assert not isinstance(failure, dict) and "larger than" in failure.message


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero on this system")
def test_config_dev_zero_ends_quickly() -> None:
    started = time.monotonic()
    failure = read_toml(Path("/dev/zero"))
    assert not isinstance(failure, dict)
    assert time.monotonic() - started < 30  # it read forever before


@pytest.mark.skipif(sys.platform == "win32", reason="no /dev/zero on Windows")
def test_a_secret_file_of_dev_zero_ends_quickly(tmp_path: Path) -> None:
    data = config()
    data["instances"]["contoso"]["credly"]["client_secret"] = {"file": "/dev/zero"}
    _refused(write(tmp_path / "credlyctl.toml", data), "client_secret")
