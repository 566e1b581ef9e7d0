"""`credlyctl config show` and `credlyctl config init`."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console

from credly_connector.cli.options import ConfigOption, InstanceOption, JsonOption
from credly_connector.cli.output import Outcome, run_command
from credly_connector.cli.terminal import terminal
from credly_connector.config.files import locate
from credly_connector.config.load import load_instance_with_origins
from credly_connector.config.resolve import INSTANCE_NAME_RE
from credly_connector.config.show import format_value, settings_view
from credly_connector.config.starter import starter_text, write_private
from credly_connector.errors import UsageError
from credly_connector.exit_codes import ExitCode

config_app = typer.Typer(
    name="config",
    help="Show the effective configuration, or write a starter configuration file.",
    no_args_is_help=True,
)


@config_app.command("show")
def show_command(
    config: ConfigOption = None,
    instance: InstanceOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print the effective settings of one instance, secrets redacted.

    Shows every value after precedence (flags > CREDLYCTL_* environment variables > file >
    defaults) and where it came from. Secrets appear only as their source and a short
    fingerprint, never their value.
    """

    def body() -> Outcome:
        settings, origins = load_instance_with_origins(config, instance)
        view = settings_view(settings)
        data: dict[str, Any] = {
            "config_path": str(settings.config_path) if settings.config_path else None,
            "instance": settings.name,
            "settings": view,
            "origins": dict(sorted(origins.items())),
            "warnings": list(settings.warnings),
        }

        def render(console: Console) -> None:
            for line in settings.warnings:
                terminal().warning(line)
            console.print(f"# instance {settings.name} from {settings.config_path}")
            for section, values in view.items():
                console.print(f"[{section}]")
                for key, value in values.items():
                    origin = origins.get(f"{section}.{key}", "")
                    note = f"   ({origin})" if origin else ""
                    console.print(f"  {key} = {format_value(value)}{note}")

        return Outcome(ExitCode.OK, data, render)

    run_command("config show", json_output, body)


@config_app.command("init")
def init_command(
    config: ConfigOption = None,
    instance: InstanceOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite the file if it already exists.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Write a commented starter configuration file (readable by you only).

    Writes to --config, $CREDLYCTL_CONFIG or the user config folder. The instance is named
    after --instance (default "main"). Refuses to overwrite an existing file without --force.
    """

    def body() -> Outcome:
        name = "main" if instance is None else instance
        if not INSTANCE_NAME_RE.match(name):
            raise UsageError(
                f"{name!r} cannot be an instance name.",
                "Use letters, digits, '-', '_' or '.', starting with a letter or digit.",
            )
        path, _ = locate(config)
        replaced = write_private(path, starter_text(name), force=force)
        data = {"config_path": str(path), "instance": name, "overwritten": replaced}

        def render(console: Console) -> None:
            console.print(f"Wrote {path} (instance {name!r}, readable by you only).")
            terminal().info(
                "Next: fill in the IDs, then run `credlyctl validate-config"
                + (f" --config {path}`." if config else "`.")
            )

        return Outcome(ExitCode.OK, data, render)

    run_command("config init", json_output, body)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
