from __future__ import annotations

from credly_connector.exit_codes import ExitCode, combine


def test_precedence_internal_over_usage_over_remote_over_problems() -> None:
    assert combine() == ExitCode.OK
    assert combine(ExitCode.OK, ExitCode.PROBLEMS) == ExitCode.PROBLEMS
    assert combine(ExitCode.PROBLEMS, ExitCode.REMOTE) == ExitCode.REMOTE
    assert combine(ExitCode.REMOTE, ExitCode.USAGE) == ExitCode.USAGE
    assert combine(ExitCode.USAGE, ExitCode.INTERNAL, ExitCode.OK) == ExitCode.INTERNAL


def test_codes_are_the_documented_numbers() -> None:
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 4]
