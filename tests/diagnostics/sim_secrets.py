"""Every secret value and e-mail address in the demo scenario, for "never printed" tests."""

from __future__ import annotations

import re
from typing import Any

from credly_connector.simulator.scenario import load_scenario

SECRET_KEYS = {"value", "client_secret", "token", "password", "secret"}
EMAIL = re.compile(r"[A-Za-z0-9._%+'\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
# An access token (JWT) starts with the base64 of '{"' : a leaked bearer would show it.
JWT_PREFIX = "eyJ"


def _walk(value: Any, secrets: set[str], emails: set[str], key: str = "") -> None:
    if isinstance(value, dict):
        for name, sub in value.items():
            _walk(sub, secrets, emails, str(name).lower())
    elif isinstance(value, list):
        for sub in value:
            _walk(sub, secrets, emails, key)
    elif isinstance(value, str):
        if key in SECRET_KEYS and len(value) >= 8:
            secrets.add(value)
        emails.update(m.group(0) for m in EMAIL.finditer(value))


def scenario_secrets_and_emails() -> tuple[set[str], set[str]]:
    secrets: set[str] = set()
    emails: set[str] = set()
    scenario = load_scenario("demo")
    scenario.pop("expectations", None)
    _walk(scenario, secrets, emails)
    return secrets, emails


def leaked(text: str, secrets: set[str]) -> list[str]:
    found = [s for s in secrets if s in text]
    if JWT_PREFIX in text:
        found.append("a JWT-looking access token")
    return found
