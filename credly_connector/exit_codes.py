"""The one exit-code contract every command follows (documented in README.md).

When several apply, the highest in PRECEDENCE wins: a bug beats a usage error, a usage
error beats a remote failure, and a remote failure beats findings.
"""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    PROBLEMS = 1  # the command ran and found problems (failed checks, item errors)
    USAGE = 2  # the command could not run: bad usage or configuration
    REMOTE = 3  # a remote service or the network failed; worth retrying
    INTERNAL = 4  # a bug in credlyctl


PRECEDENCE: tuple[ExitCode, ...] = (
    ExitCode.INTERNAL,
    ExitCode.USAGE,
    ExitCode.REMOTE,
    ExitCode.PROBLEMS,
    ExitCode.OK,
)


def combine(*codes: ExitCode) -> ExitCode:
    """The code to exit with when several outcomes apply at once."""
    for code in PRECEDENCE:
        if code in codes:
            return code
    return ExitCode.OK
