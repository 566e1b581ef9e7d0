"""Secret references of an instance: environment variables, files, inline values."""

from __future__ import annotations

import os

from credly_connector.config import model as m
from credly_connector.config.files import read_bounded
from credly_connector.config.findings import error, info, warning
from credly_connector.config.resolve_base import ResolverBase
from credly_connector.secrets import Secret

# A secret is a line or a short PEM; reading stops past this, so `{ file = "/dev/zero" }` ends
# with a finding instead of reading forever (hardening L2).
MAX_SECRET_BYTES = 64 * 1024


class _TooLarge(Exception):
    pass


def mode_bits_control_access() -> bool:
    """POSIX mode bits say who may read a file; on Windows the ACL does (not checked)."""
    return os.name != "nt"


class SecretsMixin(ResolverBase):
    def secret(self, section: str, key: str, ref: m.SecretRef | None) -> Secret | None:
        if ref is None:
            return None
        path = self.path(section, key)
        if ref.env is not None:
            value = self.ctx.environ.get(ref.env)
            if value is None or value == "":
                state = "is not set" if value is None else "is set but empty"
                self.add(
                    error(
                        "CFG010",
                        path,
                        f"The environment variable {ref.env} {state}.",
                        f"Set {ref.env} in the environment that runs credlyctl, or change the "
                        "reference.",
                    )
                )
                return None
            return Secret(value, f"env:{ref.env}")
        if ref.file is not None:
            file = self.file_path(ref.file)
            value = ""
            try:
                data = read_bounded(file, MAX_SECRET_BYTES)
                if data is None:
                    raise _TooLarge
                value = data.decode("utf-8-sig").strip()
            except _TooLarge:
                problem = f"is larger than {MAX_SECRET_BYTES // 1024} KiB (not a secret file)"
            except FileNotFoundError:
                problem = "does not exist"
            except (OSError, UnicodeDecodeError) as exc:
                problem = f"cannot be read ({getattr(exc, 'strerror', None) or type(exc).__name__})"
            else:
                problem = "is empty" if not value else ""
            if problem:
                self.add(
                    error(
                        "CFG011",
                        path,
                        f"The secret file {file} {problem}.",
                        "Create the file holding only the secret, readable by the account "
                        "that runs credlyctl, or change the reference.",
                    )
                )
                return None
            return Secret(value, f"file:{file}")
        value = ref.value or ""
        origin = self.raw.origin(section, key)
        if not value:
            self.add(error("CFG004", path, "The secret is empty.", "Fill it in or remove the key."))
            return None
        if origin == "file":
            self.inline_secret_paths.append(path)
            self.add(
                warning(
                    "CFG017",
                    path,
                    "The secret is written inline in the configuration file.",
                    f'Move it out: {key} = {{ env = "VARIABLE" }} or {key} = '
                    '{ file = "/path/to/secret" }.',
                )
            )
            self.check_file_mode(path)
        return Secret(value, "inline" if origin == "file" else origin)

    def check_file_mode(self, path: str) -> None:
        mode = self.ctx.file_mode
        if mode is None or len(self.inline_secret_paths) > 1:
            return  # one finding per instance is enough
        if not mode_bits_control_access():
            # Windows: who may read a file is its ACL; st_mode only says read-only or not.
            self.add(
                info(
                    "CFG018",
                    path,
                    f"{self.ctx.config_path} holds an inline secret; on Windows credlyctl "
                    "cannot tell from the file mode who may read it (that is the file's ACL).",
                    f"Check it with `icacls {self.ctx.config_path}` (only you and "
                    "administrators should have access), or move the secret to an environment "
                    "variable or a file.",
                )
            )
            return
        if not mode & 0o077:
            return
        self.add(
            warning(
                "CFG018",
                path,
                f"{self.ctx.config_path} holds an inline secret and can be read by other "
                f"users (mode {mode & 0o777:o}).",
                f"chmod 600 {self.ctx.config_path}, or move the secret to an environment "
                "variable or a file.",
            )
        )
