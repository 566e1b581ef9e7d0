"""`--log-file`: a JSON-lines record of what a crawl did, for unattended runs.

Only ids, addresses, counts and messages go in; every line passes through `scrub` as a last
defence so a secret can never reach the file.
"""

from __future__ import annotations

import contextlib
import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from credly_connector.localfiles import LocalFileError, ensure_folder
from credly_connector.secrets import scrub


class CrawlLog:
    def __init__(self, path: Path | None) -> None:
        self._lock = threading.Lock()
        self._file: TextIO | None = None
        if path is not None:
            self._file = _open_log(path)

    def event(self, name: str, **fields: Any) -> None:
        if self._file is None:
            return
        record = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), "event": name}
        record.update(fields)
        line = scrub(json.dumps(record, default=str, ensure_ascii=False))
        with self._lock:
            try:
                self._file.write(line + "\n")
                self._file.flush()
            except OSError as exc:
                raise LocalFileError.from_os_error(exc, Path(self._file.name), "log file") from None

    def close(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            with contextlib.suppress(OSError):  # a failed write was already reported
                file.close()


def _open_log(path: Path) -> TextIO:
    """Open the log for appending, or say what is wrong with the path (exit 2, not a bug)."""
    if str(path) in ("", ".") or path.is_dir():
        raise LocalFileError(
            f"--log-file must name a file, not a folder ({str(path) or 'an empty path'}).",
            "Give a file path, e.g. `--log-file sync.jsonl`.",
            error_id="log_file_is_folder",
        )
    ensure_folder(path.parent, "log folder")
    try:
        return path.open("a", encoding="utf-8")
    except OSError as exc:
        raise LocalFileError.from_os_error(exc, path, "log file") from None
