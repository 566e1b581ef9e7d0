"""validate-config through the CLI: one case per finding id, exit codes, stdout, stderr, --json."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from credly_connector.cli.app import app
from credly_connector.config.findings import CATALOGUE
from credly_connector.orgid import check_org_id
from tests.cli.schema_check import validate_output
from tests.config.cfg import INLINE_SECRET, ORG, ORG2, SECRET_ENV, config, instance, write

Data = dict[str, Any]


def _with(change: Callable[[Data], None], base: Data | None = None) -> Data:
    data = copy.deepcopy(base or config())
    change(data)
    return data


def _credly(**values: Any) -> Callable[[Data], None]:
    return lambda d: d["instances"]["contoso"]["credly"].update(values)


def _entra(**values: Any) -> Callable[[Data], None]:
    return lambda d: d["instances"]["contoso"]["entra"].update(values)


def _section(section: str, **values: Any) -> Callable[[Data], None]:
    return lambda d: d["instances"]["contoso"].setdefault(section, {}).update(values)


def _drop(section: str, key: str) -> Callable[[Data], None]:
    return lambda d: d["instances"]["contoso"][section].pop(key)


@dataclass
class Case:
    fid: str
    severity: str
    path: str  # expected dotted path of the finding (prefix)
    data: Data | str | None  # None: no file at all
    env: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    mode: int = 0o600
    text: str = ""  # a fragment the message or hint must contain
    exit_code: int | None = None  # default: 1 for errors, 0 for warnings


OLD = (date.today() - timedelta(days=400)).isoformat()
P = "instances.contoso"

CASES = [
    Case("CFG000", "error", "", None, exit_code=2, text="No configuration file"),
    Case("CFG001", "error", "line 2, column 10", "[instances]\norg_id = = 1\n", exit_code=2,
         text="not valid TOML"),
    Case("CFG002", "error", f"{P}.credly.client_idd", _with(_credly(client_idd="x")),
         text="Did you mean 'client_id'?"),
    Case("CFG002", "error", "credly", _with(lambda d: d.update(credly={"org_id": ORG})),
         text="[instances.<name>.credly]"),
    Case("CFG002", "error", f"{P}.credly.tenant_id", _with(_credly(tenant_id="x")),
         text="belongs in [instances.contoso.entra]"),
    Case("CFG003", "error", f"{P}.sync.write_concurrency",
         _with(_section("sync", write_concurrency=99)), text="less than or equal to 16"),
    Case("CFG003", "error", f"{P}.credly.environment", _with(_credly(environment="staging")),
         text="'production' or 'sandbox'"),
    Case("CFG004", "error", f"{P}.entra.tenant_id", _with(_drop("entra", "tenant_id")),
         text="tenant ID is missing"),
    Case("CFG004", "error", f"{P}.credly.org_id", _with(_drop("credly", "org_id")),
         text="Organization ID is missing"),
    Case("CFG005", "error", f"{P}.credly.org_id", _with(_credly(org_id="contoso-university")),
         text=check_org_id("contoso-university").message),
    Case("CFG005", "error", f"{P}.credly.org_id", _with(_credly(org_id="{" + ORG + "}")),
         text=f"Use: {ORG}"),
    Case("CFG006", "error", "instances.second.credly.org_id",
         config(contoso=instance(), second=instance()), text="same Organization ID"),
    Case("CFG007", "error", f"{P}.credly.org_id", _with(_credly(org_id=[ORG, ORG2])),
         text="one instance per organization"),
    Case("CFG007", "error", f"{P}.credly.org_id", _with(_credly(org_id=f"{ORG}, {ORG2}")),
         text="one instance per organization"),
    Case("CFG008", "error", f"{P}.graph.schema",
         _with(_section("graph", schema={"properties": [{"name": "skills"}]})),
         text="personAccount, personAwards, personCertifications"),
    Case("CFG008", "error", "labels", _with(lambda d: d.update(labels=["personSkills"])),
         text="does not allow"),
    Case("CFG008", "error", f"{P}.properties",
         _with(lambda d: d["instances"]["contoso"].update(properties={"x": 1})),
         text="is fixed"),
    Case("CFG009", "error", f"{P}.graph.connection_id",
         _with(_section("graph", connection_id="MicrosoftBadges")), text="'Microsoft'"),
    Case("CFG009", "error", f"{P}.graph.connection_id",
         _with(_section("graph", connection_id="ab")), text="3 to 32"),
    Case("CFG009", "error", f"{P}.graph.connection_id",
         _with(_section("graph", connection_id="credly_badges")), text="letters and digits"),
    Case("CFG009", "error", f"{P}.graph.connection_id",
         _with(_section("graph", connection_id="SharePoint")), text="reserves"),
    Case("CFG009", "error", f"{P}.graph.connection_id",
         _with(_section("graph", connection_id="x" * 33)), text="3 to 32"),
    Case("CFG010", "error", f"{P}.credly.client_secret",
         _with(_credly(client_secret={"env": "T_UNSET_VARIABLE"})), text="T_UNSET_VARIABLE"),
    Case("CFG011", "error", f"{P}.credly.client_secret",
         _with(_credly(client_secret={"file": "missing-secret.txt"})), text="does not exist"),
    Case("CFG012", "error", f"{P}.credly.base_url",
         _with(_credly(base_url="http://www.credly.com")), text="https://www.credly.com"),
    Case("CFG013", "error", f"{P}.credly.base_url",
         _with(_credly(base_url="https://credly.evil.example")), text="allow_custom_hosts"),
    Case("CFG013", "error", f"{P}.graph.base_url",
         _with(_section("graph", base_url="https://graph.evil.example")), text="not a known"),
    Case("CFG014", "error", f"{P}.credly.base_url",
         _with(_credly(base_url="https://api.credly.com")), text="https://www.credly.com"),
    Case("CFG015", "error", f"{P}.credly.base_url",
         _with(_credly(environment="production", base_url="https://sandbox.credly.com")),
         text="sandbox"),
    Case("CFG015", "error", f"{P}.credly.api_url",
         _with(_credly(environment="sandbox", api_url="https://api.credly.com/v1")),
         text="production"),
    Case("CFG015", "error", f"{P}.entra.authority_url",
         _with(_entra(authority_url="https://login.microsoftonline.us")), text="usgov"),
    Case("CFG016", "error", f"{P}.entra.cloud", _with(_entra(cloud="china")),
         text="external connections are not available"),
    Case("CFG017", "warning", f"{P}.credly.client_secret",
         _with(_credly(client_secret=INLINE_SECRET)), text="inline"),
    Case("CFG018", "warning", f"{P}.credly.client_secret",
         _with(_credly(client_secret=INLINE_SECRET)), mode=0o644, text="chmod 600"),
    Case("CFG019", "warning", f"{P}.network.allow_custom_hosts",
         _with(lambda d: (_credly(base_url="https://127.0.0.1:8443")(d),
                          _section("network", allow_custom_hosts=True)(d))),
         text="127.0.0.1"),
    Case("CFG020", "error", f"{P}.network.ca_bundle",
         _with(_section("network", ca_bundle="no-such-bundle.pem")), text="does not exist"),
    Case("CFG020", "error", f"{P}.entra.certificate_path",
         _with(lambda d: (_drop("entra", "client_secret")(d),
                          _entra(certificate_path="no-such.pem")(d))), text="does not exist"),
    Case("CFG021", "error", "instances", "# nothing yet\n", text="no instance"),
    Case("CFG022", "error", "instances.nope", config(), args=("--instance", "nope"),
         text="no instance named 'nope'"),
    Case("CFG022", "error", "default_instance",
         _with(lambda d: d.update(default_instance="contosso")), text="contoso"),
    Case("CFG023", "error", f"{P}.credly.auth",
         _with(_credly(authorization_token={"env": "T_CREDLY_SECRET"})), text='auth = "oauth"'),
    Case("CFG023", "error", f"{P}.entra.client_secret",
         _with(_entra(certificate_path="cert.pem")), text="Both"),
    Case("CFG024", "error", f"{P}.entra.client_id", _with(_entra(client_id="my-app")),
         text="not a GUID"),
    Case("CFG024", "error", f"{P}.entra.tenant_id", _with(_entra(tenant_id="common")),
         text="not a tenant"),
    Case("CFG025", "error", f"{P}.credly.base_url",
         _with(_credly(base_url="https://api.youracclaim.com")), text="www.credly.com"),
    Case("CFG026", "warning", "env:CREDLYCTL_CREDLY_ORGID", config(),
         env={"CREDLYCTL_CREDLY_ORGID": ORG}, text="CREDLYCTL_CREDLY_ORG_ID"),
    Case("CFG027", "error", "instances.bad name", config(**{"bad name": instance()}),
         text="state folder"),
    Case("CFG028", "warning", f"{P}.sync.full_interval_days",
         _with(_section("sync", full_interval_days=1, incremental_interval_days=7)),
         text="incremental crawls never run"),
    Case("CFG029", "error", f"{P}.credly.authorization_token_created",
         _with(lambda d: d["instances"]["contoso"].update(
             credly={"org_id": ORG, "authorization_token": {"env": "T_CREDLY_SECRET"},
                     "authorization_token_created": date.fromisoformat(OLD)})),
         text="expired"),
    Case("CFG029", "warning", f"{P}.entra.client_secret_expires",
         _with(_entra(client_secret_expires=date.today() + timedelta(days=3))), text="expires"),
    Case("CFG030", "error", f"{P}.credly.client_secret",
         _with(_credly(client_secret={"env": "A", "file": "b"})), text="exactly one source"),
    Case("CFG031", "error", f"{P}.network.proxy",
         _with(_section("network", proxy="proxy.contoso.com")), text="scheme://host:port"),
    Case("CFG031", "error", f"{P}.network.proxy",
         _with(_section("network", proxy="socks4://proxy.contoso.com:1080")),
         text="not supported"),
    Case("CFG031", "error", "env:HTTPS_PROXY", config(), env={"HTTPS_PROXY": "socks4://p:1"},
         text="not supported"),
    Case("CFG023", "warning", f"{P}.network.no_proxy",
         _with(_section("network", no_proxy=".contoso.com")), text="ignored"),
    Case("CFG032", "error", f"{P}.entra.federated_token_file",
         _with(lambda d: d["instances"]["contoso"].update(entra={
             "tenant_id": d["instances"]["contoso"]["entra"]["tenant_id"],
             "client_id": d["instances"]["contoso"]["entra"]["client_id"],
             "federated_token_file": "missing-token"})),
         text="does not exist"),
    Case("CFG004", "error", f"{P}.entra.federated_token_file",
         _with(lambda d: d["instances"]["contoso"]["entra"].update(auth="federated_token")),
         text="AZURE_FEDERATED_TOKEN_FILE"),
    Case("CFG033", "error", f"{P}.entra.auth",
         _with(lambda d: d["instances"]["contoso"].update(entra={
             "tenant_id": d["instances"]["contoso"]["entra"]["tenant_id"],
             "auth": "managed_identity"})),
         env={"IDENTITY_ENDPOINT": "https://identity.example.net/msi/token",
              "IDENTITY_HEADER": "h"},
         text="neither"),
    Case("CFG023", "warning", f"{P}.entra",
         _with(lambda d: d["instances"]["contoso"]["entra"].update(auth="managed_identity")),
         text="client_id, client_secret is set but ignored"),
    Case("CFG034", "error", f"{P}.graph.base_url",
         _with(lambda d: (d["instances"]["contoso"].update(
             graph={"base_url": "https://admin:graphpassw0rd123@127.0.0.1:8443/v1.0"},
             network={"allow_custom_hosts": True}))),
         text="https://127.0.0.1:8443/v1.0"),
]  # fmt: skip


def _run(tmp_path: Path, case: Case, *extra: str) -> tuple[int, str, str]:
    path = tmp_path / "credlyctl.toml"
    if case.data is not None:
        write(path, case.data, case.mode)
        (tmp_path / "cert.pem").write_text("not really a certificate")
    result = CliRunner().invoke(
        app,
        ["validate-config", "--config", str(path), *case.args, *extra],
        env={**SECRET_ENV, **case.env},
    )
    return result.exit_code, result.stdout, result.stderr


def _expected_exit(case: Case, strict: bool = False) -> int:
    if case.exit_code is not None:
        return case.exit_code
    return 1 if case.severity == "error" or strict else 0


def _ids(case: Case) -> str:
    return f"{case.fid}-{case.path}"


def test_every_finding_id_has_a_case() -> None:
    assert {case.fid for case in CASES} == set(CATALOGUE)


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_finding_in_human_output(tmp_path: Path, case: Case) -> None:
    code, stdout, stderr = _run(tmp_path, case)
    assert code == _expected_exit(case)
    assert "Traceback" not in stdout + stderr
    if code == 2:
        assert stderr.startswith(f"Error: {case.fid} ")
        assert "\nHint: " in stderr
        assert case.text in stderr
        assert case.path in stderr
        return
    lines = [line for line in stdout.splitlines() if line.startswith(f"{case.fid} ")]
    matching = [
        line for line in lines if line.startswith(f"{case.fid} {case.severity} {case.path}")
    ]
    assert matching, stdout
    assert any(case.text in line for line in matching), stdout
    assert all(" Fix: " in line for line in matching)


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_finding_in_json_output(tmp_path: Path, case: Case) -> None:
    code, stdout, _ = _run(tmp_path, case, "--json")
    assert code == _expected_exit(case)
    document = validate_output(stdout)
    assert document["exit_code"] == code
    found = [f for f in document["findings"] if f["id"] == case.fid]
    assert any(
        f["severity"] == case.severity
        and f["path"].startswith(case.path)
        and case.text in f["message"] + " " + f["hint"]
        for f in found
    ), found
    if code == 2:
        assert document["status"] == "error"
        assert document["error"]["id"] == case.fid


@pytest.mark.parametrize("case", [c for c in CASES if c.severity == "warning"], ids=_ids)
def test_warnings_fail_only_with_strict(tmp_path: Path, case: Case) -> None:
    code, _, _ = _run(tmp_path, case, "--strict")
    assert code == 1


def test_clean_configuration_exits_zero(tmp_path: Path) -> None:
    path = write(tmp_path / "ok.toml", config())
    result = CliRunner().invoke(app, ["validate-config", "--config", str(path)], env=SECRET_ENV)
    assert result.exit_code == 0, result.stdout
    assert result.stdout.startswith("OK: 0 error(s), 0 warning(s)")
    document = validate_output(
        CliRunner()
        .invoke(app, ["validate-config", "--config", str(path), "--json"], env=SECRET_ENV)
        .stdout
    )
    assert document["status"] == "ok"
    assert document["instances"] == [{"name": "contoso", "org_id": ORG, "usable": True}]


def test_instance_option_limits_findings_to_that_instance(tmp_path: Path) -> None:
    broken = instance()
    broken["credly"]["org_id"] = "not-a-guid"
    path = write(tmp_path / "two.toml", config(good=instance(), broken=broken))
    only_good = CliRunner().invoke(
        app, ["validate-config", "--config", str(path), "--instance", "good"], env=SECRET_ENV
    )
    assert only_good.exit_code == 0, only_good.stdout
    everything = CliRunner().invoke(app, ["validate-config", "--config", str(path)], env=SECRET_ENV)
    assert everything.exit_code == 1
    assert "instances.broken.credly.org_id" in everything.stdout


def test_config_found_through_environment_variable(tmp_path: Path) -> None:
    path = write(tmp_path / "env.toml", config())
    result = CliRunner().invoke(
        app, ["validate-config", "--json"], env={**SECRET_ENV, "CREDLYCTL_CONFIG": str(path)}
    )
    document = validate_output(result.stdout)
    assert document["config_path"] == str(path)
    assert document["config_chosen_by"] == "$CREDLYCTL_CONFIG"


def test_environment_override_is_validated_too(tmp_path: Path) -> None:
    path = write(tmp_path / "ok.toml", config())
    result = CliRunner().invoke(
        app,
        ["validate-config", "--config", str(path)],
        env={**SECRET_ENV, "CREDLYCTL_CREDLY_ORG_ID": "contoso"},
    )
    assert result.exit_code == 1
    assert "CFG005 error instances.contoso.credly.org_id" in result.stdout
    assert "(set by CREDLYCTL_CREDLY_ORG_ID)" in result.stdout
