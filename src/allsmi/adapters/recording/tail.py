"""The time of a segment's last frame, read from its tail alone (docs/architecture.md §3.1).

Replay opens a recording with no seek table at once and indexes it behind; its duration is
known at once wherever the file's tail can be read directly, so the status shows the whole
length from the start instead of one that grows with the index.

Rules this module obeys:
- The time is that of the *last complete data line*, as the reader computes it (the bulk
  scan's line time: ours by fixed offsets, anything else sliced). A torn last line (no
  ``\\n``), header, index, empty and corrupt lines, and lines over
  :data:`~allsmi.adapters.recording.decoding.MAX_LINE` are passed over, as the reader
  passes over them.
- Plain files are read backwards in blocks of :data:`BLOCK`, at most :data:`PLAIN_LIMIT`
  bytes in all.
- gzip: allsmi's sink writes one member per chunk, so the last member begins near the end.
  Candidate member starts (``1f 8b 08``) are tried from the end backwards, within the last
  :data:`GZIP_SEARCH` stored bytes; one is taken only when what follows it decodes to the
  very end of the file as complete members (each one's CRC and length checked by zlib). A
  member at the file's first byte is never read here: that is the whole file (one member,
  the ``gzip`` tool's and all-smi's, or one of our chunks alone), which the index decodes
  anyway. So a file whose last member is unfinished (a crash, a recorder still writing),
  that ends in bytes that are no member, or whose last member begins at its first byte or
  more than :data:`GZIP_SEARCH` before its end has no tail to read: None. At most
  :data:`GZIP_OUTPUT` bytes are decompressed in all (a member that inflates past it is not
  read: None).
- zstd: None (such a file has a footer or markers, docs/recording-format.md §7).
- Never raises: an unreadable file, or one that does not decode, is None.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import BinaryIO, Final

from allsmi.adapters.recording.bulk import _data_time
from allsmi.adapters.recording.decoding import GZIP_MEMBER, MAX_LINE

BLOCK: Final = 64 * 1024  # stored bytes read at once, backwards
PLAIN_LIMIT: Final = 2 * MAX_LINE  # stored bytes of a plain file read at most
GZIP_SEARCH: Final = 16 * 1024 * 1024  # stored bytes searched for the last member's start
GZIP_OUTPUT: Final = 64 * 1024 * 1024  # bytes decompressed at most, every candidate together


def tail_time(path: Path, codec: str) -> int | None:
    """The time (ms) of the last complete data line of the segment at ``path`` (codec
    ``codec``: ``none``, ``gzip`` or ``zstd``), read from its tail; None where the tail
    does not tell it (see the module's rules)."""
    try:
        with open(path, "rb") as fh:
            return tail_time_of(fh, codec)
    except OSError:
        return None


def tail_time_of(fh: BinaryIO, codec: str) -> int | None:
    """:func:`tail_time` of a segment already open (seekable, read from its end)."""
    try:
        if codec == "none":
            return _plain(fh)
        if codec == "gzip":
            return _gzip(fh)
    except (OSError, ValueError):
        return None
    return None


# --------------------------------------------------------------------------- plain


def _plain(fh: BinaryIO) -> int | None:
    """Complete lines from the end backwards, the first data line's time."""
    pos = fh.seek(0, os.SEEK_END)
    parts: list[bytes] = []  # of the line being gathered, its later pieces first
    gathered = 0  # their bytes (past MAX_LINE: the line is skipped, as the reader does)
    seen = False  # a newline was met: the bytes after the last one are a torn tail
    read = 0
    while pos > 0 and read < PLAIN_LIMIT:
        size = min(BLOCK, pos)
        pos -= size
        fh.seek(pos)
        block = fh.read(size)
        if len(block) != size:
            return None  # the file shrank under us
        read += size
        stop = len(block)
        while (nl := block.rfind(b"\n", 0, stop)) >= 0:
            if seen:
                t_ms = _line_time(block[nl + 1 : stop], parts, gathered)
                if t_ms is not None:
                    return t_ms
            seen, parts, gathered = True, [], 0
            stop = nl
        if seen:
            gathered += stop
            if gathered <= MAX_LINE + 1:  # the line's "\r" may ride past MAX_LINE
                parts.append(block[:stop])
    if pos == 0 and seen:  # the file's first line
        return _line_time(b"", parts, gathered)
    return None


def _line_time(head: bytes, parts: list[bytes], gathered: int) -> int | None:
    """The time of the line ``head`` + ``parts`` (later pieces first) if it is a data line."""
    if len(head) + gathered > MAX_LINE + 1:
        return None
    return _data_time(head + b"".join(reversed(parts)))


# --------------------------------------------------------------------------- gzip


def _gzip(fh: BinaryIO) -> int | None:
    """The last data line of the complete members that end the file."""
    size = fh.seek(0, os.SEEK_END)
    floor = max(0, size - GZIP_SEARCH)
    budget = [GZIP_OUTPUT]  # decompressed bytes left, for every candidate together
    tail = b""  # stored bytes from ``pos`` to where the members still to be read end
    pos = size
    while pos > floor:
        start = max(floor, pos - max(BLOCK, len(tail)))  # doubling: linear copying in all
        fh.seek(start)
        block = fh.read(pos - start)
        if len(block) != pos - start:
            return None
        tail = block + tail
        pos = start
        view = memoryview(tail)
        # this block's candidates, one that spans its border with the last included
        at = tail.rfind(GZIP_MEMBER, 0, len(block) + len(GZIP_MEMBER) - 1)
        while at >= 0 and pos + at > 0:  # a member at the first byte: the whole file
            out = _members(view[at:], budget)
            if out is None and budget[0] <= 0:
                return None
            if out is not None:
                t_ms = _last_data_time(out)
                if t_ms is not None:
                    return t_ms
                view.release()  # members with no data line: the ones before them, then
                tail = tail[:at]
                view = memoryview(tail)
            at = tail.rfind(GZIP_MEMBER, 0, at)
        view.release()
    return None


def _members(data: memoryview, budget: list[int]) -> bytes | None:
    """The decompressed bytes of ``data`` if it is complete gzip members, end to end;
    None otherwise (or once ``budget`` is spent: it is then 0)."""
    out: list[bytes] = []
    rest: bytes | memoryview = data
    while rest:
        if budget[0] <= 0:  # (a max_length of 0 would mean no limit)
            return None
        dobj = zlib.decompressobj(wbits=31)
        try:
            piece = dobj.decompress(rest, budget[0])
        except zlib.error:
            return None
        budget[0] -= len(piece)
        if not dobj.eof:
            if dobj.unconsumed_tail:
                budget[0] = 0  # inflates past the budget: not read
            return None  # unfinished (a crash, still written) or cut
        out.append(piece)
        rest = dobj.unused_data
    return b"".join(out)


def _last_data_time(out: bytes) -> int | None:
    """The time of the last complete data line of decoded ``out``."""
    stop = out.rfind(b"\n")
    while stop >= 0:
        nl = out.rfind(b"\n", 0, stop)
        if stop - nl - 1 <= MAX_LINE + 1:
            t_ms = _data_time(out[nl + 1 : stop])
            if t_ms is not None:
                return t_ms
        stop = nl
    return None


__all__ = ["tail_time", "tail_time_of"]
