"""Local files credlyctl writes (state, lock, logs, support bundles), portable to Windows.

A full disk, a folder that cannot be written or a path that is a directory is the admin's to
fix, not a bug: each becomes a `LocalFileError` (exit 2) that says what to do. Paths that are
not regular files (symlinks, FIFOs, devices) are refused instead of followed or replaced.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from credly_connector.errors import UsageError

_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG}
_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}


class LocalFileError(UsageError):
    """A local file or folder cannot be used: disk full, no permission, wrong kind of path."""

    @classmethod
    def from_os_error(cls, exc: OSError, path: Path, what: str) -> LocalFileError:
        where = f"The {what} {path}"
        reason = exc.strerror or type(exc).__name__
        if exc.errno in _FULL:
            return cls(
                f"{where} cannot be written: the disk is full ({reason}).",
                "Free disk space (or raise the file size limit) and run the command again; "
                "nothing already written is lost.",
                error_id="disk_full",
            )
        if isinstance(exc, IsADirectoryError | NotADirectoryError | FileExistsError):
            return cls(
                f"{where} cannot be used: a file or folder is in the way ({reason}).",
                f"Move aside whatever is at {path} (or one of its parent folders), or choose "
                "another path.",
                error_id="path_in_the_way",
            )
        if isinstance(exc, PermissionError) or exc.errno in _DENIED:
            return cls(
                f"{where} cannot be written: permission denied ({reason}).",
                "Give the account that runs credlyctl write access to it (or to its folder), "
                "or choose another path.",
                error_id="permission_denied",
            )
        return cls(
            f"{where} cannot be used ({reason}).",
            "Check the path, the free space and the permissions, then run the command again.",
            error_id="local_file_error",
        )


def ensure_folder(folder: Path, what: str) -> None:
    """Create `folder` (and its parents) or say clearly why it cannot be."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LocalFileError.from_os_error(exc, folder, what) from None


def refuse_special_file(path: Path, what: str) -> None:
    """Refuse a path that exists and is not a regular file (never followed, never replaced)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise LocalFileError.from_os_error(exc, path, what) from None
    if stat.S_ISREG(info.st_mode):
        return
    kind = (
        "a symbolic link"
        if stat.S_ISLNK(info.st_mode)
        else "a folder"
        if stat.S_ISDIR(info.st_mode)
        else "a special file (device, FIFO or socket)"
    )
    raise LocalFileError(
        f"The {what} {path} is {kind}; credlyctl writes only regular files and never follows "
        "or replaces anything else.",
        "Choose a path to a regular file (or a new one).",
        error_id="special_file",
    )


# O_NOFOLLOW does not exist on Windows, where refuse_special_file already checked the path.
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_BINARY = getattr(os, "O_BINARY", 0)


def create_private_file(path: Path, what: str) -> int:
    """Open a new file for writing, readable by its owner only; an old one is replaced."""
    refuse_special_file(path, what)
    try:
        if path.exists():
            path.unlink()
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _BINARY, 0o600)
    except OSError as exc:
        raise LocalFileError.from_os_error(exc, path, what) from None
