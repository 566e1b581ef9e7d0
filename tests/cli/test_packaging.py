"""What `pip install credlyctl` gets: the wheel holds the JSON Schemas, the licence, the
entry points, and declares every third-party package the code imports.

The wheel is built offline (`pip wheel --no-build-isolation --no-index`) from a copy of the
files a build reads, so the test never touches the checkout or the network.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "credly_connector"
DOC_SCHEMAS = ROOT / "docs" / "schemas"
PACKAGE_SCHEMAS = PACKAGE / "schemas"
SYNC_SCHEMAS = "cp docs/schemas/*.schema.json credly_connector/schemas/"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(PACKAGE, source / PACKAGE.name, ignore=shutil.ignore_patterns("__pycache__"))
    offline = ["--no-build-isolation", "--no-deps", "--no-index", "--quiet"]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            *offline,
            "--wheel-dir",
            str(work / "dist"),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = (work / "dist").glob("credlyctl-*.whl")
    return zipfile.ZipFile(built)


def test_the_package_schemas_are_the_documented_ones() -> None:
    documented = {p.name: p.read_bytes() for p in DOC_SCHEMAS.glob("*.schema.json")}
    shipped = {p.name: p.read_bytes() for p in PACKAGE_SCHEMAS.glob("*.schema.json")}
    assert documented, "docs/schemas/ holds no schema"
    assert shipped == documented, f"credly_connector/schemas/ is stale; run: {SYNC_SCHEMAS}"


def test_the_wheel_ships_every_schema(wheel: zipfile.ZipFile) -> None:
    for path in DOC_SCHEMAS.glob("*.schema.json"):
        assert wheel.read(f"credly_connector/schemas/{path.name}") == path.read_bytes()


def test_the_wheel_ships_the_licence_and_both_ways_to_start(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    (licence,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    assert wheel.read(licence).startswith(b"MIT License")
    assert "credly_connector/__main__.py" in names
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert "credlyctl = credly_connector.cli.app:main" in wheel.read(entry_points).decode()


def _imported_top_level_modules() -> Iterator[str]:
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                yield from (alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                yield node.module.split(".")[0]


def _requirement_name(requirement: str) -> str:
    name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]
    return name.lower().replace("_", "-")


def test_every_third_party_import_is_a_declared_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {_requirement_name(r) for r in project["dependencies"]}
    distributions = importlib.metadata.packages_distributions()
    third_party = {
        module
        for module in _imported_top_level_modules()
        if module not in sys.stdlib_module_names and module != "credly_connector"
    }
    assert "certifi" in third_party  # the scan does see the imports
    for module in sorted(third_party):
        names = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
        assert names & declared, f"{module} is imported but not in [project] dependencies"
