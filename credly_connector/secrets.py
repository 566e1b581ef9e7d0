"""A secret value that can be used but never shown.

`str()`, `repr()` and formatting all give the redacted form; the value is only reachable
through `reveal()`, which is called right where a secret goes on the wire.
"""

from __future__ import annotations

import hashlib
from typing import Any

REDACTED = "***"

# Every secret value loaded in this process, so output and logs can be scrubbed as a last line
# of defence: even if a value slips into a message, it is replaced before anyone sees it.
_KNOWN_VALUES: set[str] = set()
_MIN_SCRUB_LENGTH = 4  # shorter values would turn ordinary words into ***


def scrub(text: str) -> str:
    """Replace every known secret value in `text` with the redaction marker."""
    for value in sorted(_KNOWN_VALUES, key=len, reverse=True):
        if value in text:
            text = text.replace(value, REDACTED)
    return text


def register_secret_value(value: str) -> None:
    """Remember a sensitive string that is not a `Secret` (e.g. an access token) for `scrub`."""
    if len(value) >= _MIN_SCRUB_LENGTH:
        _KNOWN_VALUES.add(value)


class Secret:
    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str) -> None:
        self._value = value
        self.source = source  # e.g. "env:CREDLY_CLIENT_SECRET", "file:/etc/x", "inline"
        register_secret_value(value)

    def reveal(self) -> str:
        return self._value

    @property
    def fingerprint(self) -> str:
        """A short one-way fingerprint: lets an admin tell two secrets apart, reveals nothing."""
        digest = hashlib.sha256(b"credlyctl-fingerprint:" + self._value.encode()).hexdigest()
        return f"sha256:{digest[:8]}"

    @property
    def is_empty(self) -> bool:
        return not self._value

    def describe(self) -> dict[str, str]:
        return {"source": self.source, "fingerprint": self.fingerprint}

    def __repr__(self) -> str:
        return f"Secret(source={self.source!r}, fingerprint={self.fingerprint!r})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:  # never pickle the value into a file or a log
        raise TypeError("Secret values cannot be pickled")
