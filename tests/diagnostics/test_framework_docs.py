"""docs/checks.md documents every registered check and every check-endpoint finding."""

from __future__ import annotations

import json
import re
from pathlib import Path

from credly_connector.diagnostics import registry
from credly_connector.diagnostics.model import TABLE_ROWS

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "checks.md"


def _rows() -> dict[str, str]:
    """`id` -> its table row line, for every table row that starts with a backquoted id."""
    text = DOC.read_text(encoding="utf-8")
    return {m.group(1): m.group(0) for m in re.finditer(r"^\| `([a-z0-9_.\-]+)` \|.*$", text, re.M)}


def test_every_registered_check_has_a_documented_row() -> None:
    rows = _rows()
    missing = [c.id for c in registry.all_checks() if c.id not in rows]
    assert not missing, f"add these checks to docs/checks.md: {missing}"
    for check in registry.all_checks():
        assert check.title in rows[check.id], f"{check.id}: the title in the docs differs"


def test_every_check_has_cause_and_fix_for_the_docs() -> None:
    for check in registry.all_checks():
        assert check.cause and check.fix, check.id


def test_every_table_row_key_is_documented() -> None:
    rows = _rows()
    assert set(TABLE_ROWS) <= set(rows)
    for check in registry.all_checks():
        assert set(check.table_rows) <= set(TABLE_ROWS), check.id


def test_every_check_endpoint_finding_is_documented() -> None:
    schema = json.loads((ROOT / "docs/schemas/check-endpoint.schema.json").read_text("utf-8"))
    finding_ids = schema["$defs"]["finding"]["properties"]["id"]["enum"]
    rows = _rows()
    assert [f for f in finding_ids if f not in rows] == []
