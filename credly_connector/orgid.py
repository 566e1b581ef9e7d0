"""Offline checks of a Credly Organization ID: is it a GUID, and if not, exactly why not.

Credly Organization IDs are lower-case hyphenated UUIDs (8-4-4-4-12). Admins paste all sorts
of things instead: the value with quotes or braces, a URL, the organization's vanity slug.
Each case gets its own reason, so the fix is obvious. Used by `validate-org-id` and by the
configuration checks, which must give the same explanation.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

GROUPS = (8, 4, 4, 4, 12)
CANONICAL_LENGTH = 36
HEX_DIGITS = 32
WHERE_TO_FIND = (
    "Copy the Organization ID from Credly: sign in as an organization admin, open the "
    "Developers section (Credly Developers portal / organization settings) and copy the "
    "GUID shown there."
)

_HEX = frozenset("0123456789abcdefABCDEF")
# Only a GUID standing on its own: "...cf00" (one digit too many) is a length problem, not
# a GUID with text around it.
_GUID_RE = re.compile(
    r"(?<![0-9a-fA-F-])[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"(?![0-9a-fA-F-])"
)
_QUOTES = {'"': '"', "'": "'", "`": "`", "\u201c": "\u201d", "\u2018": "\u2019", "\u00ab": "\u00bb"}
_URN_PREFIX = "urn:uuid:"
_URL_RE = re.compile(r"^[a-z][a-z0-9+.-]*://|^www\.|credly\.com|youracclaim\.com", re.IGNORECASE)
_SLUG_RE = re.compile(r"^[\w .&'-]+$")


@dataclass(frozen=True)
class OrgIdCheck:
    """The verdict on one pasted value. `reason` is a stable id (see docs/configuration.md)."""

    value: str
    ok: bool
    reason: str
    message: str
    hint: str = ""
    canonical: str | None = None  # the accepted lower-case form, when ok
    suggestion: str | None = None  # a canonical GUID found inside a not-quite-right value

    def to_dict(self) -> dict[str, object]:
        return {
            "input": self.value,
            "valid": self.ok,
            "reason": self.reason,
            "message": self.message,
            "hint": self.hint,
            "canonical": self.canonical,
            "suggestion": self.suggestion,
        }


def describe_char(char: str) -> str:
    """A character as an admin can recognise it, even when it is invisible."""
    name = unicodedata.name(char, "")
    if char.isprintable() and not char.isspace():
        return repr(char)
    label = f" ({name})" if name else ""
    return f"U+{ord(char):04X}{label}"


def canonical_from_hex(hex32: str) -> str:
    parts = []
    start = 0
    for size in GROUPS:
        parts.append(hex32[start : start + size])
        start += size
    return "-".join(parts).lower()


def check_org_id(value: str) -> OrgIdCheck:
    """Explain whether `value` is a usable Credly Organization ID."""
    if value == "":
        return OrgIdCheck(value, False, "empty", "The Organization ID is empty.", WHERE_TO_FIND)
    wrapped = _unwrap(value)
    if wrapped is not None:
        return wrapped
    return _check_core(value)


def _found(value: str, reason: str, what: str, how: str, inner: str) -> OrgIdCheck:
    """A wrapper around the ID (quotes, braces, ...): suggest the inner value when it is good."""
    inner_check = check_org_id(inner)  # always shorter than value: the recursion ends
    suggestion = inner_check.canonical or inner_check.suggestion
    if suggestion:
        return OrgIdCheck(
            value,
            False,
            reason,
            f"The Organization ID {what}.",
            f"{how} Use: {suggestion}",
            suggestion=suggestion,
        )
    return OrgIdCheck(
        value,
        False,
        inner_check.reason,
        f"The Organization ID {what}; even without it, {_lower_first(inner_check.message)}",
        inner_check.hint,
    )


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _unwrap(value: str) -> OrgIdCheck | None:
    stripped = value.strip()
    if stripped != value:
        if not stripped:
            return OrgIdCheck(
                value, False, "empty", "The Organization ID holds only whitespace.", WHERE_TO_FIND
            )
        return _found(
            value,
            "whitespace",
            "has whitespace around it",
            "Remove the spaces, tabs or line breaks before and after it.",
            stripped,
        )
    first, last = value[0], value[-1]
    if len(value) >= 2 and _QUOTES.get(first) == last:
        return _found(
            value,
            "quotes",
            f"is wrapped in quotes ({first}...{last})",
            "Remove the quotes.",
            value[1:-1],
        )
    if len(value) >= 2 and first == "{" and last == "}":
        return _found(
            value,
            "braces",
            "is wrapped in braces ({...}), the Microsoft registry style",
            "Remove the braces.",
            value[1:-1],
        )
    if value.lower().startswith(_URN_PREFIX):
        return _found(
            value,
            "urn",
            "starts with the urn:uuid: prefix",
            "Remove the 'urn:uuid:' prefix.",
            value[len(_URN_PREFIX) :],
        )
    if _URL_RE.search(value):
        return _from_url(value)
    found = _GUID_RE.findall(value)
    if len(found) > 1:
        return OrgIdCheck(
            value,
            False,
            "several",
            f"The value holds {len(found)} GUIDs; a connector instance serves exactly one "
            "Credly organization.",
            "Create one instance per organization, each with a single Organization ID.",
        )
    match = _GUID_RE.search(value)
    if match and match.group(0) != value:
        return _found(
            value,
            "embedded",
            "contains a GUID surrounded by other text",
            "Keep only the GUID.",
            match.group(0),
        )
    return None


def _from_url(value: str) -> OrgIdCheck:
    if len(_GUID_RE.findall(value)) > 1:
        return OrgIdCheck(
            value,
            False,
            "url",
            "This is a URL, not an Organization ID, and it holds several GUIDs.",
            WHERE_TO_FIND,
        )
    match = _GUID_RE.search(value)
    if match:
        guid = match.group(0).lower()
        return OrgIdCheck(
            value,
            False,
            "url",
            "This is a URL, not an Organization ID. It contains a GUID, which may be the ID.",
            f"Check that {guid} is the Organization ID shown in Credly's Developers section, "
            f"then use it on its own. {WHERE_TO_FIND}",
            suggestion=guid,
        )
    return OrgIdCheck(
        value,
        False,
        "url",
        "This is a URL, not an Organization ID, and it contains no GUID (a vanity URL such as "
        "/org/<name> holds the organization's name, not its ID).",
        WHERE_TO_FIND,
    )


def _check_core(value: str) -> OrgIdCheck:
    hex_only = value.replace("-", "")
    bad = next(((i, c) for i, c in enumerate(value) if c != "-" and c not in _HEX), None)
    if bad is not None and _looks_like_name(value):
        return OrgIdCheck(
            value,
            False,
            "slug",
            "This looks like an organization name or vanity slug, not an Organization ID "
            "(a GUID such as 0f381ae3-f9d3-4545-9e21-dcda99431713).",
            WHERE_TO_FIND,
        )
    if bad is not None:
        position, char = bad
        return OrgIdCheck(
            value,
            False,
            "non_hex",
            f"Character {position + 1} is {describe_char(char)}, which is not a hexadecimal "
            "digit (0-9, a-f) or a hyphen.",
            "Copy the ID again instead of typing it; letters after 'f' and the letter O "
            f"(for zero) never appear in a GUID. {WHERE_TO_FIND}",
        )
    if len(hex_only) != HEX_DIGITS:
        return OrgIdCheck(
            value,
            False,
            "length",
            f"It has {len(value)} characters ({len(hex_only)} hexadecimal digits); an "
            f"Organization ID has {CANONICAL_LENGTH} characters: {HEX_DIGITS} hexadecimal "
            "digits in groups of 8-4-4-4-12 separated by hyphens.",
            f"Part of the ID is missing or repeated; copy it again. {WHERE_TO_FIND}",
        )
    canonical = canonical_from_hex(hex_only)
    if "-" not in value:
        return OrgIdCheck(
            value,
            False,
            "hyphens_missing",
            "The hyphens are missing: an Organization ID is written in groups of 8-4-4-4-12.",
            f"Use: {canonical}",
            suggestion=canonical,
        )
    if value.lower() != canonical:
        groups = "-".join(str(len(part)) for part in value.split("-"))
        return OrgIdCheck(
            value,
            False,
            "hyphens_misplaced",
            f"The hyphens are misplaced: the groups are {groups}, expected 8-4-4-4-12 "
            "(hyphens at positions 9, 14, 19 and 24).",
            f"Use: {canonical}",
            suggestion=canonical,
        )
    note = "" if value == canonical else " (normalized to lower case)"
    return OrgIdCheck(value, True, "ok", f"Valid Organization ID{note}.", canonical=canonical)


def _looks_like_name(value: str) -> bool:
    """A slug or a name, rather than a mistyped GUID: letters beyond 'f', not GUID-shaped."""
    if not _SLUG_RE.match(value):
        return False
    if not any(c.isalpha() and c.lower() not in "abcdef" for c in value):
        return False
    parts = value.split("-")
    return tuple(len(p) for p in parts) != GROUPS
