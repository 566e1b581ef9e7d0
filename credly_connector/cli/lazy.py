"""A command group that imports a command's module only when that command is used.

`credlyctl --help` lists every command from a name and a one-line summary kept in the
registry (cli/app.py), so it imports no command module; `credlyctl validate-config` imports
cli/commands/validate.py and what it needs, never the sync engine, msal or the simulator.
A test checks that each registry summary is exactly the short help of the real command, so
the lazy listing prints what an eager one would.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, ClassVar

import typer
from typer._click.shell_completion import CompletionItem
from typer.core import TyperCommand, TyperGroup

from credly_connector.cli.placeholders import set_placeholders

# Typer vendors its own click (typer._click), which is private: commands are handled through
# their public attributes only, as in cli/docgen.py (CompletionItem, the one class we need to
# build, has no public name).
Command = Any


@dataclass(frozen=True)
class LazyCommand:
    """A command as the root group lists it before its module is imported."""

    name: str
    module: str  # exposes register(app: typer.Typer), which may register several commands
    summary: str  # the first sentence of the command's help


def typer_app(**settings: Any) -> typer.Typer:
    """A Typer app with the settings every credlyctl command group shares."""
    settings.setdefault("rich_markup_mode", None)  # plain help: the generated reference's text
    return typer.Typer(pretty_exceptions_enable=False, **settings)


def load_module_commands(module_name: str) -> dict[str, Command]:
    """Import one command module and build the click commands it registers."""
    module = importlib.import_module(module_name)
    holder = typer_app()
    module.register(holder)
    commands = dict(typer.main.get_group(holder).commands)
    for command in commands.values():
        set_placeholders(command)
    return commands


class _Commands(MutableMapping[str, Command]):
    """The group's command table: every registered name is a key; a value is built on first use."""

    def __init__(self, loaded: MutableMapping[str, Command], lazy: tuple[LazyCommand, ...]):
        self._loaded = dict(loaded)
        self._lazy = {spec.name: spec for spec in lazy}

    def is_loaded(self, name: str) -> bool:
        return name in self._loaded

    def summary(self, name: str) -> str:
        return self._lazy[name].summary

    def __getitem__(self, name: str) -> Command:
        if name not in self._loaded and name in self._lazy:
            for built_name, command in load_module_commands(self._lazy[name].module).items():
                self._loaded.setdefault(built_name, command)
        return self._loaded[name]

    def __setitem__(self, name: str, command: Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        self._loaded.pop(name, None)
        self._lazy.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        yield from self._lazy
        yield from (name for name in self._loaded if name not in self._lazy)

    def __len__(self) -> int:
        return len(set(self._lazy) | set(self._loaded))

    def __contains__(self, name: object) -> bool:
        return name in self._lazy or name in self._loaded


class LazyGroup(TyperGroup):
    """A TyperGroup whose subclasses name their commands in `lazy_commands`."""

    lazy_commands: ClassVar[tuple[LazyCommand, ...]] = ()

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _Commands(self.commands, self.lazy_commands)

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        # TyperGroup's version builds every command to read its help; the summaries say the same.
        names = [name for name in self.list_commands(ctx) if self._shown(name)]
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, self._short_help(name, limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def shell_complete(self, ctx: Any, incomplete: str) -> list[CompletionItem]:
        # Completing a command name must not import every command (each Tab press is a run).
        names = [n for n in self.list_commands(ctx) if n.startswith(incomplete) and self._shown(n)]
        results = [CompletionItem(name, help=self._short_help(name, 45)) for name in names]
        # The group's own options, completed as any command's (TyperGroup's parent class).
        results.extend(super(TyperGroup, self).shell_complete(ctx, incomplete))
        return results

    def _table(self) -> _Commands:
        assert isinstance(self.commands, _Commands)
        return self.commands

    def _short_help(self, name: str, limit: int) -> str:
        table = self._table()
        command = (
            table[name]
            if table.is_loaded(name)
            else TyperCommand(name=name, help=table.summary(name))
        )
        return str(command.get_short_help_str(limit))

    def _shown(self, name: str) -> bool:
        # A lazy command is never hidden (the registry lists visible commands only).
        table = self._table()
        return not table.is_loaded(name) or not table[name].hidden
