"""Property tests: arbitrary files and arbitrary TOML never crash the configuration code.

validate-config must answer every input with findings and an exit code of the contract (never
a traceback, never exit 4), and load_instance must either succeed or raise ConfigError.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from credly_connector import secrets
from credly_connector.cli.app import app
from credly_connector.config.load import load_instance
from credly_connector.config.raw import SECRET_FIELDS, SECTIONS
from credly_connector.errors import ConfigError
from tests.cli.schema_check import validate_output
from tests.config.cfg import ORG, SECRET_ENV, instance

KNOWN_KEYS = sorted({key for model in SECTIONS.values() for key in model.model_fields})
PLAIN_KEYS = sorted(set(KNOWN_KEYS) - {key for _, key in SECRET_FIELDS})
KEYS = st.one_of(
    st.sampled_from([*KNOWN_KEYS, *SECTIONS, "schema", "labels", "env", "file", "value"]),
    st.text(min_size=1, max_size=12),
)
SCALARS = st.one_of(
    st.text(max_size=40),
    st.sampled_from([ORG, "https://www.credly.com", "https://127.0.0.1:1", "china", "sandbox"]),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.booleans(),
    st.dates(min_value=dt.date(1, 1, 1)),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=12,
)
SECTION_BODIES = st.dictionaries(KEYS, VALUES, max_size=5)
INSTANCES = st.dictionaries(
    st.sampled_from([*SECTIONS, "schema", "other"]), SECTION_BODIES, max_size=5
)
FILES = st.fixed_dictionaries(
    {"instances": st.dictionaries(st.text(min_size=1, max_size=8), INSTANCES, max_size=3)},
    optional={
        "default_instance": st.one_of(st.text(max_size=8), st.integers()),
        "labels": VALUES,
    },
)
SETTINGS = settings(
    max_examples=int(os.environ.get("CREDLYCTL_FUZZ_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@contextlib.contextmanager
def _forget_secrets() -> Iterator[None]:
    """Generated secrets must not outlive their example: the scrubber is process-wide, and a
    secret such as "https" would otherwise mask that word in every later test's output."""
    known = set(secrets._KNOWN_VALUES)
    try:
        yield
    finally:
        secrets._KNOWN_VALUES.clear()
        secrets._KNOWN_VALUES.update(known)


def _validate(content: bytes) -> None:
    with _forget_secrets(), tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "credlyctl.toml"
        path.write_bytes(content)
        result = CliRunner().invoke(
            app, ["validate-config", "--json", "--config", str(path)], env=SECRET_ENV
        )
        assert result.exit_code in (0, 1, 2), result.stdout
        document = validate_output(result.stdout)
        assert document["exit_code"] == result.exit_code
        assert "Traceback" not in result.stderr
        human = CliRunner().invoke(app, ["validate-config", "--config", str(path)], env=SECRET_ENV)
        assert human.exit_code == result.exit_code
        assert "Traceback" not in human.stdout + human.stderr


def _load(content: bytes) -> None:
    with _forget_secrets(), tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "credlyctl.toml"
        path.write_bytes(content)
        try:
            load_instance(path, None, environ=SECRET_ENV)
        except ConfigError as err:
            assert err.message
            assert err.exit_code == 2


@SETTINGS
@given(st.binary(max_size=300))
def test_arbitrary_bytes(content: bytes) -> None:
    _validate(content)


@SETTINGS
@given(st.text(max_size=300))
def test_arbitrary_text(text: str) -> None:
    _validate(text.encode("utf-8", "surrogatepass"))


@SETTINGS
@given(FILES)
def test_arbitrary_toml(data: dict[str, Any]) -> None:
    content = tomli_w.dumps(data).encode()
    _validate(content)
    _load(content)


@SETTINGS
@given(st.sampled_from(sorted(SECTIONS)), st.sampled_from(PLAIN_KEYS), VALUES)
def test_any_value_in_a_valid_instance(section: str, key: str, value: Any) -> None:
    data: dict[str, Any] = {"instances": {"contoso": instance()}}
    data["instances"]["contoso"].setdefault(section, {})[key] = value
    content = tomli_w.dumps(data).encode()
    _validate(content)
    _load(content)


# "§" never appears in credlyctl's own output, so a generated secret cannot coincide with it
# (the scrubber would rightly mask it); what matters is that nothing crashes.
SECRET_TEXT = st.text(max_size=6).map(lambda text: f"\u00a7{text}")
SECRET_SCALARS = st.one_of(SECRET_TEXT, st.integers(), st.booleans(), st.dates())
SECRET_REFS = st.one_of(
    st.dictionaries(st.sampled_from(["env", "file", "value"]), SECRET_SCALARS, max_size=3),
    SECRET_SCALARS,
)


@SETTINGS
@given(st.sampled_from(sorted(SECRET_FIELDS)), SECRET_REFS)
def test_any_secret_reference(field: tuple[str, str], value: Any) -> None:
    section, key = field
    data: dict[str, Any] = {"instances": {"contoso": instance()}}
    data["instances"]["contoso"].setdefault(section, {})[key] = value
    content = tomli_w.dumps(data).encode()
    _validate(content)
    _load(content)
