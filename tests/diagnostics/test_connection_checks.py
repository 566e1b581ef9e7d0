"""Connection checks with fake clients: the cases the simulator cannot easily produce."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme

from credly_connector.credly.errors import CredlyUnavailable
from credly_connector.credly.models import Organization
from credly_connector.diagnostics import registry
from credly_connector.diagnostics.context import DiagnosticContext
from credly_connector.diagnostics.model import CheckResult, CheckStatus
from credly_connector.exit_codes import ExitCode
from credly_connector.graph.errors import EntraUnavailable
from credly_connector.secrets import Secret
from credly_connector.sync.state import CrawlRecord
from tests.diagnostics.helpers_settings import ENTRA_SECRET, make_settings

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ALL_ROLES = [
    "User.Read.All",
    "ExternalConnection.ReadWrite.OwnedBy",
    "ExternalItem.ReadWrite.OwnedBy",
    "PeopleSettings.ReadWrite.All",
]


class FakeCredly:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    def get_organization(self) -> Organization:
        if self.error:
            raise self.error
        return Organization("org", "Contoso", None)

    def iter_badges(self, **_: Any) -> Any:
        return iter([])

    def list_organizations(self) -> list[Organization]:
        return []


class FakeTokens:
    def __init__(self, roles: list[str] | None = None, error: Exception | None = None) -> None:
        self.roles = ALL_ROLES if roles is None else roles
        self.error = error

    def get_token(self) -> str:
        if self.error:
            raise self.error
        return "token-value-for-tests"

    def token_claims(self) -> dict[str, Any] | None:
        return {"tid": "11111111-2222-3333-4444-555555555555", "roles": self.roles}

    def granted_roles(self) -> list[str] | None:
        return self.roles


class FakeGraph:
    def __init__(self, **overrides: Any) -> None:
        self.sources: list[dict[str, Any]] = overrides.get(
            "sources",
            [
                {"sourceId": "entra-id", "kind": "MSEntra", "displayName": "Microsoft Entra ID"},
                {"sourceId": "credlybadges", "kind": "Connector", "displayName": "Credly badges"},
            ],
        )
        self.connections: list[dict[str, Any]] = overrides.get(
            "connections",
            [{"id": "credlybadges", "contentCategory": "people", "state": "ready"}],
        )
        self.app: dict[str, Any] | None = overrides.get("app")

    def get_user(self, _: str) -> None:
        return None

    def list_connections(self) -> list[dict[str, Any]]:
        return self.connections

    def get_connection(self, cid: str) -> dict[str, Any] | None:
        return next((c for c in self.connections if c["id"] == cid), None)

    def get_item(self, *_: str) -> None:
        return None

    def list_profile_sources(self) -> list[dict[str, Any]]:
        return self.sources

    def get_application(self, _: str) -> dict[str, Any] | None:
        return self.app


def context(
    tmp_path: Path,
    *,
    credly_client: FakeCredly | None = None,
    tokens: FakeTokens | None = None,
    graph: FakeGraph | None = None,
    state: Any = None,
    **settings_changes: Any,
) -> DiagnosticContext:
    settings = make_settings(tmp_path, **settings_changes)
    return DiagnosticContext(
        settings,
        now=NOW,
        credly_factory=lambda _: credly_client or FakeCredly(),
        tokens_factory=lambda _: tokens or FakeTokens(),
        graph_factory=lambda _s, _t: graph or FakeGraph(),
        state_factory=lambda _: state,
    )


def one(ctx: DiagnosticContext, check_id: str) -> CheckResult:
    return [r for r in registry.run_checks(ctx, [check_id]) if r.check_id == check_id][-1]


# -- Credly ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age_days", "status", "cause"),
    [
        (10, "ok", None),
        (160, "warn", "credly_token_expiring"),
        (200, "fail", "credly_token_expired"),
    ],
)
def test_authorization_token_age(tmp_path: Path, age_days: int, status: str, cause: str) -> None:
    created = NOW.date() - timedelta(days=age_days)
    ctx = context(
        tmp_path,
        credly={
            "authorization_token": Secret("auth-token-value-1234", "env:T"),
            "authorization_token_created": created,
        },
    )
    result = one(ctx, "credly.secret_expiry")
    assert result.status == status and result.cause == cause
    assert result.evidence["age_days"] == age_days


def test_authorization_token_without_creation_date_cannot_be_known(tmp_path: Path) -> None:
    ctx = context(
        tmp_path, credly={"authorization_token": Secret("auth-token-value-1234", "env:T")}
    )
    result = one(ctx, "credly.secret_expiry")
    assert result.status == CheckStatus.WARN and "cannot know" in result.explanation


def test_credly_network_failure_is_remote_and_tls_is_a_problem(tmp_path: Path) -> None:
    down = CredlyUnavailable("network", "could not reach Credly", "retry")
    result = one(context(tmp_path, credly_client=FakeCredly(down)), "credly.credentials")
    assert result.status == CheckStatus.ERROR and result.remote_failure
    assert registry.verdict([result]) == ExitCode.REMOTE
    tls = CredlyUnavailable("tls", "the TLS connection failed", "set network.ca_bundle")
    result = one(context(tmp_path, credly_client=FakeCredly(tls)), "credly.credentials")
    assert result.status == CheckStatus.FAIL and result.cause == "credly_tls"


def test_api_url_of_the_other_environment_is_a_wrong_endpoint(tmp_path: Path) -> None:
    ctx = context(tmp_path, credly={"api_base": "https://sandbox-api.credly.com/v1"})
    result = one(ctx, "credly.endpoint")
    assert result.status == CheckStatus.FAIL and result.table_row == "wrong-endpoint-url"
    assert "https://api.credly.com/v1" in result.fix


# -- Entra ID --------------------------------------------------------------------------------


def test_entra_outage_is_remote(tmp_path: Path) -> None:
    tokens = FakeTokens(error=EntraUnavailable("network", "could not reach Entra ID", "retry"))
    results = registry.run_checks(context(tmp_path, tokens=tokens), ["graph.permissions"])
    assert results[0].status == CheckStatus.ERROR and results[0].remote_failure
    assert results[1].status == CheckStatus.SKIPPED
    assert registry.verdict(results) == ExitCode.REMOTE


@pytest.mark.parametrize(("days", "status"), [(120, "ok"), (20, "warn"), (-3, "fail")])
def test_recorded_secret_expiry(tmp_path: Path, days: int, status: str) -> None:
    ctx = context(tmp_path, entra={"client_secret_expires": NOW.date() + timedelta(days=days)})
    result = one(ctx, "entra.secret_expiry")
    assert result.status == status
    assert result.evidence["source"] == "entra.client_secret_expires"


def test_secret_end_date_from_the_app_registration_by_hint(tmp_path: Path) -> None:
    app = {
        "passwordCredentials": [
            {"hint": ENTRA_SECRET[:3], "endDateTime": "2026-12-10T00:00:00Z"},
            {"hint": "zzz", "endDateTime": "2028-01-01T00:00:00Z"},
        ]
    }
    roles = [*ALL_ROLES, "Application.Read.All"]
    ctx = context(tmp_path, tokens=FakeTokens(roles), graph=FakeGraph(app=app))
    result = one(ctx, "entra.secret_expiry")
    assert result.status == CheckStatus.WARN and "2026-12-10" in result.explanation
    assert result.evidence["source"] == "app registration"
    assert ENTRA_SECRET[:3] not in [str(v) for v in result.evidence.values()]


def test_without_application_read_the_app_is_not_read(tmp_path: Path) -> None:
    app = {"passwordCredentials": [{"endDateTime": "2026-12-01T00:00:00Z"}]}
    result = one(context(tmp_path, graph=FakeGraph(app=app)), "entra.secret_expiry")
    assert result.status == CheckStatus.OK and "cannot know" in result.explanation


def test_certificate_end_date(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("app.example", not_after=NOW + timedelta(days=10))
    pem = tmp_path / "app.pem"
    pem.write_bytes(cert.private_key_pem.bytes() + cert.cert_chain_pems[0].bytes())
    ctx = context(tmp_path, entra={"client_secret": None, "certificate_path": pem})
    result = one(ctx, "entra.secret_expiry")
    assert result.status == CheckStatus.WARN and result.evidence["source"] == "certificate file"


# -- Graph -----------------------------------------------------------------------------------


def test_unreadable_roles_and_no_confirming_call_is_a_warning(tmp_path: Path) -> None:
    class NoRoles(FakeTokens):
        def granted_roles(self) -> list[str] | None:
            return None

    graph = FakeGraph(connections=[])  # no connection: no item can confirm the item permission
    results = registry.run_checks(
        context(tmp_path, tokens=NoRoles(), graph=graph), ["graph.permissions"]
    )
    item = next(
        r for r in results if r.evidence.get("permission") == "ExternalItem.ReadWrite.OwnedBy"
    )
    assert item.status == CheckStatus.WARN and "Could not check" in item.explanation


@pytest.mark.parametrize(
    ("source", "status"),
    [
        ({"sourceId": "MicrosoftCredly", "kind": "Connector", "displayName": "Credly"}, "warn"),
        ({"sourceId": "workday", "kind": "Connector", "displayName": "Workday"}, "ok"),
    ],
)
def test_uninspectable_sources(tmp_path: Path, source: dict[str, Any], status: str) -> None:
    graph = FakeGraph()
    graph.sources = [*graph.sources, source]
    result = one(context(tmp_path, graph=graph), "graph.other_sources")
    assert result.status == status
    assert "could not check" in result.explanation
    assert "ExternalConnection.Read.All" in result.explanation


def test_with_only_owned_by_the_overlap_check_says_what_it_could_not_see(tmp_path: Path) -> None:
    # OwnedBy reaches only the connections the app is authorized to: finding no other source
    # is said together with what stayed invisible.
    result = one(context(tmp_path), "graph.other_sources")
    assert result.status == CheckStatus.OK
    assert "not those of other apps" in result.explanation
    assert result.evidence["connections_of_other_apps_visible"] is False
    read_all = FakeTokens([*ALL_ROLES, "ExternalConnection.Read.All"])
    result = one(context(tmp_path, tokens=read_all), "graph.other_sources")
    assert result.explanation == "No other source puts awards or certifications on profiles."


def test_a_foreign_schema_graph_does_not_show_is_not_inspectable(tmp_path: Path) -> None:
    class Masked(FakeGraph):
        def get_schema(self, _: str) -> dict[str, Any]:
            masked = {
                "name": "awards",
                "type": "stringCollection",
                "labels": ["unknownFutureValue"],
            }
            return {"properties": [masked]}

    graph = Masked()
    graph.connections = [*graph.connections, {"id": "Other", "contentCategory": "people"}]
    read_all = FakeTokens([*ALL_ROLES, "ExternalConnection.Read.All"])
    result = one(context(tmp_path, tokens=read_all, graph=graph), "graph.other_sources")
    assert result.evidence["not_inspectable"] == [
        "connection Other (Graph did not show its labels)"
    ]
    assert result.evidence["overlapping"] == []


def test_wrong_content_category(tmp_path: Path) -> None:
    graph = FakeGraph(
        connections=[{"id": "credlybadges", "contentCategory": "uncategorized", "state": "ready"}]
    )
    result = one(context(tmp_path, graph=graph), "graph.connection_state")
    assert result.status == CheckStatus.FAIL and result.cause == "connection_not_people"


# -- sync state ------------------------------------------------------------------------------


class FakeState:
    def __init__(self, crawls: list[CrawlRecord]) -> None:
        self.crawls = crawls  # newest first, like SyncState.crawl_history

    def crawl_history(self, n: int = 10) -> list[CrawlRecord]:
        return self.crawls[:n]


def crawl(cid: int, kind: str, outcome: str, hours_ago: float, errors: Any = ()) -> CrawlRecord:
    started = NOW - timedelta(hours=hours_ago)
    return CrawlRecord(
        cid, kind, started, started + timedelta(minutes=1), outcome, {}, list(errors)
    )


@pytest.mark.parametrize(
    ("crawls", "status", "cause"),
    [
        ([crawl(2, "incremental", "succeeded", 3), crawl(1, "full", "succeeded", 30)], "ok", None),
        ([crawl(1, "full", "failed", 2)], "fail", "no_completed_crawl"),
        (
            [
                crawl(2, "incremental", "failed", 1, [{"message": "Graph 503"}]),
                crawl(1, "full", "succeeded", 20),
            ],
            "fail",
            "last_crawl_failed",
        ),
        ([crawl(1, "full", "partial", 2)], "warn", "last_crawl_partial"),
        ([crawl(1, "full", "succeeded", 24 * 5)], "warn", "crawls_overdue"),
    ],
)
def test_last_crawl(tmp_path: Path, crawls: list[CrawlRecord], status: str, cause: str) -> None:
    result = one(context(tmp_path, state=FakeState(crawls)), "sync.last_crawl")
    assert (result.status, result.cause) == (status, cause)


def test_data_delay_is_a_note_for_six_hours(tmp_path: Path) -> None:
    fresh = context(tmp_path, state=FakeState([crawl(1, "full", "succeeded", 2)]))
    assert one(fresh, "sync.data_delay").status == CheckStatus.NOTE
    old = context(tmp_path, state=FakeState([crawl(1, "full", "succeeded", 7)]))
    assert one(old, "sync.data_delay").status == CheckStatus.OK


def test_results_never_hold_the_token(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    text = str([r.to_dict() for r in registry.run_checks(ctx)])
    assert "token-value-for-tests" not in text and ENTRA_SECRET not in text


def test_expiry_uses_the_contexts_clock(tmp_path: Path) -> None:
    ctx = context(tmp_path, entra={"client_secret_expires": date(2026, 12, 1)})
    ctx.now = NOW.replace(year=2027)
    assert one(ctx, "entra.secret_expiry").status == CheckStatus.FAIL


def test_config_valid_passes_for_a_clean_production_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_CREDLY_SECRET", "credly-secret-from-env-42")
    monkeypatch.setenv("TEST_ENTRA_SECRET", "entra-secret-from-env-42")
    path = tmp_path / "credlyctl.toml"
    path.write_text(
        "[instances.contoso.credly]\n"
        'org_id = "ba92621f-f22c-41e5-9157-c2dc274e3cf0"\n'
        'client_id = "contoso-sync"\n'
        'client_secret = { env = "TEST_CREDLY_SECRET" }\n'
        "[instances.contoso.entra]\n"
        'tenant_id = "11111111-2222-3333-4444-555555555555"\n'
        'client_id = "66666666-7777-8888-9999-000000000000"\n'
        'client_secret = { env = "TEST_ENTRA_SECRET" }\n',
        encoding="utf-8",
    )
    path.chmod(0o600)
    ctx = DiagnosticContext.load(path, None)
    ids = ["config.valid", "credly.org_id_format", "config.multiple_orgs", "credly.endpoint"]
    results = {r.check_id: r for r in registry.run_checks(ctx, ids)}
    assert {k: str(r.status) for k, r in results.items()} == dict.fromkeys(ids, "ok")
    monkeypatch.delenv("TEST_ENTRA_SECRET")
    broken = registry.run_checks(DiagnosticContext.load(path, None), ["config.valid"])[0]
    assert broken.status == CheckStatus.FAIL and broken.cause == "config_invalid"
    assert "TEST_ENTRA_SECRET" in broken.explanation + broken.fix
