"""Decoding stored recording bytes into lines, from any decodable starting point.

A *start* is where decoding can begin without reading what precedes it: byte offset 0, a
zstd frame or gzip member boundary (our chunks), a zlib checkpoint inside a gzip member
(``Decompress.copy()``), or any line of a plain file; plus how many decoded bytes to skip
to reach the first wanted line. Everything that reads a recording goes through here.

Limits against hostile files, enforced while reading (DESIGN.md §4): a line is at most
16 MiB decompressed (a longer one is skipped whole, never buffered), the zstd window is
at most 128 MiB, and decompression output is produced in bounded pieces, so a zstd or gzip
bomb costs time, not memory. A truncated compressed tail ends the stream quietly after the
last complete line; a torn last line (no ``\\n``) is reported, never returned.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO, Final, NamedTuple

import attrs
import zstandard

from allsmi.adapters import seektable

GZIP_MAGIC: Final = b"\x1f\x8b"
MAX_LINE: Final = 16 * 1024 * 1024
MAX_WINDOW: Final = 128 * 1024 * 1024
READ_SIZE: Final = 256 * 1024
OUT_SIZE: Final = 1024 * 1024  # most decoded bytes produced per step
CHECKPOINT_EVERY: Final = 16 * 1024 * 1024  # compressed bytes between gzip checkpoints


def sniff(head: bytes) -> str:
    """``zstd``, ``gzip`` or ``none`` from a file's first bytes (never from its name)."""
    if head.startswith(seektable.ZSTD_MAGIC) or seektable.read_head(head) is not None:
        return "zstd"
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    return "none"


@attrs.frozen(eq=False)
class Start:
    """A point decoding can begin at: stored ``offset``, optional zlib state, bytes to skip."""

    offset: int
    zlib_state: Any = None  # a zlib Decompress copy taken mid-member, or None
    skip: int = 0  # decoded bytes to discard before the first wanted line

    def skipping(self, extra: int) -> Start:
        return attrs.evolve(self, skip=self.skip + extra)


class Decoded(NamedTuple):
    """One block of decoded bytes; ``restart``, when set, is a start right after them."""

    data: bytes
    restart: Start | None


@attrs.define
class LineStats:
    """What line splitting noticed: oversized lines skipped, a torn tail, a damaged stream."""

    oversized: int = 0
    torn_tail: bool = False
    damaged: bool = False


# --------------------------------------------------------------------------- raw decoding


def decode_blocks(fh: BinaryIO, codec: str, start: Start, stats: LineStats) -> Iterator[bytes]:
    """Decoded bytes from ``start`` to the end of the file (or of what decodes)."""
    for block in decode_with_restarts(fh, codec, start, stats, restarts=False):
        yield block.data


def decode_with_restarts(
    fh: BinaryIO, codec: str, start: Start, stats: LineStats, *, restarts: bool = True
) -> Iterator[Decoded]:
    """Like :func:`decode_blocks`, announcing the starts met on the way (for one scan)."""
    fh.seek(start.offset)
    if codec == "zstd":
        blocks = _zstd(fh, stats)
    elif codec == "gzip":
        blocks = _gzip(fh, start, stats, restarts)
    else:
        blocks = _plain(fh)
    skip = start.skip
    for block in blocks:
        if skip:
            cut = min(skip, len(block.data))
            skip -= cut
            block = Decoded(block.data[cut:], block.restart)
        if block.data or block.restart:
            yield block


def _plain(fh: BinaryIO) -> Iterator[Decoded]:
    while data := fh.read(READ_SIZE):
        yield Decoded(data, None)


def _zstd(fh: BinaryIO, stats: LineStats) -> Iterator[Decoded]:
    dctx = zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW)
    reader = dctx.stream_reader(fh, read_size=READ_SIZE, read_across_frames=True, closefd=False)
    while True:
        try:
            data = reader.read(OUT_SIZE)
        except zstandard.ZstdError:
            stats.damaged = True
            return
        if not data:
            return
        yield Decoded(data, None)


