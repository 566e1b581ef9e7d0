"""Switches (inferred behaviours) and service-level faults, changeable while the simulator runs.

A switch picks between plausible answers where the reference could not confirm the real one;
the client must cope with every setting, and tests run it under each.
"""

from __future__ import annotations

import threading
from typing import Any

# name -> (default, allowed values or None for "any bool")
SWITCHES: dict[str, tuple[Any, tuple[Any, ...] | None]] = {
    # [INFERRED] Credly does not document whether filter=recipient_email::X ignores case.
    "recipient_email_filter_case_sensitive": (False, None),
    # [INFERRED] A credential reading an organization it may not see: 403 or 404.
    "foreign_org_status": (403, (403, 404)),
    # [INFERRED] Where a missing OAuth scope shows: "token" = invalid_scope from the token
    # endpoint; "api" = a token is issued with the scopes the client has and the API answers
    # 403 where `issued_badges` is needed.
    "scope_error": ("token", ("token", "api")),
    # [3P] Some clients send HTTP Basic with the bare token and no colon; Credly accepted it.
    "basic_auth_bare_token": (True, None),
    # [INFERRED] Credly documents `updated_at_min`/`updated_at_max` (YYYY-MM-DD, inclusive)
    # for badge templates only (credly-api.md §4.2, §5.3). On issued badges the filter may be
    # "honoured" (by analogy with templates), "ignored" (dropped like any unknown key: the
    # whole list comes back) or "rejected" (400 for a filter key the endpoint does not know).
    "credly_updated_at_filter": ("honoured", ("honoured", "ignored", "rejected")),
    # [INFERRED] Credly documents `sort=key` (`-key` descending, keys joined by `|`) for badge
    # templates and employees (employees sort by `email`), not which keys issued badges take
    # (credly-api.md §4.2, §7). `sort=recipient_email` may be "honoured" (by analogy with the
    # `recipient_email` filter key and the employees' `email` sort key), "ignored" (the
    # organization's order) or "rejected" (400, as for a filter key the endpoint does not know).
    "credly_badge_sort": ("honoured", ("honoured", "ignored", "rejected")),
}

# name -> default; service-level faults (the front end owns latency, 503s and malformed JSON).
SERVICE_FAULTS: dict[str, Any] = {
    "unknown_badge_states": {},  # badge id -> state string sent instead of the real state
    "credly_token_lifetime_seconds": 7200,  # [3P] Doorkeeper's default, per the reference
    "entra_token_lifetime_seconds": 3599,
    # What stands in front of the token endpoint (hardening findings H2, M1, L4): "entra"
    # (Entra answers), "echo_text" (a gateway's 400 text page echoing the form),
    # "echo_aadsts" (an unknown AADSTS code whose description echoes the form), "html_200" (a
    # captive portal), "redirect_307" (a redirect to another origin).
    "entra_token_answer": "entra",
}


class Knobs:
    """A validated, lock-protected bag of current values with known defaults."""

    def __init__(self, defaults: dict[str, Any], allowed: dict[str, tuple[Any, ...] | None]):
        self._lock = threading.Lock()
        self._allowed = allowed
        self._values = dict(defaults)

    def set(self, **values: Any) -> None:
        with self._lock:
            for key, value in values.items():
                if key not in self._values:
                    raise KeyError(f"unknown setting {key!r}; known: {sorted(self._values)}")
                choices = self._allowed.get(key)
                if choices is not None and value not in choices:
                    raise ValueError(f"{key} must be one of {choices}, not {value!r}")
                if choices is None and isinstance(self._values[key], bool):
                    value = bool(value)
                self._values[key] = value

    def get(self, key: str) -> Any:
        with self._lock:
            return self._values[key]

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._values)


def make_switches() -> Knobs:
    return Knobs(
        {name: default for name, (default, _) in SWITCHES.items()},
        {name: allowed for name, (_, allowed) in SWITCHES.items()},
    )


def make_service_faults() -> Knobs:
    return Knobs(dict(SERVICE_FAULTS), {})
