"""Retention by age: when a rotated segment's last frame was recorded
(docs/recording-format.md §8.4).

``record --max-age`` deletes a rotated segment once its last frame is older than the age,
judged by the time of the frame being written (:class:`~allsmi.adapters.recording.sink.
RecordingSink`). The sink knows the end of every segment it rotated itself; a segment left
by an earlier run is read here, once.

Rules this module obeys:
- A zstd segment's end is its footer's ``last_t_ms`` (docs/recording-format.md §7.4); a
  gzip or plain one's the time of its last complete data line, read from its tail
  (:func:`~allsmi.adapters.recording.tail.tail_time`). Neither reads the segment through.
- A segment whose end its bytes do not tell (cut by a crash before its footer, a gzip member
  left unfinished, not a recording at all) is judged by its modification time: the file was
  last written when its last frame was, so the age is never underestimated by more than the
  flush delay (a second).
- Only a regular file is judged: it is opened without following a symlink and without
  waiting (``O_NOFOLLOW | O_NONBLOCK``), then checked; a FIFO, device or socket named like a
  segment is None — never waited on (a recorder must not hang on it), never deleted by age.
- Never raises: a segment that cannot be opened (deleted meanwhile, unreadable) is None.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from allsmi.adapters.recording.decoding import sniff
from allsmi.adapters.recording.files import open_for_reading
from allsmi.adapters.recording.index import footer_table
from allsmi.adapters.recording.tail import tail_time_of


def segment_end_ms(path: Path) -> int | None:
    """The time (ms) of the last frame of the segment at ``path`` (module rules); None for
    what is no regular file (a FIFO, a device: never waited on, never judged, never deleted
    by age), a symlink, or a file that cannot be opened."""
    fd = open_for_reading(path)
    if fd is None:
        return None
    with os.fdopen(fd, "rb") as fh:
        try:
            info = os.fstat(fd)
        except OSError:
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        try:
            codec = sniff(fh.read(8))
            if codec == "zstd":
                found = footer_table(fh, info.st_size)
                if found is not None:
                    return found[0].last_t_ms
            else:
                end = tail_time_of(fh, codec)
                if end is not None:
                    return end
        except OSError:
            pass
        return info.st_mtime_ns // 1_000_000
