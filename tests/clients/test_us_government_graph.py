"""Why credlyctl refuses setup and sync in the US Government clouds, proved from the metadata.

Graph's v1.0 metadata for the global cloud (v1.0-Prod.csdl) has what a people-data connection
needs; the US Government one (v1.0-Fairfax.csdl, GCC High and DoD) has neither
`externalConnection.contentCategory` nor any person label. Both files come from
microsoftgraph/msgraph-metadata and are read through `shared_path`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from functools import cache

from credly_connector.endpoints import Cloud, people_data_unavailable
from credly_connector.sync.schema import SCHEMA_PROPERTIES
from tests.conftest import shared_path

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
NAMESPACE = "microsoft.graph.externalConnectors"
OUR_LABELS = {label for prop in SCHEMA_PROPERTIES for label in prop["labels"]}


@cache
def people_data_support(csdl: str) -> tuple[set[str], set[str]]:
    """(properties of externalConnection, members of the label enum) in one metadata file."""
    root = ET.parse(shared_path("reference", "graph-metadata", csdl)).getroot()
    properties: set[str] = set()
    labels: set[str] = set()
    for schema in root.iter(f"{EDM}Schema"):
        if schema.get("Namespace") != NAMESPACE:
            continue
        for node in schema:
            if node.tag == f"{EDM}EntityType" and node.get("Name") == "externalConnection":
                properties = {p.get("Name", "") for p in node.findall(f"{EDM}Property")}
            if node.tag == f"{EDM}EnumType" and node.get("Name") == "label":
                labels = {m.get("Name", "") for m in node.findall(f"{EDM}Member")}
    return properties, labels


def test_the_global_graph_has_what_a_people_connection_needs() -> None:
    properties, labels = people_data_support("v1.0-Prod.csdl")
    assert "contentCategory" in properties
    assert labels >= OUR_LABELS
    assert people_data_unavailable(Cloud.GLOBAL) is None


def test_the_us_government_graph_has_neither_content_category_nor_person_labels() -> None:
    properties, labels = people_data_support("v1.0-Fairfax.csdl")
    assert properties, "externalConnection exists in the US Government metadata"
    assert "contentCategory" not in properties
    assert not {label for label in labels if label.startswith("person")}
    assert not OUR_LABELS & labels
    for cloud in (Cloud.USGOV, Cloud.USGOVDOD):
        reason = people_data_unavailable(cloud)
        assert reason is not None and "contentCategory" in reason