def _gzip(fh: BinaryIO, start: Start, stats: LineStats, restarts: bool) -> Iterator[Decoded]:
    """Multi-member gzip with bounded output; checkpoints every ~16 MiB of input."""
    dobj = start.zlib_state.copy() if start.zlib_state is not None else zlib.decompressobj(31)
    at = start.offset  # stored offset of the next byte fed to dobj
    since_checkpoint = 0
    pending = b""
    while True:
        if not pending:
            pending = fh.read(READ_SIZE)
            if not pending:
                return  # a member cut short ends here with what it produced
        try:
            out = dobj.decompress(pending, OUT_SIZE)
        except zlib.error:
            stats.damaged = True
            return
        used = len(pending) - len(dobj.unconsumed_tail) - len(dobj.unused_data)
        at += used
        since_checkpoint += used
        pending = dobj.unconsumed_tail or dobj.unused_data
        restart = None
        if dobj.eof:
            if pending and not pending.startswith(GZIP_MAGIC[:1]):
                stats.damaged = True  # trailing garbage after a member
                yield Decoded(out, None)
                return
            dobj = zlib.decompressobj(31)
            restart = Start(at) if restarts else None
            since_checkpoint = 0
        elif restarts and since_checkpoint >= CHECKPOINT_EVERY and not dobj.unconsumed_tail:
            restart = Start(at, zlib_state=dobj.copy())
            since_checkpoint = 0
        yield Decoded(out, restart)


# --------------------------------------------------------------------------- lines


class Line(NamedTuple):
    raw: bytes
    position: int  # decoded offset of the line's first byte, counted from the start
    restart: Start | None  # the last start at or before this line (scan mode only)
    restart_position: int  # decoded offset of that start


def split_lines(blocks: Iterator[Decoded], stats: LineStats, first: Start) -> Iterator[Line]:
    """Complete lines (without ``\\n``, ``\\r`` stripped) with where they begin, and the
    last start at or before each: a start may fall mid-line (a zlib checkpoint), so a line
    carries the start that was in effect when its first byte was decoded."""
    pending = bytearray()
    pending_at = 0
    pending_from: tuple[Start, int] = (first, 0)
    position = 0  # decoded offset of the next byte
    current: tuple[Start, int] = (first, 0)  # the latest start and its decoded offset
    oversized = False
    for data, new_restart in blocks:
        begin = 0
        while True:
            nl = data.find(b"\n", begin)
            if nl < 0:
                if not oversized:
                    if not pending:
                        pending_at, pending_from = position + begin, current
                    pending += data[begin:]
                    if len(pending) > MAX_LINE:
                        pending.clear()
                        oversized = True
                        stats.oversized += 1
                break
            if oversized:
                oversized = False
            else:
                if pending:
                    pending += data[begin:nl]
                    raw, at, origin = bytes(pending), pending_at, pending_from
                    pending.clear()
                else:
                    raw, at, origin = data[begin:nl], position + begin, current
                if raw.endswith(b"\r"):
                    raw = raw[:-1]
                if len(raw) > MAX_LINE:  # the same cap as fast_lines, or scan and seek disagree
                    stats.oversized += 1
                else:
                    yield Line(raw, at, origin[0], origin[1])
            begin = nl + 1
        position += len(data)
        if new_restart is not None:
            current = (new_restart, position)  # decoding can begin right here
    if pending or oversized:
        stats.torn_tail = True


def fast_lines(blocks: Iterator[bytes], stats: LineStats) -> Iterator[bytes]:
    """Complete lines of decoded blocks, split in C (``bytes.split``): the seek path, which
    needs no positions. Same rules as :func:`split_lines`: 16 MiB cap, torn tail noted."""
    pending = b""
    skipping = False  # inside a line over the cap: drop it up to its newline
    for data in blocks:
        parts = data.split(b"\n")
        tail = parts.pop()
        if parts:
            first = pending + parts[0]
            parts[0] = b"" if skipping else first
            skipping = False
            pending = tail
        else:
            pending = b"" if skipping else pending + tail
        if len(pending) > MAX_LINE:
            pending, skipping = b"", True
            stats.oversized += 1
        for line in parts:
            if not line or len(line) > MAX_LINE:
                stats.oversized += len(line) > MAX_LINE
                continue
            yield line[:-1] if line[-1] == 13 else line
    if pending or skipping:
        stats.torn_tail = True


def iter_file_lines(
    path: os.PathLike[str] | str, stats: LineStats | None = None
) -> Iterator[bytes]:
    """Every complete line of a whole stored file, decoded; the simple front-to-back read."""
    stats = stats or LineStats()
    with open(path, "rb") as fh:
        codec = sniff(fh.read(8))
        start = Start(0)
        for line in split_lines(
            decode_with_restarts(fh, codec, start, stats, restarts=False), stats, start
        ):
            yield line.raw
