"""Secrets set in a configuration never appear in any output of the configuration commands.

Every secret form is used (environment reference, file reference, inline, CREDLYCTL_* variable),
in valid and broken configurations, in human, --json and --debug modes; no 6-character piece
of any secret may appear on stdout or stderr.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from credly_connector.cli.app import app
from tests.config.cfg import (
    ALL_SECRETS,
    CREDLY_SECRET,
    ENTRA_SECRET,
    FILE_SECRET,
    INLINE_SECRET,
    ORG,
    SECRET_ENV,
    config,
    write,
)

PIECE = 6


def _pieces() -> set[str]:
    return {s[i : i + PIECE] for s in ALL_SECRETS for i in range(len(s) - PIECE + 1)}


def _assert_clean(text: str) -> None:
    leaked = sorted(piece for piece in _pieces() if piece in text)
    assert not leaked, f"secret pieces in output: {leaked}"


def _every_form(tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "entra-secret.txt").write_text(FILE_SECRET + "\n")
    data = config()
    contoso = data["instances"]["contoso"]
    contoso["credly"]["client_secret"] = INLINE_SECRET
    contoso["entra"]["client_secret"] = {"file": "entra-secret.txt"}
    return data


def _broken(tmp_path: Path) -> dict[str, Any]:
    data = copy.deepcopy(_every_form(tmp_path))
    contoso = data["instances"]["contoso"]
    contoso["credly"]["org_id"] = ORG.upper() + "x"
    contoso["credly"]["authorization_token"] = {"value": CREDLY_SECRET, "env": "T_CREDLY_SECRET"}
    contoso["entra"]["certificate_password"] = ENTRA_SECRET
    contoso["entra"]["tenant_id"] = "common"
    contoso["network"] = {"proxy": f"http://user:{FILE_SECRET}@"}
    return data


COMMANDS = [
    ["validate-config"],
    ["validate-config", "--json"],
    ["validate-config", "--strict", "--json"],
    ["config", "show"],
    ["config", "show", "--json"],
    ["--debug", "config", "show"],
    ["--debug", "validate-config"],
]


@pytest.mark.parametrize("builder", [_every_form, _broken])
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_no_secret_in_any_output(tmp_path: Path, builder: Any, command: list[str]) -> None:
    path = write(tmp_path / "credlyctl.toml", builder(tmp_path), mode=0o644)
    env = {**SECRET_ENV, "CREDLYCTL_ENTRA_CERTIFICATE_PASSWORD": ENTRA_SECRET}
    result = CliRunner().invoke(app, [*command, "--config", str(path)], env=env)
    assert result.exit_code in (0, 1, 2), result.stdout + result.stderr
    assert result.stdout + result.stderr  # something was said
    _assert_clean(result.stdout)
    _assert_clean(result.stderr)


def test_secret_in_a_file_shown_only_by_source(tmp_path: Path) -> None:
    path = write(tmp_path / "credlyctl.toml", _every_form(tmp_path))
    result = CliRunner().invoke(app, ["config", "show", "--config", str(path)], env=SECRET_ENV)
    assert result.exit_code == 0
    assert f"<secret from file:{tmp_path / 'entra-secret.txt'}, sha256:" in result.stdout
    assert "<secret from inline, sha256:" in result.stdout
    _assert_clean(result.stdout + result.stderr)


def test_init_output_has_no_secret(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["config", "init", "--config", str(tmp_path / "new.toml")], env=SECRET_ENV
    )
    assert result.exit_code == 0
    _assert_clean(result.stdout + result.stderr + (tmp_path / "new.toml").read_text())
