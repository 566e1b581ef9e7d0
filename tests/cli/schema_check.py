"""Validate a command's --json output against docs/schemas/<command>.schema.json.

Other test folders may use it: `from tests.cli.schema_check import validate_output`.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def schema_file(command: str) -> Path:
    """`config show` -> docs/schemas/config-show.schema.json."""
    return SCHEMA_DIR / f"{command.replace(' ', '-')}.schema.json"


@cache
def registry() -> Registry:
    resources = []
    for path in sorted(SCHEMA_DIR.glob("*.schema.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        resources.append((contents["$id"], Resource.from_contents(contents)))
    return Registry().with_resources(resources)


def validator(command: str) -> Draft202012Validator:
    schema = json.loads(schema_file(command).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=registry())


def validate_output(stdout: str) -> dict[str, Any]:
    """Parse stdout as exactly one JSON document and validate it; returns the document."""
    document = json.loads(stdout)
    assert isinstance(document, dict), "--json must print one JSON object"
    validator(document["command"]).validate(document)
    return document
