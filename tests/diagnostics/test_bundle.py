"""`credlyctl support-bundle`: the archive's contents, and nothing secret or personal in it."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from credly_connector.cli.app import app
from credly_connector.diagnostics.bundle import redact
from credly_connector.diagnostics.context import ShapeRecorder
from credly_connector.simulator.runner import Simulator, start_simulator
from tests.cli.schema_check import validate_output
from tests.diagnostics.cli_helpers import invoke, run
from tests.diagnostics.sim_secrets import leaked, scenario_secrets_and_emails

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Simulator, Path]]:
    folder = tmp_path_factory.mktemp("bundle")
    with start_simulator("demo") as sim:
        config = sim.write_config(folder / "c.toml", state_dir=folder / "state")
        runner = CliRunner()
        assert runner.invoke(app, ["setup", "--config", str(config)]).exit_code == 0
        log = folder / "state" / "crawl.jsonl"
        sync = ["sync", "--config", str(config), "--full", "--log-file", str(log)]
        assert runner.invoke(app, sync).exit_code == 0
        yield sim, config


def archive_text(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name).decode("utf-8") for name in archive.namelist()}


def test_bundle_holds_every_part(synced: tuple[Simulator, Path], tmp_path: Path) -> None:
    _, config = synced
    target = tmp_path / "support.zip"
    code, out, _ = invoke("support-bundle", "--config", str(config), "-o", str(target), "--json")
    document = validate_output(out)
    assert code == 0 and Path(document["path"]) == target
    files = archive_text(target)
    assert set(files) == {
        "versions.json",
        "configuration.json",
        "status.json",
        "diagnosis.json",
        "service-shapes.json",
        "crawl-log.jsonl",
        "README.txt",
    }
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    versions = json.loads(files["versions.json"])
    assert versions["credlyctl"] and versions["packages"]["httpx"]
    configuration = json.loads(files["configuration.json"])
    assert configuration["loaded"] is True
    assert set(configuration["settings"]["credly"]["client_secret"]) == {"source", "fingerprint"}
    status = json.loads(files["status.json"])
    assert status["connection"]["state"] == "ready"
    diagnosis = json.loads(files["diagnosis.json"])
    assert {c["check_id"] for c in diagnosis["checks"]} >= {"entra.token", "graph.schema"}
    assert "crawl_end" in files["crawl-log.jsonl"]


def test_shapes_have_keys_types_and_statuses_never_values(
    synced: tuple[Simulator, Path], tmp_path: Path
) -> None:
    _, config = synced
    target = tmp_path / "b.zip"
    assert invoke("support-bundle", "--config", str(config), "-o", str(target))[0] == 0
    shapes = json.loads(archive_text(target)["service-shapes.json"])["answers"]
    kinds = {(a["service"], a["method"], a["path"], a["status"]) for a in shapes}
    assert ("credly", "POST", "/oauth/token", 200) in kinds
    assert ("credly", "GET", "/v1/organizations/{id}/badges", 200) in kinds
    assert any(a["service"] == "graph" and a["path"].endswith("/users") for a in shapes)
    badges = next(a for a in shapes if a["path"] == "/v1/organizations/{id}/badges")
    badge = badges["body"]["data"][0]
    assert badge["recipient_email"] == "string" and badge["public"] == "boolean"

    def leaves(value: object) -> set[object]:
        if isinstance(value, dict):
            return set().union(*(leaves(v) for v in value.values())) if value else set()
        if isinstance(value, list):
            return set().union(*(leaves(v) for v in value)) if value else set()
        return {value}

    allowed = {"string", "number", "boolean", "null", "object", "array", "empty", "not-json"}
    assert set().union(*(leaves(a["body"]) for a in shapes)) <= allowed


def test_no_secret_and_no_email_anywhere_in_the_archive(
    synced: tuple[Simulator, Path], tmp_path: Path
) -> None:
    _, config = synced
    secrets, emails = scenario_secrets_and_emails()
    target = tmp_path / "b.zip"
    result = run("--debug", "support-bundle", "--config", str(config), "-o", str(target))
    assert result.returncode == 0, result.stderr
    raw = target.read_bytes()
    with zipfile.ZipFile(target) as archive:
        text = "\n".join(archive.read(n).decode("utf-8") for n in archive.namelist())
    assert not leaked(text + result.stdout + result.stderr, secrets)
    lowered = text.lower()
    assert not [e for e in emails if e.lower() in lowered]
    assert b"@contoso.com" not in raw.lower()


def test_bundle_is_written_even_when_the_configuration_is_broken(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('[instances.x.credly]\norg_id = "not-a-guid"\n', encoding="utf-8")
    target = tmp_path / "b.zip"
    code, out, _ = invoke("support-bundle", "--config", str(broken), "-o", str(target), "--json")
    document = validate_output(out)
    assert code == 0 and document["diagnosis_exit_code"] in (1, 2)
    files = archive_text(target)
    assert json.loads(files["configuration.json"])["loaded"] is False
    assert json.loads(files["status.json"]) == {"available": False}
    checks = json.loads(files["diagnosis.json"])["checks"]
    org = next(c for c in checks if c["check_id"] == "credly.org_id_format")
    assert org["status"] == "fail"


def test_output_folder_gets_a_named_archive(synced: tuple[Simulator, Path], tmp_path: Path) -> None:
    _, config = synced
    code, out, _ = invoke("support-bundle", "--config", str(config), "-o", str(tmp_path), "--json")
    path = Path(json.loads(out)["path"])
    assert code == 0 and path.parent == tmp_path and path.name.startswith("credlyctl-support-")


def test_redact_and_path_templates() -> None:
    assert redact("mail adele@contoso.com and awards@odata.type") == (
        "mail <email> and awards@odata.type"
    )
    recorder = ShapeRecorder()
    assert recorder.template("/v1.0/users/adele@contoso.com") == "/v1.0/users/{id}"
    assert (
        recorder.template("/v1/organizations/5e2c8a41-9d3b-4f6e-8a7c-1b2d3e4f5a60/badges")
        == "/v1/organizations/{id}/badges"
    )
    assert (
        recorder.template("/v1.0/admin/people/profileSources(sourceId='credlybadges')")
        == "/v1.0/admin/people/profileSources(sourceId='{id}')"
    )


def test_no_configuration_file_is_exit_2_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = invoke("support-bundle", "--config", str(tmp_path / "absent.toml"))
    assert code == 2 and "Error:" in err and "Hint:" in err
    assert list(tmp_path.iterdir()) == []
