"""credlyctl demo: runs end to end on the simulated tenant and covers every table row."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from credly_connector.cli.app import app
from credly_connector.diagnostics.model import TABLE_ROWS
from tests.cli.schema_check import validate_output
from tests.diagnostics.explain_support import scenario_secrets

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# The expected-behaviour row shows as a note on the healthy user, not as a cause.
NOT_CAUSES = {"copilot-cites-office"}


def test_demo_json_covers_every_row_as_scripted() -> None:
    result = CliRunner().invoke(app, ["demo", "--json"])
    document = validate_output(result.stdout)
    assert result.exit_code == 0, document
    assert document["simulated"] is True and document["as_scripted"] is True
    diagnosed = [s for s in document["steps"] if s["kind"] == "diagnose"]
    staged = {s["row"] for s in diagnosed if s["row"]}
    assert staged == set(TABLE_ROWS) - NOT_CAUSES
    for step in diagnosed:
        if step["row"]:
            assert step["row"] in step["rows"], step
        else:  # the healthy user
            assert step["exit_code"] == 0 and step["causes"] == []
            assert any("office.com" in n for n in step["notes"])
    kinds = [s["kind"] for s in document["steps"]]
    assert kinds[:4] == ["setup", "diagnose", "sync", "status"]


def test_demo_human_output_is_labelled_and_leaks_nothing() -> None:
    result = CliRunner().invoke(app, ["demo"], env={"NO_COLOR": "1", "COLUMNS": "200"})
    assert result.exit_code == 0, result.stdout
    assert result.stdout.startswith("SIMULATED DATA")
    assert "$ credlyctl diagnose alex.wilber@contoso.com" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    leaked = [s for s in scenario_secrets() if s in result.stdout + result.stderr]
    assert not leaked
