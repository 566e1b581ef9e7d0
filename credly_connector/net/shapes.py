"""The shape of a JSON answer (keys and value types, never values) for errors and bundles."""

from __future__ import annotations

import json
import re
from typing import Any

_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,63}$")


def json_shape(value: Any, *, depth: int = 4) -> Any:
    """Keys and value types of a parsed JSON value; lists show the shape of their first item."""
    if isinstance(value, dict):
        if depth <= 0:
            return "object"
        return {str(k): json_shape(v, depth=depth - 1) for k, v in sorted(value.items())}
    if isinstance(value, list):
        if depth <= 0 or not value:
            return "array"
        return [json_shape(value[0], depth=depth - 1)]
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "null"


def body_shape(text: str) -> Any:
    """Shape of a response body: the JSON shape, or "empty" / "not-json"."""
    if not text.strip():
        return "empty"
    try:
        return json_shape(json.loads(text))
    except ValueError:
        return "not-json"


def safe_code(value: Any) -> str | None:
    """An error code from a server answer, only if it looks like an identifier (not free text)."""
    if isinstance(value, str) and _CODE.match(value):
        return value
    return None
