from __future__ import annotations

from credly_connector.credly.models import Badge, parse_datetime
from credly_connector.graph.models import DirectoryUser


def test_badge_parses_the_documented_shape_and_ignores_unknown_fields() -> None:
    badge = Badge.from_api(
        {
            "id": "b1",
            "state": "Accepted",
            "public": True,
            "recipient_email": "Ada@Contoso.com",
            "issued_at": "2026-01-02T03:04:05.000-05:00",
            "expires_at": None,
            "badge_template": {"name": "Azure Admin", "type_category": "Certification"},
            "issuer": {"entities": [{"primary": True, "entity": {"name": "Contoso Academy"}}]},
            "user": {"email": "ada@personal.example"},
            "a_field_credly_adds_later": {"x": 1},
        }
    )
    assert badge.state == "accepted" and badge.state_known
    assert badge.recipient_email == "Ada@Contoso.com"
    assert badge.template_name == "Azure Admin"
    assert badge.issuer_name == "Contoso Academy"
    assert badge.user_email == "ada@personal.example"
    assert badge.issued_at is not None and badge.issued_at.utcoffset() is not None
    assert badge.expires_at is None


def test_badge_survives_garbage() -> None:
    badge = Badge.from_api({"state": 5, "badge_template": "nope", "issuer": [], "public": "yes"})
    assert badge.state == "unknown" and not badge.state_known
    assert badge.public is False
    assert badge.template_name == "Unnamed badge"


def test_parse_datetime_accepts_dates_and_rejects_nonsense() -> None:
    assert parse_datetime("2026-05-01") is not None
    assert parse_datetime("2026-05-01T10:00:00Z") is not None
    assert parse_datetime("yesterday") is None
    assert parse_datetime(None) is None


def test_directory_user_reads_graph_fields() -> None:
    user = DirectoryUser.from_graph(
        {
            "id": "0b7f-1",
            "userPrincipalName": "ada@contoso.com",
            "proxyAddresses": ["SMTP:ada.l@contoso.com", "smtp:ada@contoso.com", 7],
            "accountEnabled": False,
            "assignedLicenses": [{"skuId": "x"}],
        }
    )
    assert user.proxy_addresses == ("SMTP:ada.l@contoso.com", "smtp:ada@contoso.com")
    assert user.account_enabled is False
    assert user.license_count == 1
    assert user.mail is None
