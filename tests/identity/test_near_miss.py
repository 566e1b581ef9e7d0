"""Near-miss rules: which unmatched badge addresses are probably a person's, and which not."""

from __future__ import annotations

import pytest

from credly_connector.identity.near_miss import (
    AddressKind,
    Evidence,
    Person,
    PersonName,
    UnmatchedBadge,
    address_kind,
    edit_distance,
    find_near_misses,
    near_miss,
)

MIRIAM = Person(
    addresses=frozenset({"miriam.graham@contoso.com"}),
    other_mails=frozenset({"mg.private@fabrikam.example"}),
    name=PersonName("miriam", "graham"),
    tenant_domains=frozenset({"contoso.com"}),
)


def badge(
    address: str, first: str | None = "Miriam", last: str | None = "Graham"
) -> UnmatchedBadge:
    name = PersonName.parse(first, last)
    return UnmatchedBadge(f"id-{address}", address, name)


@pytest.mark.parametrize(
    ("address", "kind", "evidence"),
    [
        ("miriam.grahm@contoso.com", AddressKind.WORK, Evidence.CLOSE_SPELLING),
        ("miriam.graham@outlook.com", AddressKind.PERSONAL, Evidence.SAME_LOCAL_PART),
        (
            "miriam.graham@fabrikam.example",
            AddressKind.OTHER_ORGANIZATION,
            Evidence.SAME_LOCAL_PART,
        ),
        ("mg.private@fabrikam.example", AddressKind.OTHER_ORGANIZATION, Evidence.OTHER_MAIL),
    ],
)
def test_each_kind_of_near_miss_is_found_with_its_reason(
    address: str, kind: AddressKind, evidence: Evidence
) -> None:
    found = find_near_misses(MIRIAM, [badge(address)])
    assert [m.address for m in found] == [address]
    assert found[0].kind is kind
    assert found[0].evidence[0] is evidence
    assert found[0].badge_ids == (f"id-{address}",)
    assert found[0].reason()


def test_a_first_name_alone_is_not_enough() -> None:
    assert find_near_misses(MIRIAM, [badge("miriam@gmail.com", "Miriam", "Jones")]) == []
    assert find_near_misses(MIRIAM, [badge("m.jones@gmail.com", "Miriam", None)]) == []


def test_another_last_name_rules_out_a_close_address() -> None:
    lee = Person(frozenset({"lee.gu@contoso.com"}), name=PersonName("lee", "gu"))
    assert (
        near_miss(lee, "lee.wu@contoso.com", PersonName("lee", "wu"), name_is_unique=True) is None
    )


def test_a_same_name_counts_alone_only_when_nobody_else_has_it() -> None:
    other = badge("bp1985@gmail.com")
    assert find_near_misses(MIRIAM, [other]) == []  # unknown directory: not enough
    found = find_near_misses(MIRIAM, [other], name_counts={PersonName("miriam", "graham"): 1})
    assert [m.evidence for m in found] == [(Evidence.SAME_NAME,)]
    assert find_near_misses(MIRIAM, [other], name_counts={PersonName("miriam", "graham"): 2}) == []


def test_numbers_tell_namesakes_apart() -> None:
    alex = Person(frozenset({"alex.smith12@contoso.com"}), name=PersonName("alex", "smith"))
    assert find_near_misses(alex, [badge("alex.smith13@contoso.com", "Alex", "Smith")]) == []
    assert find_near_misses(alex, [badge("alex.smith13@gmail.example", "Alex", "Smith")]) == []
    found = find_near_misses(alex, [badge("alex.smith12@gmail.example", "Alex", "Smith")])
    assert [m.address for m in found] == ["alex.smith12@gmail.example"]


def test_short_and_role_local_parts_prove_nothing() -> None:
    jo = Person(frozenset({"jo@contoso.com", "info@contoso.com"}))
    assert find_near_misses(jo, [badge("jo@gmail.com", None, None)]) == []
    assert find_near_misses(jo, [badge("info@fabrikam.example", None, None)]) == []


def test_names_ignore_case_and_accents() -> None:
    assert PersonName.parse("Jürgen", "MÜLLER") == PersonName.parse(None, None, "jurgen muller")


def test_address_kinds() -> None:
    assert address_kind("a@Outlook.com", []) is AddressKind.PERSONAL
    assert address_kind("a@yahoo.co.uk", []) is AddressKind.PERSONAL
    assert address_kind("a@gmail.example", []) is AddressKind.PERSONAL
    assert address_kind("a@live.contoso.com", []) is AddressKind.OTHER_ORGANIZATION
    assert address_kind("a@contoso.com", ["Contoso.com"]) is AddressKind.WORK
    assert address_kind("a@fabrikam.com", ["contoso.com"]) is AddressKind.OTHER_ORGANIZATION


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [("abc", "abc", 0), ("abc", "abd", 1), ("miriam.grahm", "miriam.graham", 1), ("a", "wxyz", 4)],
)
def test_edit_distance(a: str, b: str, distance: int) -> None:
    assert edit_distance(a, b, limit=3) == distance
