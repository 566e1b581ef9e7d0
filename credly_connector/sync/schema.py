"""The one schema every credlyctl connection carries (setup registers it, diagnostics check it).

Property names are ours; the labels are what tells Microsoft 365 what the values mean
(microsoft-graph.md §1.2). Changing this schema would force re-ingesting every item.
"""

from __future__ import annotations

from typing import Any

ACCOUNT_PROPERTY = "account"
AWARDS_PROPERTY = "awards"
CERTIFICATIONS_PROPERTY = "certifications"

SCHEMA_PROPERTIES: tuple[dict[str, Any], ...] = (
    {"name": ACCOUNT_PROPERTY, "type": "string", "labels": ["personAccount"]},
    {"name": AWARDS_PROPERTY, "type": "stringCollection", "labels": ["personAwards"]},
    {
        "name": CERTIFICATIONS_PROPERTY,
        "type": "stringCollection",
        "labels": ["personCertifications"],
    },
)

SCHEMA_BASE_TYPE = "microsoft.graph.externalItem"


def schema_body() -> dict[str, Any]:
    """The PATCH body for `/external/connections/{id}/schema`."""
    return {"baseType": SCHEMA_BASE_TYPE, "properties": [dict(p) for p in SCHEMA_PROPERTIES]}


def _shape(prop: dict[str, Any]) -> tuple[str, str, tuple[str, ...]]:
    labels = prop.get("labels") or []
    return (
        str(prop.get("name", "")).lower(),
        str(prop.get("type", "")).lower(),
        tuple(sorted(str(label) for label in labels)),
    )


def schema_differences(remote: dict[str, Any]) -> list[str]:
    """What differs between a schema read from Graph and ours; empty when they are the same.

    Only name, type and labels matter: Graph ignores the search flags for people data.
    """
    remote_props = remote.get("properties")
    if not isinstance(remote_props, list):
        return ["the connection has no schema properties"]
    theirs = {s[0]: s for s in (_shape(p) for p in remote_props if isinstance(p, dict))}
    ours = {s[0]: s for s in (_shape(p) for p in SCHEMA_PROPERTIES)}
    differences: list[str] = []
    for name, shape in ours.items():
        other = theirs.get(name)
        if other is None:
            differences.append(f"property '{name}' is missing")
        elif other != shape:
            differences.append(
                f"property '{name}' is {other[1]} labelled {list(other[2])}, "
                f"expected {shape[1]} labelled {list(shape[2])}"
            )
    for name in sorted(set(theirs) - set(ours)):
        differences.append(f"property '{name}' is not part of credlyctl's schema")
    return differences
