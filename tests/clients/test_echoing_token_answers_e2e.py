"""H2 and M1 end to end: a token endpoint answer that echoes the form never shows the secret.

Through the real CLI, over HTTPS, against the simulator's fault `entra_token_answer`: stdout,
stderr (no --debug, then --debug), the state database and the support bundle are searched
for the Entra secret in every form it travels in.
"""

from __future__ import annotations

import json
import sqlite3
import zipfile
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from credly_connector.simulator.runner import Simulator
from tests.sync.simhelpers import cli

pytestmark = pytest.mark.integration

# Characters that URL encoding changes (+ / =): the echo carries the encoded form (finding M1).
# The stand-in answers before any secret is checked, so it need not be the app's.
SECRET = "Ab3+xY/9Qz=Kk8~Lm.Nn_Pp-Rr+Ss/Tt=Uu"


def _forms() -> list[str]:
    encoded = quote(SECRET, safe="")
    return [SECRET, encoded, quote_plus(SECRET), encoded.lower(), SECRET.split("+")[1]]


def _assert_clean(text: str) -> None:
    for form in _forms():
        assert form not in text


@pytest.mark.parametrize(
    ("answer", "exit_code", "fragment"),
    [
        ("echo_text", 3, "not JSON"),
        ("html_200", 3, "not JSON"),
        ("redirect_307", 3, "redirect (HTTP 307) to https://127.0.0.2:9"),
        ("echo_aadsts", 2, "AADSTS99999"),
    ],
)
def test_an_echoing_token_answer_leaks_nothing_anywhere(
    fresh_sim: Simulator, tmp_path: Path, answer: str, exit_code: int, fragment: str
) -> None:
    config = fresh_sim.write_config(tmp_path / "c.toml", state_dir=tmp_path / "state")
    setup_config = tmp_path / "setup.toml"  # setup signs in with the app's real secret
    setup_config.write_text(config.read_text(), encoding="utf-8")
    config = fresh_sim.write_config(
        tmp_path / "c.toml", state_dir=tmp_path / "state", entra_secret=SECRET
    )
    assert cli(setup_config, "setup").returncode == 0
    fresh_sim.set_faults(entra_token_answer=answer)
    shown = ""
    for args in (
        ("sync", "--full", "--json"),
        ("--debug", "sync", "--full"),
        ("test-credentials",),
    ):
        done = cli(config, *args)
        shown += done.stdout + done.stderr
        if "sync" in args:
            assert done.returncode == exit_code, done.stdout + done.stderr
    assert fragment in shown
    assert "certificate PEM" not in shown and "JSONDecodeError" not in shown
    everything = shown
    bundle = tmp_path / "bundle.zip"
    cli(config, "support-bundle", "-o", str(bundle))
    with zipfile.ZipFile(bundle) as archive:
        for name in archive.namelist():
            everything += archive.read(name).decode("utf-8", "replace")
    databases = list((tmp_path / "state").rglob("*.sqlite3"))
    assert databases
    for database in databases:
        with sqlite3.connect(database) as connection:
            for (table,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'"):
                everything += json.dumps(connection.execute(f"SELECT * FROM {table}").fetchall())
    _assert_clean(everything)
