"""`-q/--quiet` for scripts: errors only on stderr; each warning once per run otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from credly_connector.cli import output
from credly_connector.cli.app import app
from tests.config.cfg import SECRET_ENV, config, instance, write


def _custom_host_config(tmp_path: Path) -> Path:
    data = config(a=instance(), b=instance())
    for name in ("a", "b"):
        data["instances"][name]["credly"]["api_url"] = "https://127.0.0.1:8443/v1"
        data["instances"][name]["network"] = {"allow_custom_hosts": True}
    return write(tmp_path / "c.toml", data)


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=SECRET_ENV)
    return result.exit_code, result.stdout, result.stderr


def test_without_quiet_the_custom_host_warning_shows_once(tmp_path: Path) -> None:
    path = _custom_host_config(tmp_path)
    code, stdout, stderr = _run("config", "show", "--config", str(path), "--instance", "a")
    assert code == 0
    assert stderr.count("Warning: ") == 1
    assert "allow_custom_hosts is on" in stderr
    assert "[credly]" in stdout


@pytest.mark.parametrize("flag", ["-q", "--quiet"])
def test_quiet_keeps_warnings_off_stderr_and_stdout_unchanged(tmp_path: Path, flag: str) -> None:
    path = _custom_host_config(tmp_path)
    args = ("config", "show", "--config", str(path), "--instance", "a")
    _, loud_stdout, _ = _run(*args)
    code, stdout, stderr = _run(flag, *args)
    assert (code, stderr) == (0, "")
    assert stdout == loud_stdout


def test_quiet_from_the_environment(tmp_path: Path) -> None:
    path = _custom_host_config(tmp_path)
    result = CliRunner().invoke(
        app,
        ["config", "show", "--config", str(path), "--instance", "a"],
        env={**SECRET_ENV, "CREDLYCTL_QUIET": "1"},
    )
    assert (result.exit_code, result.stderr) == (0, "")


def test_quiet_still_prints_errors(tmp_path: Path) -> None:
    code, _, stderr = _run("-q", "config", "show", "--config", str(tmp_path / "missing.toml"))
    assert code == 2
    assert stderr.startswith("Error: ")
    assert "Hint: " in stderr


def test_quiet_does_not_outlive_its_run(tmp_path: Path) -> None:
    path = _custom_host_config(tmp_path)
    args = ("config", "show", "--config", str(path), "--instance", "a")
    _run("-q", *args)
    assert "Warning: " in _run(*args)[2]


def test_a_warning_repeated_by_several_sections_is_printed_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    output.start_run(quiet=False)
    for _ in range(3):
        output.warn("allow_custom_hosts is on")
    output.warn("another warning")
    assert capsys.readouterr().err.splitlines() == [
        "Warning: allow_custom_hosts is on",
        "Warning: another warning",
    ]
    output.start_run(quiet=False)  # a new run warns again
    output.warn("allow_custom_hosts is on")
    assert capsys.readouterr().err == "Warning: allow_custom_hosts is on\n"
