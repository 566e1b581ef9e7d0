"""Windows portability (issue 11, item 1), proved the way we can without a Windows machine.

1. The whole CLI imports, `demo` runs and a sync completes with `fcntl`, `os.pread` and
   `os.pwrite` made unavailable (a sitecustomize hides them in a child interpreter).
2. The package source holds no POSIX-only call outside a platform-guarded branch.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import credly_connector
from credly_connector.simulator.runner import Simulator
from tests.sync.simhelpers import configure, do_setup, graph_view, oracle, settings_of

PACKAGE = Path(credly_connector.__file__).parent

# Only what the issue names: third-party code with its own Windows branch (platformdirs uses
# os.geteuid in its Unix module only) must keep working on this POSIX kernel.
_HIDE = '''
import os
import sys


class _NoFcntl:
    """Import hook: fcntl does not exist on Windows."""

    def find_spec(self, name, path=None, target=None):
        if name == "fcntl":
            raise ImportError("fcntl is hidden: simulating Windows")
        return None


sys.meta_path.insert(0, _NoFcntl())
sys.modules.pop("fcntl", None)
for _name in ("pread", "pwrite"):
    if hasattr(os, _name):
        delattr(os, _name)
'''

_RUN = """
import os, sys
try:
    import fcntl  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("fcntl is still importable: the hook did not load")
assert not hasattr(os, "pread") and not hasattr(os, "pwrite")
from credly_connector.cli.app import main
sys.argv[0] = "credlyctl"
main()
"""


@pytest.fixture
def hidden(tmp_path: Path) -> Iterator[dict[str, str]]:
    hook = tmp_path / "hide-posix"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_HIDE, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDLYCTL_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(hook), env.get("PYTHONPATH")]))
    # filelock warns that only its soft lock is left without fcntl on a POSIX kernel; on
    # Windows it uses msvcrt instead.
    env["PYTHONWARNINGS"] = "ignore"
    yield env


def _credlyctl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _RUN, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**env, "COLUMNS": "200"},
    )


@pytest.mark.integration
def test_help_and_demo_run_without_posix_only_calls(hidden: dict[str, str]) -> None:
    helped = _credlyctl(hidden, "--help")
    assert helped.returncode == 0, helped.stderr
    assert "sync" in helped.stdout
    demo = _credlyctl(hidden, "demo", "--json")
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert json.loads(demo.stdout)["exit_code"] == 0


@pytest.mark.integration
def test_a_sync_runs_without_posix_only_calls(
    fresh_sim: Simulator, tmp_path: Path, hidden: dict[str, str]
) -> None:
    config = configure(fresh_sim, tmp_path)
    do_setup(settings_of(config))
    synced = _credlyctl(hidden, "sync", "--json", "--config", str(config))
    assert synced.returncode == 0, synced.stderr[-2000:]
    assert json.loads(synced.stdout)["instances"][0]["counts"]["written"] == 4
    assert graph_view(fresh_sim) == oracle(fresh_sim)
    status = _credlyctl(hidden, "status", "--json", "--config", str(config))
    assert status.returncode == 0, status.stderr[-2000:]
    assert json.loads(status.stdout)["instances"][0]["sync_running"] is False


# ---- the source scan ---------------------------------------------------------------------

# Modules that do not exist on Windows.
POSIX_MODULES = {"fcntl", "termios", "pwd", "grp", "resource", "posix"}
# Attributes that do not exist (or do something else) on Windows: os.<name>, signal.<name>.
POSIX_ATTRIBUTES = {
    "os": {
        "pread",
        "pwrite",
        "fork",
        "forkpty",
        "getuid",
        "geteuid",
        "getgid",
        "getegid",
        "setsid",
        "getpgid",
        "killpg",
        "mkfifo",
        "mknod",
        "chown",
        "lchown",
        "O_NOFOLLOW",
        "O_NONBLOCK",
        "WNOHANG",
        "sync",
        "statvfs",
        "getloadavg",
    },
    "signal": {"SIGKILL", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGCHLD", "SIGPIPE", "alarm"},
}
# Calls whose meaning differs on Windows (os.chmod only toggles the read-only flag): allowed
# where a comment on the line or the line above says what happens there (`# portable: ...`).
DIFFERENT_MEANING = {"chmod", "lchmod", "fchmod", "add_signal_handler"}
GUARDS = ("os.name", "sys.platform", "platform.system", "hasattr(os", "hasattr(signal")


def _guarded(node: ast.AST, parents: dict[ast.AST, ast.AST], source: str) -> bool:
    """Inside `if os.name ...`/`sys.platform`/`hasattr(os, ...)`, or a try that catches it."""
    child, parent = node, parents.get(node)
    while parent is not None:
        if isinstance(parent, ast.If | ast.IfExp) and any(
            g in (ast.get_source_segment(source, parent.test) or "") for g in GUARDS
        ):
            return True
        if isinstance(parent, ast.Try) and child in parent.body:
            caught = " ".join(ast.unparse(h.type) for h in parent.handlers if h.type is not None)
            if "ImportError" in caught or "AttributeError" in caught:
                return True
        child, parent = parent, parents.get(parent)
    return False


def posix_only_uses(path: Path) -> list[str]:
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    lines = source.splitlines()
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    found: list[tuple[int, str]] = []

    def report(node: ast.AST, what: str) -> None:
        if not _guarded(node, parents, source):
            found.append((getattr(node, "lineno", 0), what))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in POSIX_MODULES:
                    report(node, f"import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in POSIX_MODULES:
                report(node, f"from {node.module} import ...")
            for alias in node.names:
                if alias.name in POSIX_ATTRIBUTES.get(node.module, set()):
                    report(node, f"from {node.module} import {alias.name}")
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.attr in POSIX_ATTRIBUTES.get(node.value.id, set())
        ):
            report(node, f"{node.value.id}.{node.attr}")
        if isinstance(node, ast.Attribute) and node.attr in DIFFERENT_MEANING:
            near = " ".join(lines[max(0, node.lineno - 2) : node.lineno])
            if "# portable:" not in near:
                report(node, f".{node.attr}() (add `# portable: <what it does on Windows>`)")
    return [f"{path}:{line}: {what}" for line, what in sorted(found)]


def test_the_package_has_no_posix_only_call_outside_a_platform_guard() -> None:
    found = [use for path in sorted(PACKAGE.rglob("*.py")) for use in posix_only_uses(path)]
    assert found == [], "POSIX-only calls:\n" + "\n".join(found)


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import fcntl\nimport os\nimport signal\n"
        "os.pread(0, 1, 0)\nsignal.SIGKILL\nos.chmod('x', 0o600)\n"
        "if os.name != 'nt':\n    os.getuid()\n"
        "os.chmod('y', 0o600)  # portable: only the read-only flag on Windows\n",
        encoding="utf-8",
    )
    found = posix_only_uses(sample)
    assert [line.split(": ", 1)[1].split(" ")[0] for line in found] == [
        "import",
        "os.pread",
        "signal.SIGKILL",
        ".chmod()",
    ]
