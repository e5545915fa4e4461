"""Which files make up a recording, oldest first (docs/recording-format.md §8.1).

A recording is named by its active file: ``trace.ndjson.zst`` stands for its rotated segments
``trace.0001.ndjson.zst``, ``trace.0002.ndjson.zst`` … (higher is newer) and then itself. Only
regular files are ever opened: a FIFO or a device would never end (or never begin).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from allsmi.adapters.recording.files import require_regular_file
from allsmi.domain.errors import RecordingUnreadable
from allsmi.domain.segments import numbered_segments, segment_number


def discover(path: Path) -> list[Path]:
    """The files of the recording named ``path``, oldest first.

    ``PATH``'s numbered segments, then ``PATH`` itself (also when it is missing). A numbered
    segment given directly is read alone — unless it has numbered segments of its own, as
    ``run.2026.ndjson`` (rotating to ``run.0001.2026.ndjson``) does.
    """
    parent = path.parent
    if path.is_dir():
        raise RecordingUnreadable(f"{path} is a directory, not a recording")
    try:
        names = os.listdir(parent)
    except OSError as err:
        raise RecordingUnreadable(f"cannot read {parent}: {err.strerror}") from None
    own = numbered_segments(path.name, names)
    if not own and segment_number_of(path) is not None:
        if not path.exists():
            raise RecordingUnreadable(f"no such recording: {path}")
        require_regular_file(path, "recording")
        return [path]
    files = [parent / name for _, name in own]
    if path.exists():
        files.append(path)
    if not files:
        raise RecordingUnreadable(f"no such recording: {path}")
    for file in files:
        require_regular_file(file, "recording")
    return files


def segment_number_of(path: Path) -> int | None:
    """If ``path`` looks like ``name.NNNN.ext`` of an existing set, its number."""
    parts = path.name.split(".")
    for i in range(1, len(parts)):
        if len(parts[i]) >= 4 and parts[i].isdigit():
            active = ".".join(parts[:i] + parts[i + 1 :])
            if segment_number(active, path.name) is not None:
                return int(parts[i])
    return None


def open_segment(path: Path) -> BinaryIO:
    """A segment of a recording already opened once. One that vanished under a reader (a
    running recorder evicted it) is one clear error, not a traceback."""
    try:
        return open(path, "rb")
    except OSError as err:
        raise RecordingUnreadable(
            f"{path.name} is gone ({err.strerror}): evicted by a running recorder? "
            "replay a growing recording with --follow"
        ) from None
