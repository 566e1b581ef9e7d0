"""docs/scheduling.md: every credlyctl command its recipes run works, as written.

The commands are taken from the page's fenced blocks (a YAML `run:`, a systemd `ExecStart=`, a
crontab line, a Task Scheduler `-Argument`...) and run against the simulated tenant. The
schedulers themselves are not run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from credly_connector.cli.app import COMMANDS
from credly_connector.config.raw import SECTIONS
from credly_connector.simulator.runner import Simulator
from tests.cli.schema_check import validate_output

PAGE = Path(__file__).resolve().parents[2] / "docs" / "scheduling.md"
FIRST = "Before the first scheduled run"
RECIPES = ("GitHub Actions", "systemd", "cron", "Task Scheduler")
GLOBAL_FLAGS = {"-q", "--quiet", "--debug"}

_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
# Where a recipe executes credlyctl: at the start of a line or of a YAML `run:`, after a path
# separator (/opt/credlyctl/bin/credlyctl, ...\Scripts\credlyctl.exe), `ExecStart=` or `&&`.
# Mentions in names and descriptions ("name: credlyctl sync", TaskName "credlyctl sync") are not.
_INVOCATION = re.compile(
    r"""(?:^[ \t]*(?:run:[ \t]*)?|ExecStart=|[/\\]|&&[ \t]*)credlyctl(?:\.exe)?"""
    r"""(?:"[ \t]+-Argument[ \t]+"|[ \t]+)(?P<args>[^\n"'>|&;]+)""",
    re.M,
)


@dataclass(frozen=True)
class Invocation:
    section: str
    args: tuple[str, ...]

    @property
    def command(self) -> str:
        return next(arg for arg in self.args if arg not in GLOBAL_FLAGS)


def _sections() -> list[tuple[str, str]]:
    text = PAGE.read_text(encoding="utf-8")
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return [("(intro)", parts[0]), *zip(parts[1::2], parts[2::2], strict=True)]


def invocations() -> list[Invocation]:
    """Every credlyctl command of the page, the one-off preparation first, then page order."""
    found = [
        Invocation(title, tuple(match["args"].split()))
        for title, body in _sections()
        for block in _FENCE.findall(body)
        for match in _INVOCATION.finditer(block)
    ]
    return sorted(found, key=lambda inv: inv.section != FIRST)


def test_every_command_on_the_page_is_a_credlyctl_command() -> None:
    names = {spec.name for spec in COMMANDS}
    found = invocations()
    assert len(found) >= 10
    for invocation in found:
        assert invocation.command in names, invocation


@pytest.mark.parametrize("recipe", RECIPES)
def test_each_recipe_runs_sync_if_due_quietly(recipe: str) -> None:
    (title,) = [t for t, _ in _sections() if recipe in t]
    syncs = [i.args for i in invocations() if i.section == title and i.command == "sync"]
    assert syncs, f"no credlyctl sync in the {recipe} recipe"
    for args in syncs:
        assert "--if-due" in args and "--quiet" in args


def test_the_github_recipe_uses_the_oidc_token_and_keeps_the_json_log() -> None:
    (body,) = [b for t, b in _sections() if "GitHub Actions" in t]
    assert "id-token: write" in body
    assert "audience=api://AzureADTokenExchange" in body
    assert 'auth = "federated_token"' in body
    assert "actions/upload-artifact" in body and "if: always()" in body
    (sync,) = [
        i.args for i in invocations() if i.section.startswith("GitHub") and "--json" in i.args
    ]
    assert sync[0] == "--quiet"


# Variables that stand for options rather than configuration keys (docs/configuration.md).
OPTION_VARIABLES = {"CREDLYCTL_CONFIG", "CREDLYCTL_INSTANCE", "CREDLYCTL_DEBUG", "CREDLYCTL_QUIET"}


def test_every_variable_and_key_the_recipes_set_exists() -> None:
    text = PAGE.read_text(encoding="utf-8")
    keys = {
        f"CREDLYCTL_{s}_{k}".upper() for s, model in SECTIONS.items() for k in model.model_fields
    }
    variables = set(re.findall(r"\bCREDLYCTL_[A-Z_]+\b", text))
    assert "CREDLYCTL_ENTRA_FEDERATED_TOKEN_FILE" in variables
    assert variables <= keys | OPTION_VARIABLES, variables - keys - OPTION_VARIABLES
    for block in re.findall(r"^```toml\n(.*?)^```", text, re.M | re.S):
        section = None
        for line in block.splitlines():
            if header := re.match(r"\[instances\.[\w.-]+?\.(\w+)\]", line):
                section = header[1]
            elif assignment := re.match(r"(\w+) = ", line):
                assert section in SECTIONS, line
                assert assignment[1] in SECTIONS[section].model_fields, f"[{section}] {line}"


def _environment(config: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CREDLYCTL_")}
    return {**clean, "CREDLYCTL_CONFIG": str(config), "COLUMNS": "200"}


def _without_config_option(args: tuple[str, ...]) -> list[str]:
    # A recipe's own --config (a Windows path) gives way to the simulator's, set in the env.
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--config":
            skip = True
        else:
            out.append(arg)
    return out


@pytest.mark.integration
@pytest.mark.slow
def test_every_command_runs_against_the_simulator(fresh_sim: Simulator, tmp_path: Path) -> None:
    config = tmp_path / "credlyctl.toml"
    config.write_text(fresh_sim.config_toml(state_dir=tmp_path / "state"), encoding="utf-8")
    workdir = tmp_path / "work"  # the recipes' working directory (relative --log-file paths)
    workdir.mkdir()
    for invocation in invocations():
        args = _without_config_option(invocation.args)
        done = subprocess.run(
            [sys.executable, "-m", "credly_connector", *args],
            cwd=workdir,
            env=_environment(config),
            capture_output=True,
            text=True,
            timeout=600,
        )
        where = f"{invocation.section}: credlyctl {' '.join(invocation.args)}\n{done.stderr}"
        assert done.returncode == 0, where
        if "--quiet" in args:
            # Quiet: warnings only, each once (the simulator's configuration draws the
            # custom-host warning, which a real tenant's does not).
            lines = done.stderr.splitlines()
            assert all(line.startswith("Warning: ") for line in lines), where
            assert len(set(lines)) == len(lines), where
        if "--json" in args:
            assert validate_output(done.stdout)["command"] == invocation.command


def _workflow_env() -> dict[str, str]:
    """The `env:` of the page's GitHub Actions job: NAME -> value as written."""
    (body,) = [b for t, b in _sections() if "GitHub Actions" in t]
    (workflow,) = [block for block in _FENCE.findall(body) if "jobs:" in block]
    env_block = workflow.split("    env:\n", 1)[1].split("    steps:", 1)[0]
    return dict(re.findall(r"^ {6}([A-Z_]+): (.+)$", env_block, re.M))


@pytest.mark.integration
@pytest.mark.slow
def test_the_github_recipe_syncs_with_the_federated_token_and_no_entra_secret(
    fresh_sim: Simulator, tmp_path: Path
) -> None:
    env = _workflow_env()
    assert "CREDLYCTL_ENTRA_FEDERATED_TOKEN_FILE" in env
    # The configuration of the page: auth = "federated_token", no Entra secret, the token file
    # named by the workflow's variable (the job writes the OIDC token there).
    text = fresh_sim.config_toml(state_dir=tmp_path / "state", entra_auth="federated_token")
    text, removed = re.subn(r"^federated_token_file = .*\n", "", text, flags=re.M)
    assert removed == 1 and 'auth = "federated_token"' in text
    assert "[instances.demo.entra]" in text and "entra-secret" not in text
    config = tmp_path / "credlyctl.toml"
    config.write_text(text, encoding="utf-8")
    token = fresh_sim.write_federated_token(tmp_path / "runner-temp" / "entra-token.jwt")
    workdir = tmp_path / "work"
    workdir.mkdir()
    environment = {**_environment(config), "CREDLYCTL_ENTRA_FEDERATED_TOKEN_FILE": str(token)}
    (sync,) = [i for i in invocations() if i.section.startswith("GitHub") and i.command == "sync"]
    for args in (["setup"], list(sync.args)):
        done = subprocess.run(
            [sys.executable, "-m", "credly_connector", *args],
            cwd=workdir,
            env=environment,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"credlyctl {' '.join(args)}\n{done.stderr}"
    (result,) = validate_output(done.stdout)["instances"]
    assert result["kind"] == "full" and result["counts"]["written"] > 0, result
    assert (workdir / "credlyctl-sync.jsonl").exists()
