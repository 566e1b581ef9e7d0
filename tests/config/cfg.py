"""Building blocks for configuration tests: a valid instance as a dict, and file writers."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import tomli_w

ORG = "ba92621f-f22c-41e5-9157-c2dc274e3cf0"
ORG2 = "0f381ae3-f9d3-4545-9e21-dcda99431713"
TENANT = "11111111-2222-4333-8444-555555555555"
APP = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
# Random-looking values with no ordinary word inside, so a leak check can look for any part.
CREDLY_SECRET = "Qx7kP2mZ9wR4tY8vLb3N"
ENTRA_SECRET = "Zk9hT5cV1nM6qW2eJx8D"
INLINE_SECRET = "Wm4gF8sA3dH7jK1lYr5C"
FILE_SECRET = "Pv2bN6xC9zQ4wE7rTu1G"
SECRET_ENV = {"T_CREDLY_SECRET": CREDLY_SECRET, "T_ENTRA_SECRET": ENTRA_SECRET}
ALL_SECRETS = (CREDLY_SECRET, ENTRA_SECRET, INLINE_SECRET, FILE_SECRET)


def instance(org: str = ORG) -> dict[str, Any]:
    return {
        "credly": {
            "org_id": org,
            "client_id": "credly-client-id",
            "client_secret": {"env": "T_CREDLY_SECRET"},
        },
        "entra": {
            "tenant_id": TENANT,
            "client_id": APP,
            "client_secret": {"env": "T_ENTRA_SECRET"},
        },
    }


def config(**instances: dict[str, Any]) -> dict[str, Any]:
    return {"instances": copy.deepcopy(instances or {"contoso": instance()})}


def write(path: Path, data: dict[str, Any] | str, mode: int = 0o600) -> Path:
    text = data if isinstance(data, str) else tomli_w.dumps(data)
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)
    return path
