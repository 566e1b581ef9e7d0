"""End to end: the installed `credlyctl` program in a subprocess, as an admin or CI runs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.schema_check import validate_output
from tests.config.cfg import ALL_SECRETS, ORG, SECRET_ENV, config, write


def _program() -> str:
    beside = Path(sys.executable).with_name("credlyctl")
    found = str(beside) if beside.exists() else shutil.which("credlyctl")
    if found is None:
        pytest.fail("the credlyctl console script is not installed (pip install -e .)")
    return found


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_program(), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env={**os.environ, **SECRET_ENV, **(env or {})},
        timeout=120,
        check=False,
    )


def _plain(result: subprocess.CompletedProcess[str]) -> None:
    """No traceback and no colour codes (stdout is not a terminal, NO_COLOR is set)."""
    text = result.stdout + result.stderr
    assert "Traceback" not in text
    assert "\x1b[" not in text


def test_valid_org_id() -> None:
    result = _run("validate-org-id", ORG.upper())
    assert (result.returncode, result.stdout) == (0, ORG + "\n")
    _plain(result)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("{" + ORG + "}", "braces"),
        (f"https://www.credly.com/organizations/{ORG}", "url"),
        ("contoso-university", "slug"),
        (ORG.replace("-", ""), "hyphens_missing"),
        ("\u00e9\u200b\U0001f600", "non_hex"),
    ],
)
def test_invalid_org_id(value: str, reason: str) -> None:
    result = _run("validate-org-id", "--", value)
    assert result.returncode == 1
    assert result.stderr.startswith(f"Invalid Organization ID ({reason}): ")
    _plain(result)
    as_json = _run("validate-org-id", "--json", "--", value)
    assert as_json.returncode == 1
    assert validate_output(as_json.stdout)["reason"] == reason


def test_validate_config_clean_and_broken(tmp_path: Path) -> None:
    good = write(tmp_path / "good.toml", config())
    result = _run("validate-config", "--config", str(good))
    assert result.returncode == 0, result.stdout
    _plain(result)
    data = config()
    data["instances"]["contoso"]["credly"]["base_url"] = "https://api.credly.com"
    data["instances"]["contoso"]["credly"]["client_secret"] = ALL_SECRETS[2]
    bad = write(tmp_path / "bad.toml", data, mode=0o644)
    result = _run("validate-config", "--config", str(bad))
    assert result.returncode == 1
    assert "CFG014 error instances.contoso.credly.base_url" in result.stdout
    assert "CFG017 warning" in result.stdout
    _plain(result)
    document = validate_output(_run("validate-config", "--json", "--config", str(bad)).stdout)
    assert document["summary"]["errors"] >= 1
    for secret in ALL_SECRETS:
        assert secret not in result.stdout + result.stderr


def test_unparseable_file_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('[instances.a.credly]\norg_id = "unterminated\n')
    result = _run("validate-config", "--config", str(path))
    assert result.returncode == 2
    assert result.stderr.startswith("Error: CFG001 ")
    assert "line 2" in result.stderr
    assert "\nHint: " in result.stderr
    _plain(result)


def test_init_then_show(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "credlyctl.toml"
    created = _run("config", "init", "--config", str(path))
    assert created.returncode == 0, created.stderr
    again = _run("config", "init", "--config", str(path))
    assert again.returncode == 2
    assert again.stderr.startswith("Error: ")
    write(path, config())
    shown = _run("config", "show", "--json", "--config", str(path))
    assert shown.returncode == 0, shown.stderr
    document = validate_output(shown.stdout)
    assert document["settings"]["credly"]["org_id"] == ORG
    for secret in ALL_SECRETS:
        assert secret not in shown.stdout + shown.stderr


def test_debug_traceback_only_on_request(tmp_path: Path) -> None:
    absent = str(tmp_path / "absent.toml")
    quiet = _run("config", "show", "--config", absent)
    assert quiet.returncode == 2
    _plain(quiet)
    loud = _run("config", "show", "--config", absent, env={"CREDLYCTL_DEBUG": "1"})
    assert loud.returncode == 2
    assert "Traceback (most recent call last)" in loud.stderr
