"""Start the simulator from Python: `with start_simulator("demo") as sim: ...`.

Every service gets its own HTTPS port on 127.0.0.1 with a certificate from a CA created for
this run; the CA, generated client certificates and secret files live in `sim.workdir`,
which is removed on stop.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import trustme

from credly_connector.simulator.certs import prepare_certificates
from credly_connector.simulator.core import Service, TokenStore
from credly_connector.simulator.credly import CredlyApiService, CredlyStore, CredlyWebService
from credly_connector.simulator.directory import Directory
from credly_connector.simulator.entra import EntraService
from credly_connector.simulator.knobs import make_service_faults, make_switches
from credly_connector.simulator.scenario import load_scenario
from credly_connector.simulator.server import (
    Faults,
    LogEntry,
    RequestLog,
    SimServer,
    server_context,
)
from credly_connector.simulator.workload import (
    FEDERATED_AUDIENCE,
    FederatedIssuers,
    ManagedIdentityService,
)

_GRAPH_FAULTS = (
    "graph_ingestion_limit_per_second",
    "graph_schema_delay_seconds",
    "graph_concurrent_operations_limit",
)


def _graph_service_class() -> Any:
    # The Graph service is written separately; the rest of the simulator works without it.
    try:
        from credly_connector.simulator.graph import GraphService
    except ImportError:
        return None
    return GraphService


@dataclass(frozen=True)
class SimulatorUrls:
    credly_web: str  # the web host: /oauth/token
    credly_api: str  # ends in /v1
    entra: str  # authority base: append /<tenant>
    graph: str  # Graph root, without /v1.0
    managed_identity: str = ""  # the Azure host's identity endpoint (managed_identity_env)


def _toml_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


class Simulator:
    def __init__(
        self,
        scenario: dict[str, Any],
        *,
        faults: dict[str, Any] | None = None,
        switches: dict[str, Any] | None = None,
    ) -> None:
        started = time.perf_counter()
        # `scenario` is the runner's private copy (start_simulator loaded it), so dropping the
        # expectations in place is enough; the services take ownership of its data.
        self.scenario = {k: v for k, v in scenario.items() if k != "expectations"}
        self.workdir = Path(tempfile.mkdtemp(prefix="credlyctl-sim-"))
        self._servers: dict[str, SimServer] = {}
        try:
            self._start(faults or {}, switches or {})
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - started

    # -- start / stop -------------------------------------------------------------------------

    def _start(self, faults: dict[str, Any], switches: dict[str, Any]) -> None:
        ca = trustme.CA()
        self.ca_path = self.workdir / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_path))
        leaf = ca.issue_cert("127.0.0.1", "localhost")
        context = server_context(
            leaf.cert_chain_pems[0].bytes(), leaf.private_key_pem.bytes(), self.workdir
        )
        self.faults = Faults()
        self.log = RequestLog()
        for name in ("credly-web", "credly-api", "entra", "graph", "managed-identity"):
            server = SimServer(name, context, self.faults, self.log)
            self._servers[name] = server
        self.urls = SimulatorUrls(
            credly_web=self._servers["credly-web"].base_url,
            credly_api=self._servers["credly-api"].base_url + "/v1",
            entra=self._servers["entra"].base_url,
            graph=self._servers["graph"].base_url,
            managed_identity=self._servers["managed-identity"].base_url,
        )

        entra = self.scenario.get("entra", {})
        self.tenant_id = str(entra.get("tenant_id", "00000000-0000-0000-0000-000000000000"))
        self._cert_paths: dict[tuple[str, str], Path] = {}
        apps = []
        key_position = 0
        for app in entra.get("apps", []):
            record = dict(app)
            paths, key_position = prepare_certificates(record, self.workdir / "certs", key_position)
            for name, path in paths.items():
                self._cert_paths[(str(app["app_id"]).lower(), name)] = path
            apps.append(record)
        self.directory = Directory(
            self.tenant_id, entra.get("users", []), apps, entra.get("domains", [])
        )
        self.switches = make_switches()
        self.service_faults = make_service_faults()
        self.tokens = TokenStore()
        self.credly = CredlyStore(
            self.scenario.get("credly", {}), self.switches, self.service_faults
        )
        self.issuers = FederatedIssuers()
        self.entra = EntraService(
            self.directory,
            self.tokens,
            entra,
            self.urls.graph,
            self.service_faults,
            issuers=self.issuers,
        )
        self.managed_identity = ManagedIdentityService(
            self.directory,
            self.tokens,
            entra.get("managed_identities", []),
            self.urls.graph,
            lambda: self.service_faults.get("entra_token_lifetime_seconds"),
        )
        graph_class = _graph_service_class()
        self.graph: Any = (
            graph_class(
                self.directory,
                self.tokens,
                {"cloud": entra.get("cloud", "global"), **self.scenario.get("graph", {})},
            )
            if graph_class is not None
            else None
        )
        services: dict[str, Service | None] = {
            "credly-web": CredlyWebService(self.credly),
            "credly-api": CredlyApiService(self.credly),
            "entra": self.entra,
            "graph": self.graph,
            "managed-identity": self.managed_identity,
        }
        self.set_switches(**{**self.scenario.get("switches", {}), **switches})
        self.set_faults(**{**self.scenario.get("faults", {}), **faults})
        for name, server in self._servers.items():
            server.service = services[name]
            server.start()

    def stop(self) -> None:
        # In parallel: each shutdown waits for its serve loop's next poll.
        stoppers = [threading.Thread(target=s.stop) for s in self._servers.values()]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join()
        self._servers.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Simulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- configuration for credlyctl ----------------------------------------------------------

    def _secret_file(self, kind: str, value: str) -> Path:
        folder = self.workdir / "secrets"
        folder.mkdir(mode=0o700, exist_ok=True)
        # The name is a digest so that a file listing does not reveal the value either.
        path = folder / f"{kind}-{hashlib.sha256(value.encode()).hexdigest()[:12]}"
        if not path.exists():
            path.touch(mode=0o600)
            path.write_text(value, encoding="utf-8")
        # portable: on Windows chmod only sets the read-only flag (off here)
        path.chmod(0o600)
        return path

    def certificate_path(self, app_id: str, name: str) -> Path:
        return self._cert_paths[(app_id.lower(), name)]

    def config_toml(
        self,
        instance: str = "demo",
        org_id: str | None = None,
        state_dir: str | Path | None = None,
        *,
        credly_auth: str = "oauth",
        credly_client_id: str | None = None,
        credly_client_secret: str | None = None,
        authorization_token: str | None = None,
        entra_app_id: str | None = None,
        entra_secret: str | None = None,
        certificate: str | None = None,
        entra_auth: str | None = None,
        federated_token_file: str | Path | None = None,
        managed_identity_client_id: str | None = None,
        tenant_id: str | None = None,
        connection_id: str | None = None,
        base_url: str | None = None,
        default_instance: bool = True,
    ) -> str:
        """A credlyctl configuration for this simulator; secrets as `{ file = ... }` references.

        Defaults come from the scenario's `connector` section. Pass `certificate=<name>` to
        authenticate to Entra with a generated certificate instead of a secret,
        `entra_auth="federated_token"` (a fresh token file, or `federated_token_file`) or
        `entra_auth="managed_identity"` (with `managed_identity_env()` in the environment) for
        no stored secret, `base_url` to rehearse a wrong Credly URL. Every `change.config` of
        the demo's expectations is a valid set of keyword arguments here.
        """
        connector = self.scenario.get("connector", {})
        credly = self.scenario.get("credly", {})
        org = org_id or connector.get("org_id") or credly["organizations"][0]["id"]
        lines = [f"default_instance = {_toml_string(instance)}", ""] if default_instance else []
        lines += [f"[instances.{instance}.credly]", f"org_id = {_toml_string(org)}"]
        lines += [
            f"base_url = {_toml_string(base_url or self.urls.credly_web)}",
            f"api_url = {_toml_string(self.urls.credly_api)}",
        ]
        if credly_auth == "token":
            token_record = self._org_token(org, authorization_token)
            path = self._secret_file("credly-token", str(token_record["token"]))
            lines += [
                'auth = "token"',
                f"authorization_token = {{ file = {_toml_string(str(path))} }}",
            ]
            created = str(token_record.get("created_at") or "")[:10]
            if created:
                lines.append(f"authorization_token_created = {created}")
        else:
            default_id = connector.get("credly_client_id")
            fallback = self.credly.client(str(default_id)) if default_id else None
            fallback = fallback or next(iter(credly.get("oauth_clients", [])), None)
            client = self.credly.client(credly_client_id) if credly_client_id else fallback
            # An unknown client id is kept as given (to rehearse a typo) with the usual secret.
            client_id = credly_client_id or (client or {}).get("client_id")
            secret = credly_client_secret or (client or fallback or {}).get("client_secret")
            if not client_id or not secret:
                raise ValueError("the scenario has no Credly OAuth client")
            path = self._secret_file("credly-secret", str(secret))
            lines += [
                'auth = "oauth"',
                f"client_id = {_toml_string(str(client_id))}",
                f"client_secret = {{ file = {_toml_string(str(path))} }}",
            ]
        app_id = str(entra_app_id or connector.get("entra_app_id") or "")
        app = self.directory.app(app_id) if app_id else None
        if app is None:
            app = next(iter(self.directory.all_apps()), None)
        lines += [
            "",
            f"[instances.{instance}.entra]",
            f"tenant_id = {_toml_string(tenant_id or self.tenant_id)}",
            f"authority_url = {_toml_string(self.urls.entra)}",
        ]
        if entra_auth == "managed_identity":
            lines.append('auth = "managed_identity"')
            if managed_identity_client_id:
                lines.append(
                    f"managed_identity_client_id = {_toml_string(managed_identity_client_id)}"
                )
        elif entra_auth == "federated_token" and app is not None:
            token_file = (
                Path(federated_token_file)
                if federated_token_file is not None
                else self.write_federated_token(self.workdir / "federated-token")
            )
            lines += [
                f"client_id = {_toml_string(str(app['app_id']))}",
                'auth = "federated_token"',
                f"federated_token_file = {_toml_string(str(token_file))}",
            ]
        elif app is not None:
            lines.append(f"client_id = {_toml_string(str(app['app_id']))}")
            if certificate is not None:
                cert_path = self.certificate_path(str(app["app_id"]), certificate)
                lines.append(f"certificate_path = {_toml_string(str(cert_path))}")
            else:
                value = entra_secret if entra_secret is not None else _usable_secret(app)
                if value is not None:
                    path = self._secret_file("entra-secret", value)
                    lines.append(f"client_secret = {{ file = {_toml_string(str(path))} }}")
        state = Path(state_dir) if state_dir is not None else self.workdir / "state" / instance
        lines += [
            "",
            f"[instances.{instance}.graph]",
            f"base_url = {_toml_string(self.urls.graph)}",
            f"connection_id = "
            f"{_toml_string(connection_id or connector.get('connection_id', 'credlybadges'))}",
            "",
            f"[instances.{instance}.sync]",
            f"state_dir = {_toml_string(str(state))}",
            "",
            f"[instances.{instance}.network]",
            f"ca_bundle = {_toml_string(str(self.ca_path))}",
            "allow_custom_hosts = true",
            "",
        ]
        return "\n".join(lines)

    def _org_token(self, org_id: str, value: str | None) -> dict[str, Any]:
        tokens = self.scenario.get("credly", {}).get("authorization_tokens", [])
        for record in tokens:
            if value is not None and record["token"] == value:
                return dict(record)
        if value is not None:
            return {"token": value}
        for record in tokens:
            if str(record["organization_id"]).lower() == org_id.lower():
                return dict(record)
        raise ValueError(f"the scenario has no authorization token for organization {org_id}")

    # -- workload identities ------------------------------------------------------------------

    def federated_credential(self, app_id: str | None = None) -> dict[str, Any]:
        """The first federated credential of an app (default: the connector's app)."""
        connector = self.scenario.get("connector", {})
        app = self.directory.app(str(app_id or connector.get("entra_app_id") or ""))
        credentials = (app or {}).get("federated_credentials") or []
        if not credentials:
            raise ValueError("the app has no federated credential in the scenario")
        return dict(credentials[0])

    def federated_token(self, **claims: Any) -> str:
        """A token from the simulated identity provider, by default one the connector's app
        trusts (its first federated credential's issuer, subject and audience). Keywords:
        issuer, subject, audience, lifetime_seconds, issued_seconds_ago, signed_by."""
        trusted = self.federated_credential() if not {"issuer", "subject"} <= set(claims) else {}
        audiences = trusted.get("audiences") or [FEDERATED_AUDIENCE]
        claims.setdefault("issuer", trusted.get("issuer"))
        claims.setdefault("subject", trusted.get("subject"))
        claims.setdefault("audience", audiences[0])
        return self.issuers.token(**claims)

    def write_federated_token(self, path: str | Path, **claims: Any) -> Path:
        """Write a fresh token where a CI job (or Kubernetes) would; returns the path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.federated_token(**claims), encoding="utf-8")
        # portable: on Windows chmod only sets the read-only flag (off here)
        target.chmod(0o600)
        return target

    def managed_identity_env(self, style: str = "app_service") -> dict[str, str]:
        """The environment an Azure host gives its processes, pointing at this simulator.

        `app_service`: IDENTITY_ENDPOINT + IDENTITY_HEADER (App Service, Functions, Container
        Apps); `imds`: AZURE_POD_IDENTITY_AUTHORITY_HOST, where msal looks for the VM
        instance metadata service.
        """
        base = self.urls.managed_identity
        if style == "app_service":
            return {
                "IDENTITY_ENDPOINT": f"{base}/msi/token",
                "IDENTITY_HEADER": self.managed_identity.identity_header,
            }
        if style == "imds":
            return {"AZURE_POD_IDENTITY_AUTHORITY_HOST": base}
        raise ValueError("style is app_service or imds")

    def write_config(self, path: str | Path, instance: str = "demo", **options: Any) -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.config_toml(instance, **options), encoding="utf-8")
        return target

    # -- control ------------------------------------------------------------------------------

    def update_user(self, id_or_upn: str, **fields: Any) -> dict[str, Any]:
        return self.directory.update(id_or_upn, **fields)

    def delete_user(self, id_or_upn: str) -> None:
        self.directory.delete(id_or_upn)

    def add_user(self, user: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        return self.directory.add({**(user or {}), **fields})

    def update_app(self, app_id: str, **fields: Any) -> dict[str, Any]:
        return self.directory.update_app(app_id, **fields)

    def update_badge(self, badge_id: str, **fields: Any) -> dict[str, Any]:
        return self.credly.update_badge(badge_id, **fields)

    def add_badge(self, org_id: str, badge: dict[str, Any] | None = None, **fields: Any) -> Any:
        return self.credly.add_badge(org_id, {**(badge or {}), **fields})

    def badges(self, org_id: str) -> list[dict[str, Any]]:
        return self.credly.badges(org_id)

    def set_faults(self, **values: Any) -> None:
        rest = self.faults.update(**values)
        for key in _GRAPH_FAULTS:
            if key in rest:
                value = rest.pop(key)
                if key == "graph_ingestion_limit_per_second":
                    self._require_graph().set_ingestion_limit(value)
                elif key == "graph_concurrent_operations_limit":
                    self._require_graph().set_concurrency_limit(value)
                else:
                    self._require_graph().set_schema_delay(value)
        self.service_faults.set(**rest)

    def set_switches(self, **values: Any) -> None:
        self.switches.set(**values)

    def request_log(self) -> list[LogEntry]:
        return self.log.entries()

    def clear_request_log(self) -> None:
        self.log.clear()

    def _require_graph(self) -> Any:
        if self.graph is None:
            raise RuntimeError("the Graph service (simulator/graph.py) is not available")
        return self.graph

    def graph_items(self, connection_id: str) -> dict[str, Any]:
        return dict(self._require_graph().items(connection_id))

    def graph_throttled(self) -> list[dict[str, Any]]:
        """Item operations Graph answered 429, each with its `reason`: "concurrency" (more
        than 25 in flight on the connection) or "rate" (the ingestion limit)."""
        return list(self._require_graph().throttled_operations())

    def profile_sources(self) -> Any:
        return self._require_graph().profile_sources()

    def profile_property_settings(self) -> Any:
        return self._require_graph().profile_property_settings()

    def graph_invalid_values(self) -> Any:
        return self._require_graph().invalid_values()

    def expire_delta_tokens(self) -> None:
        self._require_graph().expire_delta_tokens()

    def graph_connections(self) -> Any:
        return self._require_graph().connections()

    def set_connection_state(self, connection_id: str, state: str | None) -> None:
        """Force a connection's state (e.g. "limitExceeded"); None returns to the real one."""
        self._require_graph().set_connection_state(connection_id, state)


def _usable_secret(app: dict[str, Any]) -> str | None:
    # The first secret that has not expired, as an admin would copy it from the portal.
    now = time.time()
    candidates = app.get("secrets", [])
    for entry in candidates:
        end = str(entry.get("end_date") or "")
        if not end or _iso_ts(end) > now:
            return str(entry["value"])
    return str(candidates[0]["value"]) if candidates else None


def _iso_ts(value: str) -> float:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def start_simulator(
    scenario: str | Path | dict[str, Any] = "demo",
    *,
    faults: dict[str, Any] | None = None,
    switches: dict[str, Any] | None = None,
    copy: bool = True,
) -> Simulator:
    """Start every service for `scenario` (name, path or dict); expectations are stripped.

    `copy=False` hands a dict over without copying it (large generated scenarios): the
    simulator then owns it and the caller must not reuse it.
    """
    return Simulator(load_scenario(scenario, copy=copy), faults=faults, switches=switches)
