"""`--log-file`: a JSON-lines record of what a crawl did, for unattended runs.

Only ids, addresses, counts and messages go in; every line passes through `scrub` as a last
defence so a secret can never reach the file.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from credly_connector.secrets import scrub


class CrawlLog:
    def __init__(self, path: Path | None) -> None:
        self._lock = threading.Lock()
        self._file: TextIO | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8")

    def event(self, name: str, **fields: Any) -> None:
        if self._file is None:
            return
        record = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), "event": name}
        record.update(fields)
        line = scrub(json.dumps(record, default=str, ensure_ascii=False))
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
