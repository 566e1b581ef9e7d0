"""One exception tree: the class alone says what failed and which exit code it means."""

from __future__ import annotations

import httpx
import pytest

from credly_connector.credly.errors import CredlyAuthError, CredlyUnavailable
from credly_connector.diagnostics import registry
from credly_connector.diagnostics.context import DiagnosticContext
from credly_connector.diagnostics.model import CheckResult, CheckStatus
from credly_connector.errors import (
    ConfigError,
    CredlyctlError,
    ForbiddenHostError,
    InternalError,
    RemoteError,
    RemoteRefused,
    Retryable,
    UsageError,
    exit_code_of,
    is_retryable,
)
from credly_connector.exit_codes import ExitCode
from credly_connector.graph.errors import (
    DeltaExpiredError,
    EntraAuthError,
    EntraUnavailable,
    GraphPermissionError,
    GraphRefused,
    GraphUnavailable,
)
from tests.clients.helpers import FakeServer
from tests.clients.test_graph_client import error, graph


@pytest.fixture
def fake() -> FakeServer:
    return FakeServer()


@pytest.fixture
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", {})
    monkeypatch.setattr(registry, "_loaded", True)


REFUSALS: list[CredlyctlError] = [
    CredlyAuthError("token_rejected", "Credly said no", "fix the token"),
    GraphRefused("Graph said 400", status=400),
    GraphRefused("Graph said 401", status=401, error_id="graph.unauthenticated"),
    GraphPermissionError("Graph said 403", permission="User.Read.All", status=403),
    DeltaExpiredError("gone", status=410),
    EntraAuthError("no token", "fix", codes=[7000215], error="invalid_client", summary=None),
]
RETRYABLE: list[CredlyctlError] = [
    CredlyUnavailable("server", "Credly 503"),
    GraphUnavailable("throttled", "Graph 429", status=429),
    EntraUnavailable("network", "no answer"),
    RemoteError("a remote failure nobody sorted"),
]


@pytest.mark.parametrize("exc", REFUSALS, ids=lambda e: type(e).__name__)
def test_a_refusal_is_remote_not_retryable_and_exits_2(exc: CredlyctlError) -> None:
    assert isinstance(exc, RemoteError) and isinstance(exc, RemoteRefused)
    assert not is_retryable(exc)
    assert exit_code_of(exc) is ExitCode.USAGE


@pytest.mark.parametrize("exc", RETRYABLE, ids=lambda e: type(e).__name__)
def test_a_failure_worth_retrying_exits_3(exc: CredlyctlError) -> None:
    assert is_retryable(exc)
    assert exit_code_of(exc) is ExitCode.REMOTE


def test_the_other_branches() -> None:
    assert exit_code_of(UsageError("bad option")) is ExitCode.USAGE
    assert exit_code_of(ConfigError("bad file")) is ExitCode.USAGE
    assert exit_code_of(ForbiddenHostError("evil host")) is ExitCode.USAGE
    assert exit_code_of(InternalError("a broken rule")) is ExitCode.INTERNAL
    assert exit_code_of(ZeroDivisionError()) is ExitCode.INTERNAL
    assert issubclass(Retryable, RemoteError)
    assert not issubclass(RemoteRefused, UsageError)  # a refusal is remote, with the code 2


def test_unavailable_errors_keep_their_kind_status_and_id() -> None:
    exc = GraphUnavailable("throttled", "Graph 429", "later", status=429, request_id="r1")
    assert (exc.kind, exc.status, exc.request_id, exc.error_id) == (
        "throttled",
        429,
        "r1",
        "graph.throttled",
    )
    assert (exc.message, exc.hint) == ("Graph 429", "later")
    assert CredlyUnavailable("tls", "m", status=None).error_id == "credly.tls"
    assert EntraUnavailable("server", "m").error_id == "entra.server"


@pytest.mark.parametrize("status", [400, 401, 404, 409])
def test_graph_4xx_is_a_refusal_everywhere(fake: FakeServer, status: int) -> None:
    """A 400 means our request is wrong and a 401 the token is: "retry later" would be false."""
    fake.on("GET", "/v1.0/external/connections", error(status, "BadRequest", "nope"))
    with pytest.raises(GraphRefused) as caught:
        graph(fake).list_connections()
    assert caught.value.exit_code is ExitCode.USAGE
    assert not is_retryable(caught.value)


def test_a_graph_401_exits_alike_in_diagnose(fresh_registry: None) -> None:
    @registry.register("g.who", "Graph", scope="connection")
    def _who(c: DiagnosticContext) -> CheckResult:
        raise GraphRefused("Graph rejected the token", status=401)

    results = registry.run_checks(DiagnosticContext(settings=None))
    assert results[0].status == CheckStatus.ERROR and not results[0].remote_failure
    assert registry.verdict(results) is ExitCode.USAGE


def test_a_retryable_failure_in_a_check_says_retry(fresh_registry: None) -> None:
    @registry.register("g.later", "Graph", scope="connection")
    def _later(c: DiagnosticContext) -> CheckResult:
        raise GraphUnavailable("server", "Graph 503")

    assert registry.verdict(registry.run_checks(DiagnosticContext(None))) is ExitCode.REMOTE


def test_a_transport_failure_is_still_retryable(fake: FakeServer) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    fake.on("GET", "/v1.0/external/connections", down)
    with pytest.raises(GraphUnavailable) as caught:
        graph(fake).list_connections()
    assert is_retryable(caught.value)


def test_a_400_on_the_schema_patch_is_not_retry_later(fake: FakeServer) -> None:
    """Hardening L4: Graph refusing the schema (e.g. an enum member it does not take) needs a
    change, not a rerun: exit 2 with Graph's code, never 3 "worth retrying"."""
    fake.on(
        "PATCH",
        "/v1.0/external/connections/c1/schema",
        error(400, "InvalidRequest", "The schema is not valid"),
    )
    with pytest.raises(GraphRefused) as caught:
        graph(fake).register_schema("c1", [{"name": "title", "type": "string"}])
    assert caught.value.exit_code is ExitCode.USAGE
    assert "InvalidRequest" in caught.value.message
    assert len([r for r in fake.seen if r.method == "PATCH"]) == 1  # not retried
