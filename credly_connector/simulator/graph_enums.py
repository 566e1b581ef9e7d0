"""Graph's external-connector enums in their metadata order, and the evolvable-enum rule.

Each tuple mirrors the member order of the enum in Graph's v1.0 metadata
(`microsoft.graph.externalConnectors.*` in v1.0-Prod.csdl), sentinel `unknownFutureValue`
included; tests/simulator/test_graph_enums.py compares them with the CSDL. Members declared
after the sentinel are *evolvable*: Graph only accepts and returns them when the request
carries `Prefer: include-unknown-enum-members`. Without it a read answers
`unknownFutureValue` in their place and a request using one is refused with 400
(microsoft/api-guidelines graph/patterns/evolvable-enums.md; the v1.0 `property` resource page
says the same for the person labels). The list is derived from this order, never hand-written.
"""

from __future__ import annotations

import copy
from typing import Any

from credly_connector.simulator.core import SimRequest
from credly_connector.simulator.graph_common import GraphError

SENTINEL = "unknownFutureValue"
INCLUDE_UNKNOWN = "include-unknown-enum-members"
_NAMESPACE = "microsoft.graph.externalConnectors"

LABEL_MEMBERS: tuple[str, ...] = (
    "title",
    "url",
    "createdBy",
    "lastModifiedBy",
    "authors",
    "createdDateTime",
    "lastModifiedDateTime",
    "fileName",
    "fileExtension",
    SENTINEL,
    "containerName",
    "containerUrl",
    "iconUrl",
    "assignedToPeople",
    "closedBy",
    "closedDate",
    "priority",
    "sprintName",
    "tags",
    "severity",
    "state",
    "dueDate",
    "itemParentId",
    "itemPath",
    "itemType",
    "numberOfReactions",
    "parentUrl",
    "priorityNormalized",
    "reportedBy",
    "secondaryId",
    "personEmails",
    "personAddresses",
    "personAnniversaries",
    "personName",
    "personNote",
    "personPhones",
    "personCurrentPosition",
    "personWebAccounts",
    "personWebSite",
    "personSkills",
    "personProjects",
    "personAccount",
    "personAwards",
    "personCertifications",
    "personAssistants",
    "personColleagues",
    "personManager",
    "personAlternateContacts",
    "personEmergencyContacts",
    "personEducationalActivities",
    "personInterests",
    "personLanguages",
    "personPublications",
    "personPatents",
    "personWorkPositions",
)
# The same enum in the US Government clouds' metadata (v1.0-Fairfax.csdl): no person labels.
FAIRFAX_LABEL_MEMBERS: tuple[str, ...] = (
    *LABEL_MEMBERS[: LABEL_MEMBERS.index(SENTINEL) + 1],
    "iconUrl",
)
PROPERTY_TYPE_MEMBERS: tuple[str, ...] = (
    "string",
    "int64",
    "double",
    "dateTime",
    "boolean",
    "stringCollection",
    "int64Collection",
    "doubleCollection",
    "dateTimeCollection",
    SENTINEL,
    "principal",
    "principalCollection",
)
CONTENT_CATEGORY_MEMBERS: tuple[str, ...] = (
    "uncategorized",
    "knowledgeBase",
    "wikis",
    "fileRepository",
    "qna",
    "crm",
    "dashboard",
    "people",
    "media",
    "email",
    "messaging",
    "meetingTranscripts",
    "taskManagement",
    "learningManagement",
    SENTINEL,
)

# Enum name (as in the CSDL) -> its members in order; what the CSDL test compares.
ORDERED_ENUMS: dict[str, tuple[str, ...]] = {
    "label": LABEL_MEMBERS,
    "propertyType": PROPERTY_TYPE_MEMBERS,
    "contentCategory": CONTENT_CATEGORY_MEMBERS,
}


def evolvable(members: tuple[str, ...]) -> frozenset[str]:
    """The members declared after the sentinel."""
    if SENTINEL not in members:
        return frozenset()
    return frozenset(members[members.index(SENTINEL) + 1 :])


def known(members: tuple[str, ...]) -> frozenset[str]:
    """What a client may send (the sentinel itself is refused on input)."""
    return frozenset(members) - {SENTINEL}


EVOLVABLE_LABELS = evolvable(LABEL_MEMBERS)
EVOLVABLE_TYPES = evolvable(PROPERTY_TYPE_MEMBERS)
EVOLVABLE_CATEGORIES = evolvable(CONTENT_CATEGORY_MEMBERS)


def wants_unknown_members(request: SimRequest) -> bool:
    """Whether the request's `Prefer` header holds include-unknown-enum-members."""
    prefer = request.header("prefer") or ""
    return any(part.strip().lower() == INCLUDE_UNKNOWN for part in prefer.split(","))


def applied_headers(request: SimRequest) -> dict[str, str]:
    """`Preference-Applied` when the preference was honoured (api-guidelines)."""
    return {"Preference-Applied": INCLUDE_UNKNOWN} if wants_unknown_members(request) else {}


def _refused(value: str, enum: str) -> GraphError:
    # [INFERRED] the message text; the 400 itself is the guideline's rule.
    return GraphError(
        400,
        "BadRequest",
        f"Requested value '{value}' was not found for enum type '{_NAMESPACE}.{enum}'.",
    )


def check_schema_input(body: dict[str, Any], request: SimRequest) -> None:
    """400 for an evolvable label or type sent without the opt-in header."""
    if wants_unknown_members(request):
        return
    for prop in body.get("properties") or []:
        if not isinstance(prop, dict):
            continue
        kind = prop.get("type")
        if isinstance(kind, str) and kind in EVOLVABLE_TYPES:
            raise _refused(kind, "propertyType")
        for label in prop.get("labels") or []:
            if isinstance(label, str) and label in EVOLVABLE_LABELS:
                raise _refused(label, "label")


def check_category_input(category: Any, request: SimRequest) -> None:
    evolvable_member = isinstance(category, str) and category in EVOLVABLE_CATEGORIES
    if evolvable_member and not wants_unknown_members(request):
        raise _refused(str(category), "contentCategory")


def mask_schema(schema: dict[str, Any], request: SimRequest) -> dict[str, Any]:
    """The schema as Graph answers it: evolvable members hidden unless the client opted in."""
    shaped = copy.deepcopy(schema)
    if wants_unknown_members(request):
        return shaped
    for prop in shaped.get("properties") or []:
        if not isinstance(prop, dict):
            continue
        if prop.get("type") in EVOLVABLE_TYPES:
            prop["type"] = SENTINEL
        labels = prop.get("labels")
        if isinstance(labels, list):
            prop["labels"] = [SENTINEL if label in EVOLVABLE_LABELS else label for label in labels]
    return shaped


def mask_category(category: str, request: SimRequest) -> str:
    if category in EVOLVABLE_CATEGORIES and not wants_unknown_members(request):
        return SENTINEL
    return category
