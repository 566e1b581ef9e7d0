"""A secret value that can be used but never shown.

`str()`, `repr()` and formatting all give the redacted form; the value is only reachable
through `reveal()`, which is called right where a secret goes on the wire.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from typing import Any
from urllib.parse import quote, quote_plus

REDACTED = "***"

# Every secret value loaded in this process, so output and logs can be scrubbed as a last line
# of defence: even if a value slips into a message, it is replaced before anyone sees it.
_KNOWN_VALUES: set[str] = set()
_MIN_SCRUB_LENGTH = 4  # shorter values would turn ordinary words into ***


# Percent-encoded forms, matched whatever the case of their hex digits (%2B, %2b).
_ENCODED_PATTERNS: dict[str, re.Pattern[str]] = {}
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")


def scrub(text: str) -> str:
    """Replace every known secret value in `text` with the redaction marker."""
    for value in sorted(_KNOWN_VALUES, key=len, reverse=True):
        if value in text:
            text = text.replace(value, REDACTED)
    if "%" in text:
        for pattern in _ENCODED_PATTERNS.values():
            text = pattern.sub(REDACTED, text)
    return text


def register_secret_value(value: str) -> None:
    """Remember a sensitive string that is not a `Secret` (e.g. an access token) for `scrub`.

    Every form the value travels in is remembered too: a server (or a proxy page) that echoes a
    request body shows the URL-encoded form, a JSON error shows the JSON-escaped one.
    """
    if len(value) < _MIN_SCRUB_LENGTH:
        return
    for form in encoded_forms(value):
        if len(form) >= _MIN_SCRUB_LENGTH:
            _KNOWN_VALUES.add(form)
            if _PERCENT.search(form) and form not in _ENCODED_PATTERNS:
                _ENCODED_PATTERNS[form] = _case_blind_hex(form)


def register_basic_credentials(user: str, password: str) -> None:
    """Remember the HTTP Basic forms of a user/password pair (RFC 6749 encodes both first)."""
    register_secret_value(password)
    for pair in (f"{user}:{password}", f"{quote_plus(user)}:{quote_plus(password)}"):
        register_secret_value(base64.b64encode(pair.encode()).decode("ascii"))


def encoded_forms(value: str) -> set[str]:
    """The value as sent or echoed: raw, URL-encoded (both styles, both hex cases), JSON, HTML."""
    forms = {value, html.escape(value), json.dumps(value)[1:-1]}
    forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
    forms.update((quote(value, safe=""), quote(value), quote_plus(value), quote_plus(value, "/")))
    return forms


def _case_blind_hex(form: str) -> re.Pattern[str]:
    # %2B and %2b are the same byte; some servers re-encode in lower case.
    pieces: list[str] = []
    position = 0
    for match in _PERCENT.finditer(form):
        pieces.append(re.escape(form[position : match.start()]))
        pieces.append(f"%(?i:{match.group(0)[1:]})")
        position = match.end()
    pieces.append(re.escape(form[position:]))
    return re.compile("".join(pieces))


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
