"""Generate docs/cli-reference.md from the commands' own help text.

    python -m credly_connector.cli.docgen > docs/cli-reference.md

The output depends only on the code (no terminal width, no environment values), so a test
can compare it with the committed file and fail when they disagree.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from typing import Any

import typer

from credly_connector.cli.placeholders import placeholder

# Typer vendors its own click (typer._click), which is private: commands and parameters are
# handled by their public attributes only (list_commands, param_type_name, opts, help...).
Command = Any
Parameter = Any

REGENERATE = "python -m credly_connector.cli.docgen > docs/cli-reference.md"


def root_command() -> Command:
    from credly_connector.cli.app import app

    return typer.main.get_command(app)


def walk(
    command: Command, path: tuple[str, ...] = ("credlyctl",)
) -> Iterator[tuple[tuple[str, ...], Command]]:
    """Every visible command and group, depth first, in the order --help lists them."""
    yield path, command
    for name, sub in subcommands(command, path[-1]):
        yield from walk(sub, (*path, name))


def is_group(command: Command) -> bool:
    return hasattr(command, "list_commands")


def subcommands(command: Command, info_name: str) -> list[tuple[str, Command]]:
    if not is_group(command):
        return []
    ctx = typer.Context(command, info_name=info_name)
    found = [(name, command.get_command(ctx, name)) for name in command.list_commands(ctx)]
    return [(name, sub) for name, sub in found if sub is not None and not sub.hidden]


def is_argument(param: Parameter) -> bool:
    return bool(param.param_type_name == "argument")


def _usage(path: tuple[str, ...], command: Command) -> str:
    pieces = []
    for param in command.params:
        if is_argument(param):
            metavar = param.metavar or (param.name or "").upper()
            pieces.append(metavar if param.required else f"[{metavar}]")
    if any(not is_argument(p) for p in command.params):
        pieces.insert(0, "[OPTIONS]")
    if is_group(command):
        pieces.append("COMMAND [ARGS]...")
    return " ".join((*path, *pieces))


def _param_row(param: Parameter) -> tuple[str, str]:
    if is_argument(param):
        name = f"`{param.metavar or (param.name or '').upper()}`"
        text = getattr(param, "help", None) or ""
    else:
        names = ", ".join(f"`{opt}`" for opt in (*param.opts, *param.secondary_opts))
        if not param.is_flag:
            names += f" {placeholder(param)}"
        name = names
        text = param.help or ""
        envvar = param.envvar if isinstance(param.envvar, str) else None
        if envvar and param.show_envvar:
            text += f" (env: `{envvar}`)"
        default = param.default
        if param.show_default and default not in (None, False, "", ()) and not callable(default):
            text += f" (default: `{default}`)"
    return name, " ".join(text.split()).replace("|", "\\|")


def render() -> str:
    out = [
        "# credlyctl command reference",
        "",
        "Generated from the commands' own help text; do not edit by hand. Regenerate with:",
        "",
        "```sh",
        REGENERATE,
        "```",
        "",
    ]
    for path, command in walk(root_command()):
        out.append(f"{'#' * min(len(path) + 1, 4)} `{' '.join(path)}`")
        out.append("")
        help_text = inspect.cleandoc(command.help or "")
        if help_text:
            out.extend([help_text, ""])
        out.extend(["```text", _usage(path, command), "```", ""])
        rows = [_param_row(p) for p in command.params]
        rows.append(("`-h`, `--help`", "Show the help and exit."))
        out.extend(["| Argument / option | Description |", "|---|---|"])
        out.extend(f"| {name} | {text} |" for name, text in rows)
        out.append("")
        if is_group(command):
            out.extend(["| Command | Summary |", "|---|---|"])
            out.extend(
                f"| `{name}` | {sub.get_short_help_str(limit=200)} |"
                for name, sub in subcommands(command, path[-1])
            )
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
