"""The docs agree with the code: CLI reference, configuration keys, finding ids, reasons."""

from __future__ import annotations

import json
import re
from pathlib import Path

from credly_connector.cli import docgen
from credly_connector.config.findings import CATALOGUE
from credly_connector.config.raw import SECTIONS
from tests.cli.schema_check import SCHEMA_DIR

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_cli_reference_is_up_to_date() -> None:
    committed = (DOCS / "cli-reference.md").read_text(encoding="utf-8")
    assert committed == docgen.render(), (
        "docs/cli-reference.md is stale; regenerate it with: " + docgen.REGENERATE
    )


def test_cli_reference_documents_every_command_and_option() -> None:
    text = docgen.render()
    for path, command in docgen.walk(docgen.root_command()):
        assert f"`{' '.join(path)}`" in text
        for param in command.params:
            if not docgen.is_argument(param):
                assert f"`{param.opts[0]}`" in text


def _configuration() -> str:
    return (DOCS / "configuration.md").read_text(encoding="utf-8")


def test_every_key_and_its_environment_variable_is_documented() -> None:
    text = _configuration()
    for section, model in SECTIONS.items():
        table = text.split(f"## `[instances.<name>.{section}]`", 1)[1].split("\n## ", 1)[0]
        for key in model.model_fields:
            assert f"| `{key}` |" in table, f"{section}.{key} is not documented"
            assert f"CREDLYCTL_{section.upper()}_{key.upper()}" in table


def test_every_finding_id_is_documented_with_cause_and_fix() -> None:
    rows = {
        match.group(1): match.group(0)
        for match in re.finditer(r"^\| `(CFG\d{3})` \|.*\|$", _configuration(), re.M)
    }
    assert set(rows) == set(CATALOGUE)
    for row in rows.values():
        assert row.count("|") >= 5


def test_every_org_id_reason_is_documented() -> None:
    schema = json.loads((SCHEMA_DIR / "validate-org-id.schema.json").read_text(encoding="utf-8"))
    text = _configuration()
    for reason in schema["properties"]["reason"]["enum"]:
        assert f"| `{reason}` |" in text, reason
