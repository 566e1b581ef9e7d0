"""Value placeholders (`--config PATH`, `--timeout NUMBER`) shared by --help and the reference.

Typer's plain help would print `<path>`, `<str>` or `<list[str]>`; every option without an
explicit metavar gets the word the generated docs/cli-reference.md uses instead, so the two read
the same.
"""

from __future__ import annotations

import typing
from typing import Any

Parameter = Any  # a click parameter (Typer vendors click privately; see cli/docgen.py)

_WORDS = {"str": "TEXT", "Path": "PATH", "int": "INTEGER", "float": "NUMBER", "date": "DATE"}


def placeholder(param: Parameter) -> str:
    """The placeholder of an option's or argument's value, e.g. PATH."""
    if param.metavar:
        return str(param.metavar)
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", str)
    while args := typing.get_args(annotation):  # Optional[X], list[X] -> X
        annotation = next((a for a in args if a is not type(None)), str)
    name = getattr(annotation, "__name__", "TEXT")
    return _WORDS.get(name, name.upper())


def set_placeholders(command: Any) -> None:
    """Give every valued option of a command (and of its subcommands) its placeholder."""
    for param in command.params:
        if param.param_type_name == "option" and not param.is_flag and not param.metavar:
            param.metavar = placeholder(param)
    for sub in getattr(command, "commands", {}).values():
        set_placeholders(sub)
