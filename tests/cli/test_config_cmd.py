"""`config show` (redacted, with origins) and `config init` (private file, no silent overwrite)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from credly_connector.cli.app import app
from credly_connector.config.findings import Severity
from credly_connector.config.validate import validate_config
from tests.cli.schema_check import validate_output
from tests.config.cfg import CREDLY_SECRET, ENTRA_SECRET, ORG, SECRET_ENV, config, write


def _show(path: Path, *extra: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app, ["config", "show", "--config", str(path), *extra], env={**SECRET_ENV, **(env or {})}
    )
    return result.exit_code, result.stdout, result.stderr


def test_show_redacts_secrets_and_names_their_source(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", config())
    code, stdout, stderr = _show(path)
    assert code == 0
    assert CREDLY_SECRET not in stdout + stderr
    assert ENTRA_SECRET not in stdout + stderr
    assert "client_secret = <secret from env:T_CREDLY_SECRET, sha256:" in stdout
    assert f"org_id = {ORG}   (file)" in stdout
    assert "token_url = https://www.credly.com/oauth/token" in stdout


def test_show_json(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", config())
    code, stdout, _ = _show(path, "--json", env={"CREDLYCTL_SYNC_FULL_INTERVAL_DAYS": "3"})
    assert code == 0
    document = validate_output(stdout)
    secret = document["settings"]["credly"]["client_secret"]
    assert secret["source"] == "env:T_CREDLY_SECRET"
    assert secret["fingerprint"].startswith("sha256:")
    assert document["settings"]["sync"]["full_interval_days"] == 3
    assert document["origins"]["sync.full_interval_days"] == "env:CREDLYCTL_SYNC_FULL_INTERVAL_DAYS"
    assert document["settings"]["credly"]["api_base"] == "https://api.credly.com/v1"


def test_show_masks_a_proxy_password(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", config())
    code, stdout, _ = _show(
        path, "--json", env={"HTTPS_PROXY": "http://alice:Pr0xy-Pa55word@proxy.contoso.com:8080"}
    )
    assert code == 0
    assert "Pr0xy-Pa55word" not in stdout
    assert validate_output(stdout)["settings"]["network"]["proxy"] == (
        "http://alice:***@proxy.contoso.com:8080"
    )


def test_show_prints_warnings_on_stderr(tmp_path: Path) -> None:
    data = config()
    data["instances"]["contoso"]["network"] = {"allow_custom_hosts": True}
    code, stdout, stderr = _show(write(tmp_path / "c.toml", data))
    assert code == 0
    assert stderr.startswith("Warning: CFG019 warning")
    assert "CFG019" not in stdout


def test_show_configuration_error_exits_2(tmp_path: Path) -> None:
    data = config()
    data["instances"]["contoso"]["credly"]["org_id"] = "contoso"
    code, stdout, stderr = _show(write(tmp_path / "c.toml", data))
    assert code == 2
    assert stdout == ""
    assert stderr.startswith("Error: instances.contoso.credly.org_id: ")
    assert "\nHint: " in stderr
    code, stdout, _ = _show(tmp_path / "c.toml", "--json")
    document = validate_output(stdout)
    assert (code, document["status"], document["error"]["id"]) == (2, "error", "CFG005")


def _init(path: Path, *extra: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["config", "init", "--config", str(path), *extra])
    return result.exit_code, result.stdout, result.stderr


def test_init_writes_a_private_commented_starter(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "credlyctl.toml"
    code, stdout, _ = _init(path, "--instance", "fabrikam")
    assert code == 0
    assert str(path) in stdout
    if os.name != "nt":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "[instances.fabrikam.credly]" in text
    assert text.count("#") > 20
    report = validate_config(path)
    # Only the blanks the admin must fill in: no unknown keys, no syntax or shape problems.
    assert {f.id for f in report.findings} <= {"CFG004", "CFG010"}
    assert all(f.severity == Severity.ERROR for f in report.findings)


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    path = tmp_path / "credlyctl.toml"
    path.write_text("# mine\n")
    code, stdout, stderr = _init(path)
    assert code == 2
    assert stderr.startswith(f"Error: {path} already exists.")
    assert "--force" in stderr
    assert path.read_text() == "# mine\n"
    code, stdout, _ = _init(path, "--force", "--json")
    assert code == 0
    document = validate_output(stdout)
    assert document["overwritten"] is True
    assert "[instances.main.credly]" in path.read_text()


def test_init_default_location_is_the_user_config_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["config", "init", "--json"])
    assert result.exit_code == 0
    document = validate_output(result.stdout)
    assert document["config_path"] == str(tmp_path / "xdg-config" / "credlyctl" / "config.toml")


@pytest.mark.parametrize("name", ["bad name", "../escape", ""])
def test_init_rejects_unusable_instance_names(tmp_path: Path, name: str) -> None:
    code, _, stderr = _init(tmp_path / "c.toml", "--instance", name)
    assert code == 2
    assert stderr.startswith("Error: ")
    assert not (tmp_path / "c.toml").exists()
