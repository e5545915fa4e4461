"""Where a restarted recorder resumes: the ``seq`` after the last frame of the set.

The seekable file source already knows how to open any state a set can be left in (a
footer, a crash-cut file found by its markers, a damaged or foreign file by one scan), so
this reads the newest frame through it rather than parsing files a second way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from allsmi.adapters import wire
from allsmi.adapters.recording.source import RecordingSource
from allsmi.domain.errors import AllsmiError

LOOK_BACK: Final = 1000  # frames without a seq (all-smi's) tolerated at the end of the set


def last_seq_of_set(active: Path) -> int:
    """The newest ``seq`` in the set named ``active`` (−1 when there is none to continue)."""
    try:
        source = RecordingSource(active, cache_bytes=1 << 20)
    except AllsmiError:
        return -1  # nothing there, or nothing readable: the restart rotates it aside
    last = source.frame_count - 1
    for index in range(last, max(-1, last - LOOK_BACK), -1):
        info = wire.slice_line(source.raw(index))
        if info is not None and info.seq is not None:
            return info.seq
    return -1
