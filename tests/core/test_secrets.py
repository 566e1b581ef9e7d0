from __future__ import annotations

import pickle

import pytest

from credly_connector.secrets import Secret, register_secret_value, scrub

VALUE = "s3cr3t-Value-For-Tests-9f8e7d"


def test_secret_never_prints_its_value() -> None:
    secret = Secret(VALUE, "env:TEST_SECRET")
    for text in (str(secret), repr(secret), f"{secret}", f"{secret!r}", f"{secret:>10}"):
        assert VALUE not in text
        assert "env:TEST_SECRET" in text
    assert secret.reveal() == VALUE


def test_fingerprint_is_short_stable_and_not_a_fragment() -> None:
    a = Secret(VALUE, "inline")
    b = Secret(VALUE, "file:/x")
    c = Secret(VALUE + "x", "inline")
    assert a.fingerprint == b.fingerprint != c.fingerprint
    digest = a.fingerprint.removeprefix("sha256:")
    assert len(digest) == 8
    for start in range(len(VALUE) - 3):
        assert VALUE[start : start + 4] not in a.fingerprint


def test_secret_cannot_be_pickled() -> None:
    with pytest.raises(TypeError):
        pickle.dumps(Secret(VALUE, "inline"))


def test_scrub_removes_known_values_and_tokens() -> None:
    Secret(VALUE, "inline")
    register_secret_value("eyJhbGciOi.token.value")
    text = f"failed with {VALUE} and eyJhbGciOi.token.value inside"
    cleaned = scrub(text)
    assert VALUE not in cleaned
    assert "eyJhbGciOi.token.value" not in cleaned
    assert cleaned.count("***") == 2


def test_scrub_ignores_values_too_short_to_be_secrets() -> None:
    register_secret_value("ab")
    assert scrub("abc") == "abc"


def test_json_output_stays_valid_when_a_secret_equals_a_json_word(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from credly_connector import secrets
    from credly_connector.cli.output import write_json

    # A private registry: these silly "secrets" must not leak into other tests' output.
    monkeypatch.setattr(secrets, "_KNOWN_VALUES", set())
    Secret("true", "inline")
    Secret("null", "inline")
    write_json({"status": "ok", "flag": True, "note": "value true here", "n": None})
    document = json.loads(capsys.readouterr().out)
    assert document["flag"] is True
    assert document["n"] is None
    assert document["status"] == "ok"
    assert "true" not in document["note"]
