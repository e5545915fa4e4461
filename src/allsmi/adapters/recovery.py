"""Sequential decoding of a stored recording file, whatever its codec and condition.

Used where a whole file is read front to back: finding where a restarted recorder resumes
``seq``, and the tests that check what the sink wrote. The codec comes from the magic bytes,
never the name. A truncated compressed tail (a crash, or a file still being written) ends
the stream quietly after the last complete line; a torn last line is dropped; a line over
16 MiB is skipped whole rather than buffered.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from allsmi.adapters import codec, seektable
from allsmi.adapters.decoding import iter_file_lines
from allsmi.adapters.filesource import discover
from allsmi.domain.errors import RecordingUnreadable


def iter_lines(path: Path) -> Iterator[bytes]:
    """Every complete line of ``path`` (without ``\\n``), decoded; torn tail dropped."""
    return iter_file_lines(path)


def last_seq_in_file(path: Path) -> int | None:
    """The highest data-frame ``seq`` in one file; the footer answers in O(1) if present."""
    with contextlib.suppress(OSError), open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size >= seektable.TRAILER_SIZE:
            fh.seek(size - seektable.TRAILER_SIZE)
            table_at = seektable.decode_trailer(fh.read(seektable.TRAILER_SIZE))
            table = _table_at(fh, table_at, size) if table_at is not None else None
            if table is not None:
                return table.last_seq
    best: int | None = None
    for raw in iter_lines(path):
        info = codec.slice_line(raw)
        if info is not None and info.kind == codec.KIND_DATA and info.seq is not None:
            best = info.seq if best is None else max(best, info.seq)
    return best


def _table_at(fh: BinaryIO, offset: int, size: int) -> seektable.Table | None:
    if not 0 <= offset < size - seektable.TRAILER_SIZE:
        return None
    fh.seek(offset)
    head = seektable.read_head(fh.read(8))
    if head is None or head[0] != seektable.TABLE_MAGIC or head[1] > seektable.MAX_TABLE_PAYLOAD:
        return None
    return seektable.decode_table(fh.read(head[1]))


def set_files(active: Path) -> list[Path]:
    """The files of the rotated set named ``active``, oldest first, the active one last."""
    try:
        return discover(active)
    except RecordingUnreadable:
        return []


def last_seq_of_set(active: Path) -> int:
    """Where a restarted recorder resumes: the newest file's highest ``seq`` (−1 if none)."""
    for path in reversed(set_files(active)):
        seq = last_seq_in_file(path)
        if seq is not None:
            return seq
    return -1
