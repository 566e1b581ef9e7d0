"""Public entry points: load the settings of one instance, list instances, read the file.

Precedence, highest first: flags (the `overrides` a command passes), then environment
variables `CREDLYCTL_<SECTION>_<KEY>`, then the file, then defaults. See docs/configuration.md.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from credly_connector.config.files import load_raw
from credly_connector.config.findings import Finding, error, warning
from credly_connector.config.model import ConfigFile, InstanceConfig
from credly_connector.config.raw import (
    RawFile,
    apply_env,
    apply_overrides,
    env_layer,
    parse_file,
    suggest,
)
from credly_connector.config.resolve import Context, resolve_instance
from credly_connector.config.resolved import InstanceSettings
from credly_connector.errors import ConfigError


def select_instance(raw: RawFile, instance: str | None) -> tuple[str | None, Finding | None]:
    """The instance a command works on: --instance, then default_instance, then the only one."""
    names = list(raw.instances)
    if not names:
        return None, error(
            "CFG021",
            "instances",
            "The configuration defines no instance.",
            "Add [instances.<name>.credly] and [instances.<name>.entra] sections "
            "(`credlyctl config init` writes a starter file).",
        )
    if instance is not None:
        if instance in raw.instances:
            return instance, None
        guess = suggest(instance, names)
        return None, error(
            "CFG022",
            f"instances.{instance}",
            f"There is no instance named {instance!r}.",
            (f"Did you mean {guess!r}? " if guess else "")
            + f"Instances in this file: {', '.join(names)}.",
        )
    if raw.default_instance is not None:
        if raw.default_instance in raw.instances:
            return raw.default_instance, None
        return None, error(
            "CFG022",
            "default_instance",
            f"default_instance names {raw.default_instance!r}, which is not defined.",
            f"Use one of: {', '.join(names)}.",
        )
    if len(names) == 1:
        return names[0], None
    return None, error(
        "CFG022",
        "default_instance",
        f"Several instances are defined ({', '.join(names)}) and none is selected.",
        "Pass --instance NAME, set CREDLYCTL_INSTANCE, or set default_instance in the file.",
    )


def make_context(path: Path | None, environ: Mapping[str, str], today: date | None) -> Context:
    mode = None
    if path is not None:
        try:
            mode = path.stat().st_mode
        except OSError:
            mode = None
    return Context(path, environ, today or date.today(), mode)


def belongs_to(finding: Finding, name: str) -> bool:
    """Is this finding about `name` or about the file as a whole (not another instance)?"""
    if not finding.path.startswith("instances."):
        return True
    return finding.path == f"instances.{name}" or finding.path.startswith(f"instances.{name}.")


def load_instance(
    config_path: Path | None,
    instance: str | None,
    overrides: dict[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    today: date | None = None,
) -> InstanceSettings:
    """Settings of one instance after precedence and secret resolution, or ConfigError.

    `overrides` holds flag values as {"credly.org_id": ...} (None values are ignored).
    Warnings (e.g. the custom-host opt-in) are in the result's `warnings`.
    """
    env = os.environ if environ is None else environ
    raw, path = load_raw(config_path)
    parsed = parse_file(raw)
    name, problem = select_instance(parsed, instance)
    if name is None:
        assert problem is not None
        raise ConfigError(problem.message, problem.hint, error_id=problem.id)
    chosen = parsed.instances[name]
    layer, env_findings = env_layer(env)
    apply_env(chosen, layer)
    apply_overrides(chosen, overrides)
    settings, findings = resolve_instance(chosen, make_context(path, env, today))
    every = [f for f in parsed.findings if belongs_to(f, name)] + env_findings + findings
    errors = [f for f in every if f.is_error]
    if errors or settings is None:
        first = errors[0] if errors else warning("CFG003", "", "The configuration is incomplete.")
        more = len(errors) - 1
        hint = first.hint
        if more > 0:
            hint += (
                f" ({more} more problem{'s' if more > 1 else ''}: run credlyctl validate-config)"
            )
        where = f"{first.path}: " if first.path else ""
        raise ConfigError(f"{where}{first.message}", hint.strip(), error_id=first.id)
    lines = tuple(f.line() for f in every if not f.is_error)
    return dataclasses.replace(settings, warnings=lines)


def list_instances(config_path: Path | None) -> list[str]:
    raw, _ = load_raw(config_path)
    return list(parse_file(raw).instances)


def load_config_file(config_path: Path | None) -> tuple[ConfigFile, dict[str, Any], Path]:
    """The file as the pydantic model (secrets not resolved), its raw dict, and its path."""
    raw, path = load_raw(config_path)
    parsed = parse_file(raw)
    errors = [f for f in parsed.findings if f.is_error]
    instances: dict[str, InstanceConfig] = {}
    for name, inst in parsed.instances.items():
        try:
            instances[name] = InstanceConfig.model_validate(inst.sections)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(part) for part in first["loc"])
            errors.append(error("CFG003", f"instances.{name}.{loc}", f"{first['msg']}."))
    if errors:
        first_error = errors[0]
        raise ConfigError(
            f"{first_error.path}: {first_error.message}",
            first_error.hint or "Run credlyctl validate-config for details.",
            error_id=first_error.id,
        )
    return ConfigFile(default_instance=parsed.default_instance, instances=instances), raw, path


def load_instance_with_origins(
    config_path: Path | None,
    instance: str | None,
    overrides: dict[str, Any] | None = None,
) -> tuple[InstanceSettings, dict[str, str]]:
    """Like load_instance, plus where each set value came from ("file", "env:NAME", "flag")."""
    settings = load_instance(config_path, instance, overrides)
    raw, _ = load_raw(config_path)
    parsed = parse_file(raw)
    chosen = parsed.instances[settings.name]
    layer, _ = env_layer(os.environ)
    apply_env(chosen, layer)
    apply_overrides(chosen, overrides)
    return settings, dict(chosen.origins)
