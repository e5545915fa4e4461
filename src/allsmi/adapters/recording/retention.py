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
- Never raises: a segment that cannot even be stat'ed (deleted meanwhile) is None.
"""

from __future__ import annotations

import os
from pathlib import Path

from allsmi.adapters.recording.decoding import sniff
from allsmi.adapters.recording.index import footer_table
from allsmi.adapters.recording.tail import tail_time


def segment_end_ms(path: Path) -> int | None:
    """The time (ms) of the last frame of the segment at ``path`` (module rules)."""
    try:
        with open(path, "rb") as fh:
            codec = sniff(fh.read(8))
            if codec == "zstd":
                found = footer_table(fh, os.fstat(fh.fileno()).st_size)
                if found is not None:
                    return found[0].last_t_ms
            else:
                end = tail_time(path, codec)
                if end is not None:
                    return end
            return os.fstat(fh.fileno()).st_mtime_ns // 1_000_000
    except OSError:
        return None
