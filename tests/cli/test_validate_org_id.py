"""validate-org-id through the CLI: every reason, exit codes, streams, --json, and fuzzing."""

from __future__ import annotations

import typing

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from credly_connector.cli.app import app
from credly_connector.orgid import WHERE_TO_FIND, check_org_id
from tests.cli.schema_check import validate_output, validator
from tests.config.cfg import ORG, ORG2

# (input, reason, a fragment of message+hint, the GUID suggested on stdout or None)
REASONS = [
    ("", "empty", "empty", None),
    ("   ", "empty", "only whitespace", None),
    (f" {ORG}\n", "whitespace", "whitespace around it", ORG),
    (f'"{ORG}"', "quotes", "quotes", ORG),
    (f"'{ORG}'", "quotes", "quotes", ORG),
    ("{" + ORG.upper() + "}", "braces", "Remove the braces", ORG),
    (f"urn:uuid:{ORG}", "urn", "urn:uuid:", ORG),
    (f"https://www.credly.com/organizations/{ORG}/badges", "url", "URL", ORG),
    ("https://www.credly.com/org/contoso", "url", "no GUID", None),
    (f"Organization ID: {ORG}", "embedded", "Keep only the GUID", ORG),
    (f"{ORG},{ORG2}", "several", "one instance per organization", None),
    ("contoso-university", "slug", "Developers", None),
    ("Contoso University", "slug", "vanity slug", None),
    (ORG[:-1] + "z", "non_hex", "Character 36 is 'z'", None),
    (ORG[:10] + "\u200b" + ORG[10:], "non_hex", "U+200B (ZERO WIDTH SPACE)", None),
    (ORG[:-1], "length", "35 characters", None),
    (ORG + "0", "length", "37 characters", None),
    (ORG.replace("-", ""), "hyphens_missing", "hyphens are missing", ORG),
    (ORG[:7] + "-" + ORG[7] + ORG[9:], "hyphens_misplaced", "7-5-4-4-12", ORG),
]


def _invoke(*args: str) -> typing.Any:
    return CliRunner().invoke(app, ["validate-org-id", *args])


def test_every_reason_in_the_schema_has_a_case() -> None:
    enum = validator("validate-org-id").schema["properties"]["reason"]["enum"]
    assert {reason for _, reason, _, _ in REASONS} | {"ok"} == set(enum)


@pytest.mark.parametrize("value", [ORG, ORG.upper(), ORG2])
def test_valid_id_prints_canonical_form(value: str) -> None:
    result = _invoke("--", value)
    assert result.exit_code == 0
    assert result.stdout == value.lower() + "\n"
    document = validate_output(_invoke("--json", "--", value).stdout)
    assert document["valid"] is True
    assert document["canonical"] == value.lower()
    assert document["status"] == "ok"


@pytest.mark.parametrize(("value", "reason", "fragment", "suggestion"), REASONS)
def test_invalid_id_explains_why(
    value: str, reason: str, fragment: str, suggestion: str | None
) -> None:
    result = _invoke("--", value)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Invalid Organization ID ({reason}): ")
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == (f"{suggestion}\n" if suggestion else "")


@pytest.mark.parametrize(("value", "reason", "fragment", "suggestion"), REASONS)
def test_invalid_id_json(value: str, reason: str, fragment: str, suggestion: str | None) -> None:
    result = _invoke("--json", "--", value)
    assert result.exit_code == 1
    document = validate_output(result.stdout)
    assert (document["status"], document["valid"], document["reason"]) == (
        "problems",
        False,
        reason,
    )
    assert fragment in document["message"] + " " + document["hint"]
    assert document["suggestion"] == suggestion
    assert document["input"] == value


def test_slug_and_url_say_where_the_id_is_found() -> None:
    for value in ("contoso-university", "https://www.credly.com/org/contoso"):
        assert check_org_id(value).hint == WHERE_TO_FIND
    assert "Developers" in WHERE_TO_FIND


def test_missing_argument_is_a_usage_error() -> None:
    result = _invoke()
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_arbitrary_text_never_crashes(value: str) -> None:
    result = _invoke("--json", "--", value)
    assert result.exit_code in (0, 1), result.stdout
    document = validate_output(result.stdout)
    assert document["valid"] == (result.exit_code == 0)
    if document["valid"]:
        assert document["canonical"] == check_org_id(value).canonical
    human = _invoke("--", value)
    assert human.exit_code == result.exit_code
    assert "Traceback" not in human.stdout + human.stderr


@given(st.uuids())
def test_every_uuid_is_accepted_in_any_case(value: typing.Any) -> None:
    text = str(value)
    assert check_org_id(text.upper()).canonical == text
    assert check_org_id(text).ok


@given(st.uuids(), st.sampled_from(["{%s}", " %s", "%s\t", '"%s"', "urn:uuid:%s", "id=%s;"]))
def test_wrapped_uuids_are_recovered(value: typing.Any, wrapper: str) -> None:
    check = check_org_id(wrapper % str(value).upper())
    assert not check.ok
    assert check.suggestion == str(value)
