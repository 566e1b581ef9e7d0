"""What the libraries credlyctl uses may print: nothing, unless --debug, and never a secret.

msal, httpx, httpcore, urllib3 and friends log through Python's `logging`. With no handler
configured, a WARNING or ERROR record goes to `logging.lastResort`, which writes it to stderr
unfiltered, around every console credlyctl scrubs. msal does exactly that when a token answer
is not JSON: it logs the answer's text, and a page that echoes the form holds
`client_secret=<value>` (hardening finding H2). So, once at start:

- every record from these libraries goes to one handler of ours, never to `lastResort`;
- that handler drops everything unless debug output was asked for;
- what it does write passes through `secrets.scrub`, message and traceback alike.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import TextIO

from credly_connector.secrets import scrub

THIRD_PARTY_LOGGERS = (
    "msal",
    "httpx",
    "httpcore",
    "hpack",
    "h2",
    "urllib3",
    "requests",
    "socksio",
    "cryptography",
    "jwt",
)


class ScrubbingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes scrubbed records to stderr when debug output is on; swallows them otherwise."""

    def __init__(self, *, enabled: bool, stream: TextIO | None = None) -> None:
        super().__init__(stream if stream is not None else sys.stderr)
        self.enabled = enabled
        self.follow_stderr = stream is None  # tests and runners swap sys.stderr
        self.setFormatter(logging.Formatter("debug: %(name)s: %(levelname)s: %(message)s"))

    def format(self, record: logging.LogRecord) -> str:
        # The formatted text includes the traceback, which may quote a response body too.
        return scrub(super().format(record))

    def emit(self, record: logging.LogRecord) -> None:
        # Debug output is a property of the run (--debug sets CREDLYCTL_DEBUG): checked here
        # too, so a process that ran one debug command does not stay verbose (tests, demo).
        if not (self.enabled and debug_requested()):
            return
        if self.follow_stderr:
            self.stream = sys.stderr
        super().emit(record)

    def flush(self) -> None:
        # A stream closed under us (a finished test's capture) is nothing to report.
        with contextlib.suppress(ValueError, OSError):
            super().flush()

    def handleError(self, record: logging.LogRecord) -> None:
        # logging's own error report prints the record's arguments: never let it.
        return


_HANDLER: ScrubbingHandler | None = None


def configure_library_logging(*, debug: bool, stream: TextIO | None = None) -> ScrubbingHandler:
    """Route the libraries' loggers to one scrubbing handler (idempotent; the last call wins)."""
    global _HANDLER
    if _HANDLER is None:
        _HANDLER = ScrubbingHandler(enabled=debug, stream=stream)
    else:
        _HANDLER.enabled = debug
        if stream is not None:
            _HANDLER.stream = stream  # not setStream: it flushes the old one, maybe closed
        _HANDLER.follow_stderr = stream is None
    for name in ("", *THIRD_PARTY_LOGGERS):  # "" is the root: any other library ends there
        logger = logging.getLogger(name)
        if _HANDLER not in logger.handlers:
            logger.addHandler(_HANDLER)
        if name:
            logger.propagate = False  # one handler, one line per record
            # msal's debug lines say which credential and endpoint it chose; the transport
            # libraries' debug lines are connection chatter.
            verbose = logging.DEBUG if name == "msal" else logging.INFO
            logger.setLevel(verbose if debug else logging.WARNING)
    return _HANDLER


def debug_requested() -> bool:
    return os.environ.get("CREDLYCTL_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}


def ensure_library_logging() -> None:
    """Apply the policy if nothing did yet (library use without the CLI, e.g. tests, demo)."""
    if _HANDLER is None:
        configure_library_logging(debug=debug_requested())
