"""The few errors allsmi raises, each named at the boundary it belongs to
(docs/architecture.md §4.5).

The CLI maps every one of them to a single line on stderr and the exit status it carries:
2 for usage errors, unsupported schemas and unreadable input; 1 for runtime failures.
"""

from __future__ import annotations


class AllsmiError(Exception):
    """Base of every error allsmi reports to a user; ``exit_code`` is the process status."""

    exit_code: int = 1


class UsageError(AllsmiError):
    """A bad flag value, a malformed timecode, a missing terminal: the user can fix it."""

    exit_code = 2


class SourceUnavailable(AllsmiError):
    """A collection source (NVML, psutil, a remote host) cannot deliver what was asked."""

    exit_code = 1


class RecordingCorrupt(AllsmiError):
    """A line of a recording could not be read; names the line and the reason."""

    exit_code = 1

    def __init__(self, line_no: int, reason: str) -> None:
        self.line_no = line_no
        self.reason = reason
        super().__init__(f"line {line_no}: {reason}")


class UnsupportedSchema(AllsmiError):
    """The recording's first schema-bearing line is not schema 1."""

    exit_code = 2

    def __init__(self, version: object) -> None:
        self.version = version
        super().__init__(f"unsupported schema version {version}, this allsmi supports schema 1")


class RecordingUnreadable(AllsmiError):
    """The recording cannot be opened at all: missing, empty, not a recording."""

    exit_code = 2


class SinkFailed(AllsmiError):
    """Writing the recording failed (disk full, unwritable directory, symlink refused)."""

    exit_code = 1
