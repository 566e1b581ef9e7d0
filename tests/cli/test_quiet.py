"""`-q/--quiet` for scripts: no progress or notes on stderr; warnings (each once per run) and
errors still show."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from credly_connector.cli.app import app
from credly_connector.cli.terminal import configure
from tests.config.cfg import ORG, SECRET_ENV, config, instance, write


def _custom_host_config(tmp_path: Path) -> Path:
    data = config(a=instance(), b=instance())
    for name in ("a", "b"):
        data["instances"][name]["credly"]["api_url"] = "https://127.0.0.1:8443/v1"
        data["instances"][name]["network"] = {"allow_custom_hosts": True}
    return write(tmp_path / "c.toml", data)


def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={**SECRET_ENV, **(env or {})})
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("flag", ["-q", "--quiet"])
def test_quiet_hides_notes_and_keeps_stdout(flag: str) -> None:
    # An upper-case ID is valid: its canonical form goes to stdout, a note to stderr.
    loud = _run("validate-org-id", ORG.upper())
    assert loud[0] == 0 and loud[2] != ""
    assert _run(flag, "validate-org-id", ORG.upper()) == (0, loud[1], "")


def test_quiet_hides_the_next_step_of_config_init(tmp_path: Path) -> None:
    loud = _run("config", "init", "--config", str(tmp_path / "a.toml"))
    assert "Next:" in loud[2]
    quiet = _run("-q", "config", "init", "--config", str(tmp_path / "b.toml"))
    assert (quiet[0], quiet[2]) == (0, "")


def test_quiet_from_the_environment() -> None:
    code, _, stderr = _run("validate-org-id", ORG.upper(), env={"CREDLYCTL_QUIET": "1"})
    assert (code, stderr) == (0, "")


@pytest.mark.parametrize("flags", [(), ("-q",)])
def test_the_custom_host_warning_shows_once_quiet_or_not(
    tmp_path: Path, flags: tuple[str, ...]
) -> None:
    path = _custom_host_config(tmp_path)
    code, stdout, stderr = _run(*flags, "config", "show", "--config", str(path), "--instance", "a")
    assert code == 0
    assert stderr.count("Warning: ") == 1
    assert "allow_custom_hosts is on" in stderr
    assert "[credly]" in stdout


def test_quiet_still_prints_errors(tmp_path: Path) -> None:
    code, _, stderr = _run("-q", "config", "show", "--config", str(tmp_path / "missing.toml"))
    assert code == 2
    assert stderr.startswith("Error: ")
    assert "Hint: " in stderr


def test_quiet_does_not_outlive_its_run() -> None:
    _run("-q", "validate-org-id", ORG.upper())
    assert _run("validate-org-id", ORG.upper())[2] != ""


def test_a_warning_repeated_by_several_sections_is_printed_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    term = configure(quiet=True)  # quiet or not, each warning shows once
    for _ in range(3):
        term.warning("allow_custom_hosts is on")
    term.warning("another warning")
    assert capsys.readouterr().err.splitlines() == [
        "Warning: allow_custom_hosts is on",
        "Warning: another warning",
    ]
    configure().warning("allow_custom_hosts is on")  # a new run warns again
    assert capsys.readouterr().err == "Warning: allow_custom_hosts is on\n"
