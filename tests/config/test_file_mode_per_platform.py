"""CFG018 means what each platform means by file permissions (issue 11, item 1)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from credly_connector.cli.app import app
from tests.config.cfg import INLINE_SECRET, SECRET_ENV, config, write


def _findings(tmp_path: Path, mode: int) -> str:
    path = tmp_path / "credlyctl.toml"
    data = config()
    data["instances"]["contoso"]["credly"]["client_secret"] = INLINE_SECRET
    write(path, data, mode)
    result = CliRunner().invoke(app, ["validate-config", "--config", str(path)], env=SECRET_ENV)
    return result.stdout


def test_posix_mode_bits_readable_by_others_warn(tmp_path: Path) -> None:
    assert "CFG018 warning" in _findings(tmp_path, 0o644)
    assert "CFG018" not in _findings(tmp_path, 0o600)


def test_on_windows_the_acl_is_not_guessed_from_mode_bits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "credly_connector.config.resolve_secrets.mode_bits_control_access", lambda: False
    )
    for mode in (0o644, 0o600):  # Windows reports 0o666 or 0o444 whoever may read the file
        out = _findings(tmp_path, mode)
        assert "CFG018 info" in out and "icacls" in out and "CFG018 warning" not in out
