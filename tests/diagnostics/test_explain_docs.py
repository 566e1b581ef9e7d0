"""docs/troubleshooting.md covers every row of Microsoft's table and every user cause id."""

from __future__ import annotations

import re
from pathlib import Path

from credly_connector.diagnostics import registry
from credly_connector.diagnostics.model import TABLE_ROWS

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "troubleshooting.md").read_text(encoding="utf-8")
USER_CHECKS = ROOT / "credly_connector" / "diagnostics" / "checks" / "user_checks.py"


def test_every_table_row_has_a_section_naming_its_checks() -> None:
    for row in TABLE_ROWS:
        assert f"Row key `{row}`" in DOC, row
    for check in registry.all_checks():
        for row in check.table_rows:
            section = DOC.split(f"Row key `{row}`", 1)[1].split("\n## ", 1)[0]
            if check.scope == "user":
                assert f"`{check.id}`" in section, (row, check.id)


def test_every_user_cause_id_is_documented() -> None:
    causes = set(re.findall(r'cause="([a-z_]+)"', USER_CHECKS.read_text(encoding="utf-8")))
    causes |= set(re.findall(r'"(badge_[a-z_]+)",\n', USER_CHECKS.read_text(encoding="utf-8")))
    assert causes
    missing = sorted(c for c in causes if f"`{c}`" not in DOC)
    assert not missing
