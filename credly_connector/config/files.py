"""Finding and parsing the configuration file (no validation of its content here)."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from credly_connector.errors import ConfigError

APP_NAME = "credlyctl"
CONFIG_ENV = "CREDLYCTL_CONFIG"
_POSITION_RE = re.compile(r"\(at line (\d+), column (\d+)\)")


def default_config_path() -> Path:
    return platformdirs.user_config_path(APP_NAME) / "config.toml"


def default_state_root() -> Path:
    return platformdirs.user_state_path(APP_NAME)


def locate(config_path: Path | None) -> tuple[Path, str]:
    """The file to read and how it was chosen: --config, then $CREDLYCTL_CONFIG, then default."""
    from_env = os.environ.get(CONFIG_ENV, "").strip()
    if config_path is not None:
        # The CLI option reads $CREDLYCTL_CONFIG itself; name the real source all the same.
        chosen_by = f"${CONFIG_ENV}" if from_env and Path(from_env) == config_path else "--config"
        return config_path.expanduser(), chosen_by
    if from_env:
        return Path(from_env).expanduser(), f"${CONFIG_ENV}"
    return default_config_path(), "the user config folder"


@dataclass(frozen=True)
class ParseFailure:
    """Why a file could not be read or parsed; `line`/`column` are 1-based when known."""

    kind: str  # "missing" | "unreadable" | "syntax"
    message: str
    hint: str
    line: int | None = None
    column: int | None = None


# A configuration file is a few kB; reading stops past this, so `--config /dev/zero` or a
# mistaken multi-GB file ends with an error instead of reading forever (hardening L2).
MAX_CONFIG_BYTES = 1024 * 1024


def read_bounded(path: Path, limit: int) -> bytes | None:
    """At most `limit` bytes of `path`; None when it holds more."""
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    return data if len(data) <= limit else None


def read_toml(path: Path, chosen_by: str = "--config") -> dict[str, Any] | ParseFailure:
    try:
        data = read_bounded(path, MAX_CONFIG_BYTES)
    except FileNotFoundError:
        return ParseFailure(
            "missing",
            f"No configuration file at {path} (chosen by {chosen_by}).",
            "Create one with `credlyctl config init`, or point --config or "
            f"${CONFIG_ENV} at an existing file.",
        )
    except IsADirectoryError:
        return ParseFailure(
            "unreadable", f"{path} is a folder, not a configuration file.", "Give the file path."
        )
    except OSError as exc:
        return ParseFailure(
            "unreadable",
            f"Cannot read {path}: {exc.strerror or type(exc).__name__}.",
            "Check the file's permissions.",
        )
    if data is None:
        return ParseFailure(
            "unreadable",
            f"{path} is larger than {MAX_CONFIG_BYTES // 1024} KiB: not a configuration file.",
            "Point --config or $CREDLYCTL_CONFIG at the TOML configuration file.",
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return ParseFailure(
            "syntax",
            f"{path} is not UTF-8 text (bad byte at offset {exc.start}).",
            "Save the file as UTF-8.",
        )
    try:
        return tomllib.loads(text)
    except RecursionError:  # thousands of nested arrays or tables: no configuration looks so
        return ParseFailure(
            "syntax",
            f"{path} is not valid TOML: values are nested too deeply.",
            "A credlyctl configuration nests tables two or three levels deep; see "
            "docs/configuration.md for a complete example.",
        )
    except tomllib.TOMLDecodeError as exc:
        detail = str(exc)
        match = _POSITION_RE.search(detail)
        line = int(match.group(1)) if match else None
        column = int(match.group(2)) if match else None
        reason = _POSITION_RE.sub("", detail).strip()
        where = f" at line {line}, column {column}" if match else ""
        return ParseFailure(
            "syntax",
            f"{path} is not valid TOML{where}: {reason}.",
            "Fix the syntax there (strings need quotes, each key once per table; see "
            "docs/configuration.md for a complete example).",
            line,
            column,
        )


def load_raw(config_path: Path | None) -> tuple[dict[str, Any], Path]:
    """Read and parse the configuration file, or raise ConfigError."""
    path, chosen_by = locate(config_path)
    parsed = read_toml(path, chosen_by)
    if isinstance(parsed, ParseFailure):
        error_id = "CFG001" if parsed.kind == "syntax" else "CFG000"
        raise ConfigError(parsed.message, parsed.hint, error_id=error_id)
    return parsed, path
