"""The raw TOML tree: its shape, unknown keys, schema-customization attempts, and the
environment-variable and flag layers on top of it.

Works on plain dicts before pydantic sees them, so one mistake gives one precise finding with
its dotted path (and a "did you mean") instead of a pile of validation errors.
"""

from __future__ import annotations

import difflib
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from credly_connector.config.findings import Finding, error, warning
from credly_connector.config.model import ConfigFile, InstanceConfig, SecretRef

ENV_PREFIX = "CREDLYCTL_"
# CREDLYCTL_ variables that are not configuration values (handled by the CLI itself).
NON_CONFIG_ENV = frozenset({"CONFIG", "INSTANCE", "DEBUG"})
INVALID = "invalid"  # origin of a value that was present but unusable (already reported)
SCHEMA_KEYS = frozenset({"schema", "properties", "labels"})
SCHEMA_MESSAGE = (
    "The connector's Graph schema is fixed (personAccount, personAwards, "
    "personCertifications); Microsoft's Credly connector does not allow adding, removing or "
    "changing schema properties, and credlyctl keeps the same schema so profiles look the "
    "same whichever connector wrote them."
)

SECTIONS: dict[str, type[BaseModel]] = {}
for _name, _info in InstanceConfig.model_fields.items():
    assert isinstance(_info.annotation, type) and issubclass(_info.annotation, BaseModel)
    SECTIONS[_name] = _info.annotation


def _is_secret_field(annotation: Any) -> bool:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return SecretRef in typing.get_args(annotation)
    return annotation is SecretRef


SECRET_FIELDS: frozenset[tuple[str, str]] = frozenset(
    (section, key)
    for section, model in SECTIONS.items()
    for key, info in model.model_fields.items()
    if _is_secret_field(info.annotation)
)
TOP_LEVEL_KEYS = tuple(ConfigFile.model_fields)


@dataclass
class RawInstance:
    """One instance's sections as plain dicts, plus where each value came from."""

    name: str
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)  # "credly.org_id" -> "file" | "env:X"

    def origin(self, section: str, key: str) -> str:
        return self.origins.get(f"{section}.{key}", "default")

    def set(self, section: str, key: str, value: Any, origin: str) -> None:
        self.sections.setdefault(section, {})[key] = value
        self.origins[f"{section}.{key}"] = origin


@dataclass
class RawFile:
    default_instance: str | None
    instances: dict[str, RawInstance]
    findings: list[Finding]


