"""`credlyctl simulator serve` as an admin runs it: a separate process, stopped by a signal."""

from __future__ import annotations

import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest

from credly_connector.config.load import load_instance
from tests.cli.schema_check import validate_output

pytestmark = pytest.mark.integration

ENTRY = "from credly_connector.cli.app import main; main()"


def _read_document(stream: IO[str]) -> str:
    lines = []
    for line in stream:
        lines.append(line)
        if line.rstrip() == "}":
            break
    return "".join(lines)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, object]]]:
    config = tmp_path / "sim.toml"
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            ENTRY,
            "simulator",
            "serve",
            "--json",
            "--write-config",
            str(config),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        document = validate_output(_read_document(process.stdout))
        yield process, document
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_prints_urls_ca_and_a_working_config(
    served: tuple[subprocess.Popen[str], dict[str, object]],
) -> None:
    process, document = served
    assert document["status"] == "ok" and document["simulated"] is True
    config_path = Path(str(document["config_path"]))
    settings = load_instance(config_path, None)
    assert settings.credly.api_base == document["urls"]["credly_api"]  # type: ignore[index]
    assert Path(str(document["ca_path"])).exists()
    assert "client_secret = { file" in str(document["config_toml"])

    urls = document["urls"]
    assert isinstance(urls, dict)
    context = ssl.create_default_context(cafile=str(document["ca_path"]))
    with httpx.Client(verify=context, trust_env=False) as http:
        tenant = document["tenant_id"]
        answer = http.get(f"{urls['entra']}/{tenant}/v2.0/.well-known/openid-configuration")
    assert answer.status_code == 200

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=20) == 0
    assert not Path(str(document["workdir"])).exists()
    assert process.stderr is not None
    assert "Traceback" not in process.stderr.read()


def test_serve_stops_on_sigterm(served: tuple[subprocess.Popen[str], dict[str, object]]) -> None:
    process, _ = served
    process.terminate()
    assert process.wait(timeout=20) == 0


def test_serve_unknown_scenario_is_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-c", ENTRY, "simulator", "serve", "--scenario", "nope", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    document = validate_output(result.stdout)
    assert document["error"]["id"] == "SIM001"
    human = subprocess.run(
        [sys.executable, "-c", ENTRY, "simulator", "serve", "--scenario", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert human.returncode == 2
    assert human.stderr.startswith("Error: unknown scenario 'nope'")
    assert "Hint:" in human.stderr and "Traceback" not in human.stderr
