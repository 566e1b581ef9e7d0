"""docs/fidelity.md is complete: every simulated behaviour and every remote call has a row.

The ledger lists, per row, the rule, its public source (or "inferred", why, and how credlyctl
copes if the guess is wrong), the keys it covers and the tests that hold us to it. This module
enumerates what the simulator declares (switches, faults, scenario options, routes, error
codes) and what the product actually sends (recorded during an end-to-end run against the
simulator), and fails naming the exact key that has no row. It also fails when a row names a
switch, fault, option, route or test that no longer exists, unless the row is marked
`(pending)`: a behaviour another change is still bringing.

Keys, written in backticks in the "Keys" column:
- `<service> <METHOD> <path template>`: a call (client) or route (simulator); service is
  graph, credly-web, credly-api or entra; `{name}` stands for one path segment or key value.
- `switch:<name>`, `fault:<name>`, `scenario:<key>`: the simulator's knobs.
- `graph-error:<code>`, `aadsts:<number>`: error answers the simulator imitates.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from credly_connector.simulator import knobs
from credly_connector.simulator.runner import SimulatorUrls, start_simulator
from credly_connector.simulator.scenario import SECTIONS

REPO_ROOT = Path(__file__).resolve().parent.parent
LEDGER = REPO_ROOT / "docs" / "fidelity.md"
SIMULATOR = REPO_ROOT / "credly_connector" / "simulator"
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
ROW_ID = re.compile(r"^[A-Z]+(?:-[A-Z0-9]+)+$")
TEST_REF = re.compile(r"(tests/[\w/]+\.py)::(\w+)")


# -- the ledger ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    id: str
    rule: str
    source: str
    keys: tuple[str, ...]
    tests: tuple[str, ...]
    pending: bool

    @property
    def inferred(self) -> bool:
        return "inferred" in self.source.lower()


def _cells(line: str) -> list[str]:
    # Split a Markdown table line on pipes that are not inside backticks.
    cells, current, in_code = [], "", False
    for char in line.strip().strip("|"):
        if char == "`":
            in_code = not in_code
        if char == "|" and not in_code:
            cells.append(current.strip())
            current = ""
        else:
            current += char
    cells.append(current.strip())
    return cells


@cache
def ledger_rows() -> tuple[Row, ...]:
    rows: list[Row] = []
    header: list[str] | None = None
    for line in LEDGER.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = _cells(line)
        if header is None:
            header = [c.lower() for c in cells]
            continue
        if set("".join(cells)) <= set("-: "):
            continue
        if header[:1] != ["id"]:
            continue
        named = dict(zip(header, cells, strict=False))
        raw_id = named["id"]
        rows.append(
            Row(
                id=raw_id.replace("(pending)", "").strip(),
                rule=named.get("rule", ""),
                source=named.get("source", ""),
                keys=tuple(re.findall(r"`([^`]+)`", named.get("keys", ""))),
                tests=tuple(f"{f}::{t}" for f, t in TEST_REF.findall(named.get("tests", ""))),
                pending="(pending)" in raw_id,
            )
        )
    return tuple(rows)


def keys_of(prefix: str, *, landed_only: bool = False) -> dict[str, str]:
    """`prefix:<name>` keys in the ledger -> the id of the (first) row naming them."""
    found: dict[str, str] = {}
    for row in ledger_rows():
        if landed_only and row.pending:
            continue
        for key in row.keys:
            if key.startswith(prefix + ":"):
                found.setdefault(key.split(":", 1)[1].strip(), row.id)
    return found


@dataclass(frozen=True)
class Route:
    service: str
    method: str
    template: str
    row: str
    pending: bool

    @property
    def shape(self) -> str:
        return re.sub(r"\{[^}]*\}", "{}", self.template)

    def matches(self, service: str, method: str, path: str) -> bool:
        if (service, method) != (self.service, self.method):
            return False
        pattern = ""
        for part in re.split(r"(\{[^}]*\})", self.template):
            if part.startswith("{"):
                # One segment or key value; never a `$` system segment or the delta function.
                pattern += r"(?!\$|delta(?:\(\))?(?:/|$))[^/]+?"
            else:
                pattern += re.escape(part)
        return re.fullmatch(pattern, path) is not None


def ledger_routes() -> list[Route]:
    routes = []
    for row in ledger_rows():
        for key in row.keys:
            parts = key.split()
            if len(parts) == 3 and parts[1] in HTTP_METHODS:
                routes.append(Route(parts[0], parts[1], parts[2], row.id, row.pending))
    return routes


def row_for(service: str, method: str, path: str) -> Route | None:
    candidates = [r for r in ledger_routes() if r.matches(service, method, path)]
    # The most literal template wins: `/users/delta` before `/users/{id}`.
    return max(candidates, key=lambda r: len(r.shape.replace("{}", "")), default=None)


def missing_row(what: str, key: str, where: str) -> str:
    return (
        f"docs/fidelity.md has no row for {what} {key!r} ({where}). Add a row that states the "
        f"rule and its public source (or 'inferred', why, and how credlyctl copes), with "
        f"`{key}` in its Keys column."
    )


# -- what the simulator declares ----------------------------------------------------------


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(SIMULATOR.glob("*.py")):
        yield path.name, ast.parse(path.read_text(encoding="utf-8"))


def _receiver_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def simulator_scenario_options() -> dict[str, str]:
    """Every key the simulator reads from a scenario (or scenario section): key -> module."""
    found: dict[str, str] = {section: "scenario.py SECTIONS" for section in SECTIONS}
    for module, tree in _modules():
        for node in ast.walk(tree):
            key: ast.expr | None = None
            receiver: ast.expr | None = None
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get"
                and node.args
            ):
                key, receiver = node.args[0], node.func.value
            elif isinstance(node, ast.Subscript):
                key, receiver = node.slice, node.value
            if receiver is None or key is None:
                continue
            if _receiver_name(receiver) not in {"scenario", "options", "graph_scenario"}:
                continue
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                found.setdefault(key.value, module)
    return found


def simulator_faults() -> dict[str, str]:
    """Front-end faults (server.Faults.update), service faults (knobs) and Graph faults."""
    found = {name: "simulator/knobs.py SERVICE_FAULTS" for name in knobs.SERVICE_FAULTS}
    for module, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name == "Faults":
                for sub in ast.walk(node):
                    if (
                        isinstance(sub, ast.Compare)
                        and isinstance(sub.left, ast.Name)
                        and sub.left.id == "key"
                    ):
                        for const in sub.comparators:
                            if isinstance(const, ast.Constant) and isinstance(const.value, str):
                                found.setdefault(const.value, f"{module} Faults.update")
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "_GRAPH_FAULTS" for t in node.targets
            ):
                for value in ast.walk(node.value):
                    if isinstance(value, ast.Constant) and isinstance(value.value, str):
                        found.setdefault(value.value, f"{module} _GRAPH_FAULTS")
    return found


def simulator_error_codes() -> tuple[dict[str, str], dict[str, str]]:
    """(Graph error codes, AADSTS numbers) the simulator answers with: code -> module."""
    graph: dict[str, str] = {}
    entra: dict[str, str] = {}
    for module, tree in _modules():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _receiver_name(node.func)
            args = node.args
            if name == "GraphError" and len(args) > 1:
                code = args[1]
            elif name == "bad_request":
                code = args[1] if len(args) > 1 else ast.Constant("invalidRequest")
            elif name == "EntraError" and len(args) > 2:
                if isinstance(args[2], ast.Constant) and isinstance(args[2].value, int):
                    entra.setdefault(str(args[2].value), module)
                continue
            else:
                continue
            if isinstance(code, ast.Constant) and isinstance(code.value, str):
                graph.setdefault(code.value, module)
    return graph, entra


def _regex_to_template(pattern: str) -> str:
    """`/users/(?P<user>[^/]+)` -> `/users/{user}`; optional groups are dropped."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("(?P<", i) or pattern.startswith("(?:", i):
            named = pattern.startswith("(?P<", i)
            name = pattern[i + 4 : pattern.index(">", i)] if named else ""
            depth, j = 0, i
            while True:
                if pattern[j] == "\\":
                    j += 2
                    continue
                depth += {"(": 1, ")": -1}.get(pattern[j], 0)
                j += 1
                if depth == 0:
                    break
            optional = j < len(pattern) and pattern[j] == "?"
            out += f"{{{name}}}" if named and not optional else ""
            i = j + (1 if optional else 0)
        elif pattern[i] == "\\":
            out += pattern[i + 1]
            i += 2
        else:
            out += pattern[i]
            i += 1
    return out


@cache
def simulated_graph_routes() -> tuple[tuple[str, str], ...]:
    """(METHOD, /v1.0 template) for every route in GraphService's table, and $batch."""
    from credly_connector.simulator.graph import GraphService
    from credly_connector.simulator.runner import Simulator

    routes = [("POST", "/v1.0/$batch")]  # dispatched before the table (graph.py _dispatch)
    with start_simulator("demo") as sim:
        assert isinstance(sim, Simulator) and isinstance(sim.graph, GraphService)
        table = sim.graph.served_routes()
    for pattern, methods in table.items():
        for method in sorted(methods):
            routes.append((method, "/v1.0" + _regex_to_template(pattern)))
    return tuple(routes)


def simulator_services() -> list[str]:
    return [field.name.replace("_", "-") for field in dataclasses.fields(SimulatorUrls)]


def handler_path_literals() -> dict[str, set[str]]:
    """Per non-Graph service: the path literals its `handle` method compares against."""
    found: dict[str, set[str]] = {}
    for _, tree in _modules():
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
            service = None
            for stmt in cls.body:
                if (
                    isinstance(stmt, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == "name" for t in stmt.targets)
                    and isinstance(stmt.value, ast.Constant)
                ):
                    service = str(stmt.value.value)
            if service is None or service == "graph":
                continue
            for method in cls.body:
                if not (isinstance(method, ast.FunctionDef) and method.name == "handle"):
                    continue
                for node in ast.walk(method):
                    if not isinstance(node, ast.Compare):
                        continue
                    for side in [node.left, *node.comparators]:
                        for const in ast.walk(side):
                            if (
                                isinstance(const, ast.Constant)
                                and isinstance(const.value, str)
                                and const.value not in HTTP_METHODS
                            ):
                                found.setdefault(service, set()).add(const.value)
    return found


# -- the ledger itself --------------------------------------------------------------------


def test_ledger_rows_have_unique_well_formed_ids_and_a_source() -> None:
    rows = ledger_rows()
    assert len(rows) > 100, "docs/fidelity.md: the tables were not found (header 'Id | ...')"
    seen: set[str] = set()
    for row in rows:
        assert ROW_ID.fullmatch(row.id), f"docs/fidelity.md row {row.id!r}: malformed id"
        assert row.id not in seen, f"docs/fidelity.md: row id {row.id} is used twice"
        seen.add(row.id)
        assert row.rule and row.source, f"docs/fidelity.md row {row.id}: rule or source empty"


def test_every_key_is_well_formed() -> None:
    prefixes = ("switch:", "fault:", "scenario:", "graph-error:", "aadsts:")
    services = set(simulator_services())
    for row in ledger_rows():
        for key in row.keys:
            parts = key.split()
            if len(parts) == 3 and parts[1] in HTTP_METHODS:
                assert parts[0] in services, f"{row.id}: unknown service in `{key}`"
                assert parts[2].startswith("/"), f"{row.id}: `{key}` needs an absolute path"
            else:
                assert key.startswith(prefixes) or not re.fullmatch(r"[a-z-]+:\S+", key), (
                    f"{row.id}: unknown key kind in `{key}`"
                )


def test_inferred_rows_name_the_tests_that_try_both_ways() -> None:
    for row in ledger_rows():
        if row.inferred and not row.pending:
            assert row.tests, (
                f"docs/fidelity.md row {row.id} is inferred but names no test: list the tests "
                "(tests/...py::test_name) that run credlyctl under each plausible answer"
            )
        for ref in row.tests if not row.pending else ():
            file, name = ref.split("::")
            path = REPO_ROOT / file
            assert path.exists(), f"docs/fidelity.md row {row.id}: {file} does not exist"
            assert re.search(rf"^\s*(?:async )?def {name}\(", path.read_text("utf-8"), re.M), (
                f"docs/fidelity.md row {row.id}: no test {name} in {file}"
            )


# -- (a) every behaviour and knob of the simulator has a row ------------------------------


def test_every_simulator_switch_has_a_row() -> None:
    listed = keys_of("switch")
    missing = [
        missing_row("simulator switch", f"switch:{name}", "simulator/knobs.py SWITCHES")
        for name in knobs.SWITCHES
        if name not in listed
    ]
    assert not missing, "\n".join(missing)


def test_every_simulator_fault_has_a_row() -> None:
    listed = keys_of("fault")
    missing = [
        missing_row("simulator fault", f"fault:{name}", where)
        for name, where in simulator_faults().items()
        if name not in listed
    ]
    assert not missing, "\n".join(missing)


def test_every_scenario_option_has_a_row() -> None:
    listed = keys_of("scenario")
    missing = [
        missing_row("scenario option", f"scenario:{key}", where)
        for key, where in simulator_scenario_options().items()
        if key not in listed
    ]
    assert not missing, "\n".join(missing)


def test_every_simulated_error_code_has_a_row() -> None:
    graph, entra = simulator_error_codes()
    assert "InvalidAuthenticationToken" in graph and "7000215" in entra  # the scan works
    listed_graph, listed_entra = keys_of("graph-error"), keys_of("aadsts")
    missing = [
        missing_row("Graph error", f"graph-error:{code}", where)
        for code, where in graph.items()
        if code not in listed_graph
    ] + [
        missing_row("Entra error", f"aadsts:{code}", where)
        for code, where in entra.items()
        if code not in listed_entra
    ]
    assert not missing, "\n".join(missing)


def test_every_simulated_graph_route_has_a_row() -> None:
    shapes = {(r.method, r.shape) for r in ledger_routes() if r.service == "graph"}
    missing = [
        missing_row("simulated Graph route", f"graph {method} {template}", "simulator/graph.py")
        for method, template in simulated_graph_routes()
        if (method, re.sub(r"\{[^}]*\}", "{}", template)) not in shapes
    ]
    assert not missing, "\n".join(missing)


def test_every_path_the_other_services_serve_has_a_row() -> None:
    by_service: dict[str, set[str]] = {}
    for route in ledger_routes():
        segments = by_service.setdefault(route.service, set())
        segments.add(route.template)
        segments.update(s for s in route.template.split("/") if s)
    literals = handler_path_literals()
    assert {"credly-web", "credly-api", "entra"} <= set(literals)  # the scan works
    missing = [
        f"docs/fidelity.md has no {service} route using the path literal {value!r} that the "
        f"simulated {service} handle() compares with: add a row whose Keys name the route "
        f"(`{service} <METHOD> <path>`)"
        for service, values in sorted(literals.items())
        for value in sorted(values)
        if value not in by_service.get(service, set())
    ]
    assert not missing, "\n".join(missing)


def test_every_simulator_service_is_in_the_ledger() -> None:
    services = {r.service for r in ledger_routes()}
    for service in simulator_services():
        assert service in services, f"docs/fidelity.md has no route of service {service!r}"


# -- rows that name something must name something real ------------------------------------


def test_landed_rows_name_switches_faults_options_and_codes_that_exist() -> None:
    declared = {
        "switch": set(knobs.SWITCHES),
        "fault": set(simulator_faults()),
        "scenario": set(simulator_scenario_options()),
        "graph-error": set(simulator_error_codes()[0]),
        "aadsts": set(simulator_error_codes()[1]),
    }
    for kind, names in declared.items():
        for name, row in keys_of(kind, landed_only=True).items():
            assert name in names, (
                f"docs/fidelity.md row {row} names `{kind}:{name}`, which the simulator does "
                "not have: fix the row, or mark it (pending) while the change is under way"
            )


def test_landed_graph_rows_name_routes_the_simulator_serves() -> None:
    served = {(m, re.sub(r"\{[^}]*\}", "{}", t)) for m, t in simulated_graph_routes()}
    for route in ledger_routes():
        if route.service == "graph" and not route.pending:
            assert (route.method, route.shape) in served, (
                f"docs/fidelity.md row {route.row} names `graph {route.method} "
                f"{route.template}`, which the simulator does not serve: fix the row, or mark "
                "it (pending)"
            )


# -- (b) every call credlyctl makes has a row ---------------------------------------------


def test_client_path_templates_have_rows() -> None:
    from credly_connector.graph.client import PATH_TEMPLATES

    shapes = {r.shape for r in ledger_routes() if r.service == "graph"}
    for template in PATH_TEMPLATES:
        shape = "/v1.0" + re.sub(r"\{[^}]*\}", "{}", template)
        assert shape in shapes, missing_row(
            "Graph path the client declares", f"graph <METHOD> /v1.0{template}", "PATH_TEMPLATES"
        )


def _record_graph_batches(sim: Any, into: list[tuple[str, str, str]]) -> None:
    """Wrap the simulated Graph's entry point so each $batch entry is recorded as a call."""
    original = sim.graph.handle

    def handle(request: Any) -> Any:
        if request.path.rstrip("/") == "/v1.0/$batch" and request.method == "POST":
            try:
                entries = json.loads(request.body)["requests"]
            except (ValueError, KeyError, TypeError):
                entries = []
            for entry in entries:
                url = str(entry.get("url", "")).split("?", 1)[0]
                into.append(("graph", str(entry.get("method", "")).upper(), "/v1.0" + url))
        return original(request)

    sim.graph.handle = handle


@pytest.mark.integration
@pytest.mark.slow
def test_every_call_credlyctl_makes_has_a_row(tmp_path: Path) -> None:
    from tests.diagnostics.cli_helpers import invoke

    calls: list[tuple[str, str, str]] = []
    with start_simulator("demo") as sim:
        _record_graph_batches(sim, calls)
        config = sim.write_config(tmp_path / "c.toml", state_dir=tmp_path / "state")
        token_config = tmp_path / "token.toml"
        token_config.write_text(
            sim.config_toml(credly_auth="token", state_dir=tmp_path / "state-token"), "utf-8"
        )
        cert_config = tmp_path / "cert.toml"
        cert_config.write_text(
            sim.config_toml(certificate="main", state_dir=tmp_path / "state-cert"), "utf-8"
        )
        federated_config = tmp_path / "federated.toml"
        federated_config.write_text(
            sim.config_toml(entra_auth="federated_token", state_dir=tmp_path / "state-fed"),
            "utf-8",
        )
        identity_config = tmp_path / "identity.toml"
        identity_config.write_text(
            sim.config_toml(entra_auth="managed_identity", state_dir=tmp_path / "state-mi"),
            "utf-8",
        )

        def run(*args: str, config_path: Path = config) -> None:
            code, out, err = invoke(*args, "--config", str(config_path))
            assert code in (0, 1), f"credlyctl {' '.join(args)} exited {code}: {out}{err}"

        run("setup")
        run("setup")  # the second run reads everything back
        run("sync", "--full")
        run("sync", "--incremental")
        sim.update_user("alex.wilber@contoso.com", accountEnabled=False)
        run("sync", "--incremental")  # a delete
        sim.expire_delta_tokens()
        run("sync", "--incremental")  # an expired delta link
        run("sync", "--user", "diego.siciliani@contoso.com")
        run("status")
        run("diagnose")
        run("diagnose", "adele.vance@contoso.com")
        run("explain-user", "nobody.here@contoso.com")
        run("coverage")
        run("test-credentials")
        run("test-credentials", config_path=token_config)
        run("test-credentials", config_path=cert_config)
        federated_config = tmp_path / "federated.toml"
        federated_config.write_text(
            sim.config_toml(entra_auth="federated_token", state_dir=tmp_path / "state-fed"), "utf-8"
        )
        run("test-credentials", config_path=federated_config)
        identity_config = tmp_path / "identity.toml"
        identity_config.write_text(
            sim.config_toml(entra_auth="managed_identity", state_dir=tmp_path / "state-mi"), "utf-8"
        )
        for style in ("app_service", "imds"):
            with pytest.MonkeyPatch.context() as environment:
                for name, value in sim.managed_identity_env(style).items():
                    environment.setenv(name, value)
                run("test-credentials", config_path=identity_config)
        run("test-credentials", config_path=federated_config)
        for style in ("app_service", "imds"):
            with pytest.MonkeyPatch.context() as patch:
                for name, value in sim.managed_identity_env(style).items():
                    patch.setenv(name, value)
                run("test-credentials", config_path=identity_config)
        run("check-endpoint")
        run("support-bundle", "-o", str(tmp_path / "bundle.zip"))
        run("teardown", "--yes")
        calls.extend((e.service, e.method, e.path) for e in sim.request_log())

    unique = sorted(set(calls))
    # The run really went everywhere: every service, item writes and deletes inside $batch.
    assert {s for s, _, _ in unique} == set(simulator_services()), unique
    graph_calls = {(m, p) for s, m, p in unique if s == "graph"}
    assert ("POST", "/v1.0/$batch") in graph_calls
    assert {"PUT", "DELETE"} <= {m for m, p in graph_calls if "/items/" in p}, graph_calls
    missing = [
        f"credlyctl sent {service} {method} {path}, and docs/fidelity.md has no row for it: "
        f"add a row with the key `{service} {method} <template>` ({{name}} for an id)"
        for service, method, path in unique
        if row_for(service, method, path) is None
    ]
    assert not missing, "\n".join(missing)
