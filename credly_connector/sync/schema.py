"""The one schema every credlyctl connection carries (setup registers it, diagnostics check it).

Property names are ours; the labels are what tells Microsoft 365 what the values mean
(microsoft-graph.md §1.2). Changing this schema would force re-ingesting every item.
"""

from __future__ import annotations

from typing import Any

from credly_connector.identity.item_schema import (
    ACCOUNT_PROPERTY,
    AWARDS_PROPERTY,
    CERTIFICATIONS_PROPERTY,
)

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


# What Graph answers in place of an evolvable enum member (the person labels are such
# members) when a read lacks `Prefer: include-unknown-enum-members`.
UNKNOWN_ENUM_MEMBER = "unknownFutureValue"


def _shape(prop: dict[str, Any]) -> tuple[str, str, tuple[str, ...]]:
    labels = prop.get("labels") or []
    return (
        str(prop.get("name", "")).lower(),
        str(prop.get("type", "")).lower(),
        tuple(sorted(str(label) for label in labels)),
    )


def _masked(shape: tuple[str, str, tuple[str, ...]]) -> bool:
    return UNKNOWN_ENUM_MEMBER.lower() in (shape[1], *(label.lower() for label in shape[2]))


def _remote_shapes(remote: dict[str, Any]) -> dict[str, tuple[str, str, tuple[str, ...]]]:
    props = remote.get("properties")
    items = props if isinstance(props, list) else []
    return {s[0]: s for s in (_shape(p) for p in items if isinstance(p, dict))}


def unreadable_properties(remote: dict[str, Any]) -> list[str]:
    """Properties whose type or labels Graph answered as `unknownFutureValue`.

    That means "not shown to this request" (the opt-in header was missing or ignored), never
    that the schema differs: such a property can be neither confirmed nor faulted.
    """
    return sorted(name for name, shape in _remote_shapes(remote).items() if _masked(shape))


def schema_differences(remote: dict[str, Any]) -> list[str]:
    """What differs between a schema read from Graph and ours; empty when they are the same.

    Only name, type and labels matter: Graph ignores the search flags for people data. A
    property read back as `unknownFutureValue` is not a difference (see
    `unreadable_properties`).
    """
    if not isinstance(remote.get("properties"), list):
        return ["the connection has no schema properties"]
    theirs = _remote_shapes(remote)
    ours = {s[0]: s for s in (_shape(p) for p in SCHEMA_PROPERTIES)}
    differences: list[str] = []
    for name, shape in ours.items():
        other = theirs.get(name)
        if other is None:
            differences.append(f"property '{name}' is missing")
        elif other != shape and not _masked(other):
            differences.append(
                f"property '{name}' is {other[1]} labelled {list(other[2])}, "
                f"expected {shape[1]} labelled {list(shape[2])}"
            )
    for name in sorted(set(theirs) - set(ours)):
        differences.append(f"property '{name}' is not part of credlyctl's schema")
    return differences


def unreadable_note(names: list[str]) -> str:
    """One sentence for setup and diagnose about labels Graph would not show."""
    return (
        "Microsoft Graph answered 'unknownFutureValue' for the labels of "
        + ", ".join(f"'{n}'" for n in names)
        + ": it did not honour `Prefer: include-unknown-enum-members`, so these labels could "
        "not be read (this does not mean they differ)"
    )
