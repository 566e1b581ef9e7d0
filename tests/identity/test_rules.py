"""The matching, eligibility and item rules, one behaviour per test."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

from credly_connector.identity.addresses import MatchKey, build_index, primary_smtp
from credly_connector.identity.eligibility import (
    BadgeSkip,
    UserSkip,
    badge_skip_reasons,
    user_skip_reasons,
)
from credly_connector.identity.entities import (
    BadgeCategory,
    badge_category,
    badge_entity,
    content_hash,
    input_digest,
    item_body,
    item_id,
)
from credly_connector.identity.matching import MatchStatus, match_badge, match_email
from tests.identity.factories import NOW, badge, user

ADA = user(
    "11111111-aaaa-bbbb-cccc-000000000001",
    "ada@contoso.com",
    smtp="Ada.L@contoso.com",
    aliases=("ada.old@contoso.com",),
    mail="ada.mail@contoso.com",
)


def test_primary_smtp_is_the_upper_case_prefixed_entry_not_mail() -> None:
    assert primary_smtp(ADA) == "Ada.L@contoso.com"


def test_mail_counts_only_without_an_smtp_entry() -> None:
    only_alias = user("u2", "bob@contoso.com", aliases=("b@contoso.com",), mail="bob.m@contoso.com")
    assert primary_smtp(only_alias) == "bob.m@contoso.com"
    assert primary_smtp(user("u3", "c@contoso.com")) is None


def test_upn_matches_ignoring_case() -> None:
    result = match_badge(badge("b1", "ADA@Contoso.COM"), build_index([ADA]))
    assert result.status is MatchStatus.MATCHED
    assert result.user == ADA and result.key is MatchKey.UPN


def test_primary_smtp_matches_ignoring_case() -> None:
    result = match_email("ada.l@CONTOSO.com", build_index([ADA]))
    assert result.matched and result.key is MatchKey.PRIMARY_SMTP


def test_secondary_alias_and_mail_beside_an_smtp_entry_never_match() -> None:
    index = build_index([ADA])
    assert match_email("ada.old@contoso.com", index).status is MatchStatus.NO_USER
    assert match_email("ada.mail@contoso.com", index).status is MatchStatus.NO_USER


def test_credly_account_email_is_not_used() -> None:
    b = badge("b1", "someone@else.com", user={"email": "ada@contoso.com"})
    assert match_badge(b, build_index([ADA])).status is MatchStatus.NO_USER


def test_same_address_on_two_users_matches_neither() -> None:
    other = user("u9", "x@contoso.com", smtp="ada@contoso.com")
    result = match_email("ada@contoso.com", build_index([ADA, other]))
    assert result.status is MatchStatus.SEVERAL_USERS
    assert {u.id for u in result.candidates} == {ADA.id, "u9"}


def test_upn_equal_to_primary_smtp_is_one_user_matched_by_upn() -> None:
    same = user("u5", "e@contoso.com", smtp="E@contoso.com")
    result = match_email("e@contoso.com", build_index([same]))
    assert result.matched and result.key is MatchKey.UPN


def test_missing_recipient_email() -> None:
    assert match_badge(badge("b1", None), build_index([ADA])).status is (
        MatchStatus.NO_RECIPIENT_EMAIL
    )


def test_user_eligibility_reasons() -> None:
    assert user_skip_reasons(ADA) == []
    assert user_skip_reasons(user("u", "u@c.com", enabled=False)) == [UserSkip.DISABLED]
    assert user_skip_reasons(user("u", "u@c.com", licenses=0)) == [UserSkip.UNLICENSED]
    assert user_skip_reasons(ADA, ["ADA.OLD@contoso.com"]) == [UserSkip.OPTED_OUT]


def test_badge_skip_reasons() -> None:
    assert badge_skip_reasons(badge("b", "a@c.com"), NOW) == []
    for state, skip in [
        ("pending", BadgeSkip.PENDING),
        ("rejected", BadgeSkip.REJECTED),
        ("revoked", BadgeSkip.REVOKED),
        ("replaced", BadgeSkip.REPLACED),
        ("archived_by_martians", BadgeSkip.UNKNOWN_STATE),
    ]:
        assert badge_skip_reasons(badge("b", "a@c.com", state=state), NOW) == [skip]
    assert badge_skip_reasons(badge("b", "a@c.com", public=False), NOW) == [BadgeSkip.PRIVATE]
    expired = badge("b", "a@c.com", expires_at=(NOW - timedelta(days=1)).isoformat())
    assert badge_skip_reasons(expired, NOW) == [BadgeSkip.EXPIRED]
    future = badge("b", "a@c.com", expires_at=(NOW + timedelta(days=1)).isoformat())
    assert badge_skip_reasons(future, NOW) == []
    assert badge_skip_reasons(badge("b", ""), NOW) == [BadgeSkip.NO_RECIPIENT_EMAIL]


def test_badge_expiring_exactly_now_is_expired_and_a_moment_later_is_not() -> None:
    # The boundary itself: "at or before now" is expired, so `<=` and not `<` decides it.
    at_now = badge("b", "a@c.com", expires_at=NOW.isoformat())
    assert badge_skip_reasons(at_now, NOW) == [BadgeSkip.EXPIRED]
    just_after = badge("b", "a@c.com", expires_at=(NOW + timedelta(seconds=1)).isoformat())
    assert badge_skip_reasons(just_after, NOW) == []
    just_before = badge("b", "a@c.com", expires_at=(NOW - timedelta(seconds=1)).isoformat())
    assert badge_skip_reasons(just_before, NOW) == [BadgeSkip.EXPIRED]


def test_certification_any_case_else_award() -> None:
    assert badge_category(badge("b", "a", template={"type_category": "CERTIFICATION"})) is (
        BadgeCategory.CERTIFICATION
    )
    assert badge_category(badge("b", "a", template={"type_category": "certification "})) is (
        BadgeCategory.CERTIFICATION
    )
    for other in ("Learning", "Experience", None):
        assert badge_category(badge("b", "a", template={"type_category": other})) is (
            BadgeCategory.AWARD
        )


def test_entities_carry_the_documented_fields() -> None:
    award = badge_entity(badge("b1", "a"))
    assert award == {
        "displayName": "Badge b1",
        "issuingAuthority": "Contoso Academy",
        "issuedDate": "2026-01-15",
        "webUrl": "https://www.credly.com/badges/b1",
        "thumbnailUrl": "https://images.credly.com/b1.png",
    }
    cert = badge_entity(
        badge("b2", "a", expires_at="2027-01-15", template={"type_category": "Certification"})
    )
    assert cert["endDate"] == "2027-01-15" and cert["certificationId"] == "b2"


def test_item_id_and_body() -> None:
    assert item_id(ADA.id) == "11111111aaaabbbbcccc000000000001"
    cert = badge("c1", "ada@contoso.com", template={"type_category": "Certification"})
    body = item_body(ADA, [badge("a1", "ada@contoso.com"), cert], "tenant-guid")
    assert body["acl"] == [{"type": "everyone", "value": "tenant-guid", "accessType": "grant"}]
    props = body["properties"]
    assert json.loads(props["account"]) == {
        "userPrincipalName": "ada@contoso.com",
        "externalDirectoryObjectId": ADA.id,
    }
    assert props["awards@odata.type"] == "Collection(String)"
    assert props["certifications@odata.type"] == "Collection(String)"
    assert [json.loads(a)["displayName"] for a in props["awards"]] == ["Badge a1"]
    assert [json.loads(c)["displayName"] for c in props["certifications"]] == ["Badge c1"]


def test_item_id_is_lower_case_whatever_the_case_of_the_object_id() -> None:
    # One item per user: an object id read back in upper case (Graph compares GUIDs without
    # regard to case) must not create a second item beside the first.
    upper = "11111111-AAAA-BBBB-CCCC-00000000000A"
    assert item_id(upper) == "11111111aaaabbbbcccc00000000000a"
    assert item_id(upper) == item_id(upper.lower())


def test_non_ascii_text_travels_as_ascii_escapes() -> None:
    # Graph's PUT-item page: a String value with non-ASCII text needs the `String` type hint;
    # credlyctl escapes instead, so every value it sends without a hint is plain ASCII.
    name = "Zertifizierung für Künstliche Intelligenz – 日本"
    body = item_body(ADA, [badge("a1", "x", template={"name": name})], "t")
    props = body["properties"]
    for key, value in props.items():
        for text in value if isinstance(value, list) else [value]:
            assert str(text).isascii(), key
    assert json.loads(props["awards"][0])["displayName"] == name


def test_hash_is_stable_across_badge_order_and_changes_with_content() -> None:
    b1, b2 = badge("a1", "x"), badge("a2", "x", issued_at="2025-01-01")
    h = content_hash(item_body(ADA, [b1, b2], "t"))
    assert h == content_hash(item_body(ADA, [b2, b1], "t"))
    assert h != content_hash(item_body(ADA, [b1], "t"))


def test_input_digest_changes_whenever_the_body_changes() -> None:
    # The state keeps the digest in place of the body's hash: a Badge field that changes the
    # body but not the digest would leave a stale item until the next full crawl.
    base = badge("a1", "x", template={"type_category": "Certification"}, expires_at="2027-01-01")
    other = badge("a2", "y", issued_at="2025-03-04", expires_at="2028-02-02")
    for field in dataclasses.fields(base):
        changed = dataclasses.replace(base, **{field.name: getattr(other, field.name)})
        if item_body(ADA, [changed], "t") != item_body(ADA, [base], "t"):
            assert input_digest(ADA, [changed], "t") != input_digest(ADA, [base], "t"), field.name
    d = input_digest(ADA, [base, other], "t")
    assert d == input_digest(ADA, [other, base], "t")
    assert d != input_digest(ADA, [base, other], "t2")
    assert d != input_digest(
        dataclasses.replace(ADA, user_principal_name="z@c.com"), [base, other], "t"
    )
