"""Options shared by many commands, so every command spells them the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from credly_connector.errors import UsageError

JsonOption = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print one JSON document on stdout. Its JSON Schema is installed with credlyctl: "
        "credly_connector/schemas/<command>.schema.json (docs/schemas/ in the source).",
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        envvar="CREDLYCTL_CONFIG",
        show_envvar=True,
        help="Configuration file. Default: $CREDLYCTL_CONFIG, then the user config folder.",
    ),
]
InstanceOption = Annotated[
    str | None,
    typer.Option(
        "--instance",
        envvar="CREDLYCTL_INSTANCE",
        show_envvar=True,
        help="Connector instance (one per Credly organization). Default: the only one, "
        "or default_instance.",
    ),
]
StrictOption = Annotated[
    bool, typer.Option("--strict", help="Treat warnings as problems (exit 1).")
]


def require_email(value: str, example: str) -> str:
    """`value` when it looks like an email address, else a usage error (exit 2) showing
    `example`, a command line that would work."""
    if "@" not in value or value.strip() != value or " " in value:
        raise UsageError(
            f"{value!r} is not an email address.",
            "Give the person's address as it appears in Credly or the directory, "
            f"e.g. `{example}`.",
            error_id="bad-email",
        )
    return value
