"""Error classes and the exit codes (the table in README.md).

Every error a user can cause is a `TfrunError`; `cli.main` is the one place that turns it
into a paragraph on stderr and an exit code.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    STACK_FAILED = 1
    CHANGES_PRESENT = 2
    REFUSED = 3
    BAD_CONFIG = 4
    INTERRUPTED = 130


class TfrunError(Exception):
    """A problem the user can fix; the message is shown as it is."""

    exit_code: ExitCode = ExitCode.BAD_CONFIG


class ConfigError(TfrunError):
    """A config file, stack layout or generated file is wrong."""


class UsageError(TfrunError):
    """The command line is wrong."""


class RefusedError(TfrunError):
    """A safety rule refused the command before anything ran."""

    exit_code = ExitCode.REFUSED


class ToolMissingError(TfrunError):
    """An executable tfrun needs (terraform, moto) is not installed."""

    exit_code = ExitCode.STACK_FAILED


class ServiceError(TfrunError):
    """A service tfrun talks to (GitLab's or GitHub's API) failed or could not be reached:
    trying again later may work, unlike a ConfigError."""

    exit_code = ExitCode.STACK_FAILED