def suggest(key: str, candidates: list[str]) -> str:
    lowered = {c.lower(): c for c in candidates}
    if key.lower() in lowered:
        return lowered[key.lower()]
    close = difflib.get_close_matches(key.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[close[0]] if close else ""


def _unknown(path: str, key: str, candidates: list[str], extra_hint: str = "") -> Finding:
    guess = suggest(key, candidates)
    hint = f"Did you mean '{guess}'?" if guess else f"Known keys here: {', '.join(candidates)}."
    if extra_hint:
        hint = extra_hint
    return error("CFG002", path, f"Unknown key '{key}'.", hint)


def _schema_finding(path: str) -> Finding:
    return error("CFG008", path, SCHEMA_MESSAGE, f"Remove '{path}' from the configuration.")


def _scan_schema_keys(value: Any, path: str, out: list[Finding]) -> None:
    if isinstance(value, Mapping):
        for key, sub in value.items():
            sub_path = f"{path}.{key}" if path else str(key)
            if str(key).lower() in SCHEMA_KEYS:
                out.append(_schema_finding(sub_path))
            else:
                _scan_schema_keys(sub, sub_path, out)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _scan_schema_keys(item, f"{path}[{index}]", out)


def _section_of(key: str) -> str:
    for section, model in SECTIONS.items():
        if key in model.model_fields:
            return section
    return ""


def parse_file(raw: Mapping[str, Any]) -> RawFile:
    """Split the file into instances, dropping (and reporting) everything that does not fit."""
    findings: list[Finding] = []
    _scan_schema_keys(raw, "", findings)
    default_instance: str | None = None
    instances: dict[str, RawInstance] = {}
    for key, value in raw.items():
        if key.lower() in SCHEMA_KEYS:
            continue
        if key == "default_instance":
            if isinstance(value, str):
                default_instance = value
            else:
                findings.append(
                    error("CFG003", key, "default_instance must be a string.", 'e.g. "contoso"')
                )
        elif key == "instances":
            if isinstance(value, Mapping):
                for name, body in value.items():
                    instances[name] = _parse_instance(name, body, findings)
            else:
                findings.append(
                    error(
                        "CFG003",
                        key,
                        "'instances' must be a table of named instances.",
                        "Write [instances.<name>.credly], [instances.<name>.entra], ...",
                    )
                )
        elif key in SECTIONS or _section_of(key):
            section = key if key in SECTIONS else _section_of(key)
            findings.append(
                _unknown(
                    key,
                    key,
                    list(TOP_LEVEL_KEYS),
                    f"Settings belong to a named instance: move it under "
                    f"[instances.<name>.{section}].",
                )
            )
        else:
            findings.append(_unknown(key, key, list(TOP_LEVEL_KEYS)))
    return RawFile(default_instance, instances, findings)


def _parse_instance(name: str, body: Any, findings: list[Finding]) -> RawInstance:
    instance = RawInstance(name)
    base = f"instances.{name}"
    if not isinstance(body, Mapping):
        findings.append(
            error(
                "CFG003",
                base,
                "An instance must be a table with credly/entra/graph/sync/network sections.",
                f"Write [instances.{name}.credly] and so on.",
            )
        )
        return instance
    for key, value in body.items():
        path = f"{base}.{key}"
        if key.lower() in SCHEMA_KEYS:
            continue
        if key not in SECTIONS:
            section = _section_of(key)
            hint = f"Move it into [{base}.{section}]." if section else ""
            findings.append(_unknown(path, key, list(SECTIONS), hint))
            continue
        if not isinstance(value, Mapping):
            findings.append(
                error(
                    "CFG003", path, f"'{key}' must be a table.", f"Write [{path}] on its own line."
                )
            )
            continue
        _parse_section(instance, key, value, path, findings)
    return instance


def _parse_section(
    instance: RawInstance, section: str, body: Mapping[str, Any], base: str, findings: list[Finding]
) -> None:
    known = list(SECTIONS[section].model_fields)
    instance.sections.setdefault(section, {})
    for key, value in body.items():
        path = f"{base}.{key}"
        if key.lower() in SCHEMA_KEYS:
            continue
        if key not in known:
            other = _section_of(key)
            hint = f"'{key}' belongs in [instances.{instance.name}.{other}]." if other else ""
            findings.append(_unknown(path, key, known, hint))
            continue
        if (section, key) in SECRET_FIELDS:
            ref = normalize_secret(value, path, findings)
            if ref is not None:
                instance.set(section, key, ref, "file")
            else:  # already reported: it must not also count as missing
                instance.origins[f"{section}.{key}"] = INVALID
            continue
        instance.set(section, key, value, "file")


def normalize_secret(value: Any, path: str, findings: list[Finding]) -> dict[str, Any] | None:
    """An inline string becomes {value = ...}; a table must name exactly one source."""
    if isinstance(value, str):
        return {"value": value}
    if not isinstance(value, Mapping):
        findings.append(
            error(
                "CFG030",
                path,
                "A secret must be a string or a reference table.",
                'Write { env = "VARIABLE" } or { file = "/path/to/file" }.',
            )
        )
        return None
    allowed = ("env", "file", "value")
    ref: dict[str, Any] = {}
    reported = len(findings)
    for key, sub in value.items():
        if str(key).lower() in SCHEMA_KEYS:
            continue
        if key not in allowed:
            findings.append(_unknown(f"{path}.{key}", key, list(allowed)))
        elif not isinstance(sub, str) or (key != "value" and not sub.strip()):
            findings.append(
                error(
                    "CFG030",
                    f"{path}.{key}",
                    f"'{key}' must be a non-empty string.",
                    'e.g. { env = "CREDLY_CLIENT_SECRET" } or { file = "/path/to/secret" }',
                )
            )
        else:
            ref[key] = sub
    if len(findings) > reported:
        return None
    if len(ref) != 1:
        findings.append(
            error(
                "CFG030",
                path,
                "A secret reference must name exactly one source"
                + (f" (found {', '.join(sorted(ref))})." if ref else " (found none)."),
                'Write { env = "VARIABLE" } or { file = "/path/to/file" }.',
            )
        )
        return None
    return ref


def env_layer(
    environ: Mapping[str, str],
) -> tuple[dict[tuple[str, str], tuple[Any, str]], list[Finding]]:
    """CREDLYCTL_<SECTION>_<KEY> values, and warnings for look-alikes that match no key."""
    values: dict[tuple[str, str], tuple[Any, str]] = {}
    findings: list[Finding] = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name[len(ENV_PREFIX) :] in NON_CONFIG_ENV:
            continue
        rest = name[len(ENV_PREFIX) :]
        section = next((s for s in SECTIONS if rest.startswith(f"{s.upper()}_")), "")
        if not section:
            continue
        key = rest[len(section) + 1 :].lower()
        if key not in SECTIONS[section].model_fields:
            guess = suggest(key, list(SECTIONS[section].model_fields))
            hint = f"Did you mean {ENV_PREFIX}{section.upper()}_{guess.upper()}?" if guess else ""
            findings.append(
                warning(
                    "CFG026",
                    f"env:{name}",
                    f"{name} matches no configuration key and is ignored.",
                    hint or "See docs/configuration.md for the variable names.",
                )
            )
            continue
        value: Any = environ[name]
        if (section, key) in SECRET_FIELDS:
            # The variable itself holds the secret: record a reference, never the value.
            value = {"env": name}
        elif key == "opt_out":
            value = [part.strip() for part in str(value).split(",") if part.strip()]
        values[(section, key)] = (value, f"env:{name}")
    return values, findings


def apply_env(instance: RawInstance, layer: Mapping[tuple[str, str], tuple[Any, str]]) -> None:
    for (section, key), (value, origin) in layer.items():
        instance.set(section, key, value, origin)


def apply_overrides(instance: RawInstance, overrides: Mapping[str, Any] | None) -> None:
    """Flags: {"credly.org_id": "..."} or {"credly": {"org_id": ...}}; None means not given."""
    for dotted, value in _flatten(overrides or {}).items():
        if value is None:
            continue
        section, _, key = dotted.partition(".")
        if section not in SECTIONS or key not in SECTIONS[section].model_fields:
            raise ValueError(f"unknown override {dotted!r}")  # a bug in the calling command
        if (section, key) in SECRET_FIELDS and isinstance(value, str):
            value = {"value": value}
        instance.set(section, key, value, "flag")


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and dotted in SECTIONS:
            flat.update(_flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def environ() -> Mapping[str, str]:
    return os.environ
