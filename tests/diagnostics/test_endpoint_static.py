"""check-endpoint's static analysis: every finding with its exact correction."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credly_connector.diagnostics.endpoint import analyze_credly_url, edit_distance
from credly_connector.endpoints import CredlyEnvironment

PROD = "https://www.credly.com"
SANDBOX = "https://sandbox.credly.com"


def ids(url: str, **kw: object) -> dict[str, str | None]:
    analysis = analyze_credly_url(url, **kw)  # type: ignore[arg-type]
    return {f.id: f.correction for f in analysis.findings}


@pytest.mark.parametrize(
    ("url", "environment"),
    [(PROD, "production"), (PROD + "/", "production"), (SANDBOX, "sandbox")],
)
def test_recognised_hosts_pass(url: str, environment: str) -> None:
    analysis = analyze_credly_url(url)
    assert not analysis.has_errors
    assert analysis.corrected == url.rstrip("/")
    assert str(analysis.environment) == environment
    assert [f.id for f in analysis.findings] == ["recognised"]


@pytest.mark.parametrize(
    ("url", "finding", "correction"),
    [
        ("http://www.credly.com", "not-https", None),
        ("www.credly.com", "missing-scheme", None),
        ("https://api.credly.com", "api-host", PROD),
        ("https://api.credly.com/v1", "api-host", PROD),
        ("https://sandbox-api.credly.com/v1", "api-host", SANDBOX),
        ("https://api.youracclaim.com/v1", "legacy-acclaim-host", PROD),
        ("https://sandbox.youracclaim.com", "legacy-acclaim-host", SANDBOX),
        ("https://www.credyl.com", "typo", PROD),
        ("https://www.credly.co", "typo", PROD),
        ("https://sanbox.credly.com", "typo", SANDBOX),
        ("https://credly.net", "typo", PROD),
        ("https://www.credly.com/oauth/token", "extra-path", PROD),
        ("https://www.credly.com/org/contoso", "extra-path", PROD),
        ("https://www.credly.com:8443", "extra-port", PROD),
        ("https://www.credly.com/?org=1", "query-string", PROD),
        ("https://www.credly.com/#x", "fragment", PROD),
        ("https://user:pw@www.credly.com", "credentials-in-url", None),
    ],
)
def test_each_mistake_has_its_finding_and_exact_correction(
    url: str, finding: str, correction: str | None
) -> None:
    analysis = analyze_credly_url(url)
    found = {f.id: f for f in analysis.findings}
    assert finding in found, analysis.findings
    assert found[finding].correction == correction
    assert analysis.has_errors
    if correction:
        assert analysis.corrected == correction


def test_bare_domain_is_a_warning_with_the_www_host() -> None:
    analysis = analyze_credly_url("https://credly.com")
    assert not analysis.has_errors
    assert ids("https://credly.com") == {"bare-domain": PROD}


def test_unknown_host_has_no_guess() -> None:
    analysis = analyze_credly_url("https://badges.example.org")
    assert analysis.corrected is None
    assert [f.id for f in analysis.findings] == ["unknown-host"]


def test_environment_mismatch_points_at_the_configured_environment() -> None:
    found = ids(SANDBOX, expected_environment=CredlyEnvironment.PRODUCTION)
    assert found["environment-mismatch"] == PROD


def test_custom_host_is_always_a_warning_and_needs_the_opt_in() -> None:
    custom = frozenset({"127.0.0.1"})
    allowed = analyze_credly_url(
        "https://127.0.0.1:4443", custom_hosts=custom, allow_custom_hosts=True
    )
    assert not allowed.has_errors and allowed.custom_host
    assert [f.id for f in allowed.findings] == ["custom-host"]
    assert allowed.corrected == "https://127.0.0.1:4443"
    refused = analyze_credly_url("https://127.0.0.1:4443", custom_hosts=custom)
    assert [f.id for f in refused.findings] == ["custom-host-not-allowed"]


def test_user_info_and_query_values_are_never_echoed() -> None:
    analysis = analyze_credly_url(
        "https://admin:hunter2pass@www.credly.com/?client_secret=abcd1234"
    )
    text = str(analysis.to_dict())
    assert "hunter2pass" not in text and "abcd1234" not in text and "admin" not in text


def test_quotes_and_spaces_are_reported_and_removed() -> None:
    analysis = analyze_credly_url('  "https://www.credly.com" ')
    assert "surrounding-characters" in {f.id for f in analysis.findings}
    assert analysis.corrected == PROD and not analysis.has_errors


def test_edit_distance_counts_a_swap_as_one() -> None:
    assert edit_distance("credly", "creldy") == 1
    assert edit_distance("credly", "credly") == 0
    assert edit_distance("", "abc") == 3


@given(st.text(max_size=80))
def test_any_text_gives_an_analysis_not_a_crash(text: str) -> None:
    analysis = analyze_credly_url(text)
    assert analysis.findings


def test_every_finding_id_is_in_the_json_schema() -> None:
    import json
    from pathlib import Path

    schema_path = Path(__file__).resolve().parents[2] / "docs/schemas/check-endpoint.schema.json"
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    known = set(schema["$defs"]["finding"]["properties"]["id"]["enum"])
    urls = [
        "",
        "   ",
        "'https://www.credly.com'",
        "www.credly.com",
        "http://[::1",
        "ftp://www.credly.com",
        "https://u:p@www.credly.com",
        "https://127.0.0.1:4443",
        "https://api.credly.com",
        "https://youracclaim.com",
        "https://credly.com",
        "https://www.credyl.com",
        "https://example.org",
        "https://www.credly.com:8443",
        "https://www.credly.com:443",
        "https://www.credly.com/x",
        "https://www.credly.com/?a=b",
        "https://www.credly.com/#x",
        "https://sandbox.credly.com",
        "https://www.credly.com",
    ]
    seen: set[str] = set()
    for url in urls:
        for allow in (False, True):
            analysis = analyze_credly_url(
                url,
                expected_environment=CredlyEnvironment.PRODUCTION,
                custom_hosts=frozenset({"127.0.0.1"}),
                allow_custom_hosts=allow,
            )
            seen |= {f.id for f in analysis.findings}
    assert seen <= known
    assert seen == known  # and every documented finding can actually happen
