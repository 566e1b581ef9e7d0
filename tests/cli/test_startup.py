"""A fast start: commands are registered without importing them, offline commands stay offline.

The import graph is asserted, not a time (timings are in benchmarks/cli_startup.py): each case
runs credlyctl in a fresh interpreter and lists the modules it loaded.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.core import TyperCommand

from credly_connector.cli import app as app_module
from credly_connector.cli.lazy import load_module_commands
from tests.config import cfg

# What a command that needs no network must never load.
NETWORK_ONLY = (
    "msal",
    "cryptography",
    "trustme",
    "httpx",
    "credly_connector.simulator",
    "credly_connector.sync",
    "credly_connector.graph",
    "credly_connector.credly",
    "credly_connector.net",
    "credly_connector.diagnostics",
)
COMMAND_MODULES = "credly_connector.cli.commands."

_PROBE = """
import json, os, sys
sys.argv = ["credlyctl", *json.loads(os.environ["PROBE_ARGS"])]
from credly_connector.cli.app import main
try:
    main()
except SystemExit:
    pass
with open(os.environ["PROBE_OUT"], "w", encoding="utf-8") as out:
    json.dump(sorted(sys.modules), out)
"""


def run_probe(tmp_path: Path, *args: str, **env: str) -> tuple[list[str], str]:
    """Run credlyctl ARGS in a new interpreter: the modules it loaded, and its stdout."""
    out = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", _PROBE],
        env={
            **os.environ,
            **cfg.SECRET_ENV,
            **env,
            "PROBE_ARGS": json.dumps(args),
            "PROBE_OUT": str(out),
        },
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    modules: list[str] = json.loads(out.read_text(encoding="utf-8"))
    return modules, done.stdout


def loaded_modules(tmp_path: Path, *args: str) -> list[str]:
    return run_probe(tmp_path, *args)[0]


def _matches(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def network_modules(modules: list[str]) -> list[str]:
    return [m for m in modules if any(_matches(m, p) for p in NETWORK_ONLY)]


def command_modules(modules: list[str]) -> set[str]:
    return {m for m in modules if m.startswith(COMMAND_MODULES)}


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return cfg.write(tmp_path / "config.toml", cfg.config())


def test_help_imports_no_command_module_and_nothing_heavy(tmp_path: Path) -> None:
    modules = loaded_modules(tmp_path, "--help")
    assert "credly_connector.cli.app" in modules  # the probe did run credlyctl
    assert command_modules(modules) == set()
    assert network_modules(modules) == []
    assert not [m for m in modules if _matches(m, "pydantic") or _matches(m, "rich")]


@pytest.mark.parametrize(
    ("args", "module"),
    [
        (("validate-config",), "validate"),
        (("validate-org-id", cfg.ORG), "validate"),
        (("config", "show"), "config_cmd"),
        (("config", "show", "--json"), "config_cmd"),
    ],
)
def test_offline_commands_load_only_their_own_module(
    tmp_path: Path, config_file: Path, args: tuple[str, ...], module: str
) -> None:
    modules = loaded_modules(tmp_path, *args, "--config", str(config_file))
    assert command_modules(modules) == {COMMAND_MODULES + module}
    assert network_modules(modules) == []


def test_the_probe_sees_network_modules_when_a_command_needs_them(tmp_path: Path) -> None:
    # The same probe on `sync --help` must see the sync engine, or the tests above prove nothing.
    modules = loaded_modules(tmp_path, "sync", "--help")
    assert "credly_connector.sync.runner" in network_modules(modules)


def _root() -> Any:
    return typer.main.get_command(app_module.app)


def _help(group: Any, width: int) -> str:
    ctx = typer.Context(group, info_name="credlyctl", terminal_width=width, max_content_width=width)
    return str(group.get_help(ctx))


@pytest.mark.parametrize("width", [60, 80, 120, 200])
def test_root_help_is_the_same_before_and_after_the_commands_are_loaded(width: int) -> None:
    group = _root()
    lazy = _help(group, width)
    ctx = typer.Context(group, info_name="credlyctl")
    for name in group.list_commands(ctx):
        assert group.get_command(ctx, name) is not None
    assert _help(group, width) == lazy


@pytest.mark.parametrize("spec", app_module.COMMANDS, ids=lambda spec: spec.name)
def test_each_registry_summary_is_the_commands_own_short_help(spec: Any) -> None:
    command = load_module_commands(spec.module)[spec.name]
    stand_in = TyperCommand(name=spec.name, help=spec.summary)
    for limit in (30, 45, 60, 10_000):
        assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit), (
            f"update the summary of {spec.name!r} in cli/app.py COMMANDS"
        )


def test_every_command_module_is_in_the_registry() -> None:
    package = importlib.import_module("credly_connector.cli.commands")
    registered = {(spec.module, spec.name) for spec in app_module.COMMANDS}
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_"):
            continue
        module = f"{package.__name__}.{info.name}"
        if not hasattr(importlib.import_module(module), "register"):
            continue
        for name in load_module_commands(module):
            assert (module, name) in registered, f"add {name!r} ({module}) to cli/app.py COMMANDS"


def test_an_unknown_command_still_gets_a_suggestion() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "credly_connector", "validate-confg"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "Did you mean 'validate-config'" in result.stderr


def test_completing_a_command_name_imports_no_command_module(tmp_path: Path) -> None:
    modules, stdout = run_probe(
        tmp_path, _CREDLYCTL_COMPLETE="complete_bash", COMP_WORDS="credlyctl ", COMP_CWORD="1"
    )
    assert stdout.split() == [spec.name for spec in app_module.COMMANDS]
    assert command_modules(modules) == set()


def test_completion_of_a_command_option_loads_that_command(tmp_path: Path) -> None:
    modules, stdout = run_probe(
        tmp_path,
        _CREDLYCTL_COMPLETE="complete_bash",
        COMP_WORDS="credlyctl sync --if",
        COMP_CWORD="2",
    )
    assert stdout.split() == ["--if-due"]
    assert command_modules(modules) == {COMMAND_MODULES + "sync_cmd"}


def test_install_completion_writes_a_script_for_the_shell(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    # Typer names the shell by walking up the process tree (shellingham), so the
    # program runs as the child of a bash that does not exec it: the nearest shell
    # is then bash whatever started pytest (an xdist worker, a CI runner, cron).
    result = subprocess.run(
        ["bash", "-c", '"$0" -m credly_connector --install-completion; exit $?', sys.executable],
        env={**os.environ, "HOME": str(home), "USERPROFILE": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    script = home / ".bash_completions" / "credlyctl.sh"
    assert "_CREDLYCTL_COMPLETE" in script.read_text(encoding="utf-8")
    assert str(script) in (home / ".bashrc").read_text(encoding="utf-8")
