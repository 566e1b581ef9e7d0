"""Options shared by many commands, so every command spells them the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
