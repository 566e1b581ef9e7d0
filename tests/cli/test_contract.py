"""The CLI contract, checked on every registered command (new commands are covered on arrival).

--json everywhere with a published schema, help text on every command and option, usage errors
exit 2, tracebacks only with --debug.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from credly_connector.cli import docgen
from credly_connector.cli.app import app
from tests.cli.schema_check import SCHEMA_DIR, schema_file, validate_output, validator

ALL = list(docgen.walk(docgen.root_command()))
LEAVES = [(path, command) for path, command in ALL if not docgen.is_group(command)]
PLACEHOLDER = "someone@contoso.com"  # for required arguments: valid email, invalid GUID


def _name(path: tuple[str, ...]) -> str:
    return " ".join(path[1:])


def _option_names(command: Any) -> set[str]:
    return {opt for param in command.params for opt in param.opts}


def _required_args(command: Any) -> list[str]:
    return [PLACEHOLDER for p in command.params if docgen.is_argument(p) and p.required]


leaf_ids = [_name(path) for path, _ in LEAVES]

# Commands that need no configuration and do real work when run: `simulator serve` runs until
# interrupted and `demo` runs a whole simulated tenant; their own tests cover their JSON.
NEEDS_NO_CONFIG = {"simulator serve", "demo"}
CONFIGURED_LEAVES = [(p, c) for p, c in LEAVES if _name(p) not in NEEDS_NO_CONFIG]


def test_commands_are_registered() -> None:
    assert {"validate-config", "validate-org-id", "config show", "config init"} <= set(leaf_ids)


@pytest.mark.parametrize(("path", "command"), LEAVES, ids=leaf_ids)
def test_every_command_has_json(path: tuple[str, ...], command: Any) -> None:
    assert "--json" in _option_names(command), f"{_name(path)} has no --json option"


@pytest.mark.parametrize(("path", "command"), LEAVES, ids=leaf_ids)
def test_every_command_publishes_a_schema_built_on_the_envelope(
    path: tuple[str, ...], command: Any
) -> None:
    file = schema_file(_name(path))
    assert file.is_file(), f"missing {file.relative_to(SCHEMA_DIR.parent.parent)}"
    schema = validator(_name(path)).schema
    refs = json.dumps(schema)
    assert "envelope.schema.json" in refs, f"{file.name} must $ref the envelope"


def test_every_schema_is_valid_and_has_an_id() -> None:
    for file in SCHEMA_DIR.glob("*.schema.json"):
        schema = json.loads(file.read_text(encoding="utf-8"))
        assert schema["$id"].endswith(f"/schemas/{file.name}"), file.name
        validator(file.name.removesuffix(".schema.json"))


@pytest.mark.parametrize(("path", "command"), ALL, ids=[_name(p) or "credlyctl" for p, _ in ALL])
def test_every_command_and_option_has_help(path: tuple[str, ...], command: Any) -> None:
    assert (command.help or "").strip(), f"{' '.join(path)} has no help text"
    for param in command.params:
        assert (getattr(param, "help", None) or "").strip(), (
            f"{' '.join(path)}: {param.opts[0]} has no help text"
        )


@pytest.mark.parametrize(("path", "command"), LEAVES, ids=leaf_ids)
def test_unknown_option_is_a_usage_error(path: tuple[str, ...], command: Any) -> None:
    result = CliRunner().invoke(app, [*path[1:], "--no-such-option"])
    assert result.exit_code == 2
    assert "No such option" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("path", "command"), CONFIGURED_LEAVES, ids=[_name(p) for p, _ in CONFIGURED_LEAVES]
)
def test_json_output_with_a_missing_configuration_follows_the_schema(
    path: tuple[str, ...], command: Any, tmp_path: Path
) -> None:
    args = [*path[1:], "--json", *_required_args(command)]
    if "--config" in _option_names(command):
        args += ["--config", str(tmp_path / "absent" / "credlyctl.toml")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code in (0, 1, 2, 3), result.stdout + result.stderr
    document = validate_output(result.stdout)
    assert document["exit_code"] == result.exit_code
    assert document["command"] == _name(path)
    assert "Traceback" not in result.stderr
    if "--config" in _option_names(command) and _name(path) != "config init":
        # A configuration that cannot be found is a configuration error for everyone.
        assert (result.exit_code, document["error"]["id"]) == (2, "CFG000")


def test_top_level_usage_errors_exit_2() -> None:
    assert CliRunner().invoke(app, ["no-such-command"]).exit_code == 2
    assert CliRunner().invoke(app, ["--no-such-option"]).exit_code == 2


def test_help_and_version() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "CREDLYCTL_" in result.stdout  # the precedence rule is stated in --help
    assert CliRunner().invoke(app, ["--version"]).stdout.startswith("credlyctl ")


def _missing_config(tmp_path: Path, *before: str, env: dict[str, str] | None = None) -> Any:
    args = [*before, "config", "show", "--config", str(tmp_path / "absent.toml")]
    return CliRunner().invoke(app, args, env=env)


def test_user_error_has_error_and_hint_but_no_traceback(tmp_path: Path) -> None:
    result = _missing_config(tmp_path)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith("Error: No configuration file at ")
    assert lines[1].startswith("Hint: ")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_shows_the_traceback(tmp_path: Path, how: str) -> None:
    if how == "flag":
        result = _missing_config(tmp_path, "--debug")
    else:
        result = _missing_config(tmp_path, env={"CREDLYCTL_DEBUG": "1"})
    assert result.exit_code == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert "ConfigError" in result.stderr
    assert "Error: No configuration file at " in result.stderr


def test_internal_error_exits_4_and_hides_details_unless_debug(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import credly_connector.cli.commands.validate as module

    def broken(value: str) -> Any:
        local_token = "local-variable-value"  # locals must never be printed
        raise RuntimeError(f"bug while checking ({len(local_token)})")

    monkeypatch.setattr(module, "check_org_id", broken)
    plain = CliRunner().invoke(app, ["validate-org-id", "x"])
    assert plain.exit_code == 4
    assert "internal error (RuntimeError)" in plain.stderr
    assert "Traceback" not in plain.stderr
    as_json = CliRunner().invoke(app, ["validate-org-id", "--json", "x"])
    assert validate_output(as_json.stdout)["error"]["id"] == "internal"
    debug = CliRunner().invoke(app, ["--debug", "validate-org-id", "x"])
    assert debug.exit_code == 4
    assert "Traceback (most recent call last)" in debug.stderr
    assert "local-variable-value" not in debug.stderr
