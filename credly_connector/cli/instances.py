"""What `--all` means for setup, status and sync: which instances, and one exit code for all.

Instances run one after another; with several, an instance that fails is reported (on stderr
by the command's renderer, in `instances` with --json) and the next one runs. The exit code is
the first of 4, 2, 3, 1, 0 that any instance gave (`exit_codes.combine`), not the largest: a
configuration error in one instance outranks a network failure in another.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from credly_connector.cli.terminal import terminal
from credly_connector.config.load import list_instances, load_instance
from credly_connector.config.resolved import InstanceSettings
from credly_connector.errors import CredlyctlError, UsageError
from credly_connector.exit_codes import ExitCode, combine

AllOption = Annotated[
    bool, typer.Option("--all", help="Every instance in the configuration file, one after another.")
]


def instance_names(
    config: Path | None, instance: str | None, all_instances: bool
) -> list[str | None]:
    if all_instances and instance:
        raise UsageError(
            "--all and --instance cannot be used together.",
            "Pick one instance with --instance, or every instance with --all.",
            error_id="usage_all_instance",
        )
    if not all_instances:
        return [instance]
    names = list_instances(config)
    if not names:
        raise UsageError(
            "The configuration file defines no instance.",
            "Run `credlyctl config init` to write a starter configuration.",
            error_id="no_instances",
        )
    return list(names)


def for_each_instance(
    config: Path | None,
    names: list[str | None],
    work: Callable[[InstanceSettings], dict[str, Any]],
    code_of: Callable[[dict[str, Any]], ExitCode],
) -> tuple[list[dict[str, Any]], ExitCode]:
    """Run `work` per instance; with several, a failing instance is reported, not fatal."""
    results: list[dict[str, Any]] = []
    codes: list[ExitCode] = []
    for name in names:
        try:
            settings = load_instance(config, name)
            for line in settings.warnings:
                terminal().warning(line)
            result = work(settings)
        except CredlyctlError as exc:
            if len(names) == 1:
                raise
            results.append({"instance": name, "error": exc.to_dict()})
            codes.append(exc.exit_code)
            continue
        results.append(result)
        codes.append(code_of(result))
    return results, combine(*codes) if codes else ExitCode.OK


def instances_data(results: list[dict[str, Any]], code: ExitCode) -> dict[str, Any]:
    """The --json keys of an --all run: every instance, and when the run as a whole failed
    (exit 2, 3 or 4) the envelope's `error`, taken from the first instance that failed."""
    data: dict[str, Any] = {"instances": results}
    first_error = next((r["error"] for r in results if r.get("error")), None)
    if first_error and code >= ExitCode.USAGE:
        data["error"] = first_error
    return data
