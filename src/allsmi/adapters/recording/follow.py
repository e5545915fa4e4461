"""Following a recording while it is written (DESIGN.md §5, ``--follow``).

:class:`FollowingSource` is the seekable file source plus a *tail*: the reader's own bounded
decoder (:class:`~allsmi.adapters.recording.decoding.StreamDecoder`) kept at the end of the active
file, so each poll decodes only the bytes added since the last one — no rescans. A poll
stats the active path: the same inode with more bytes means new lines; another inode means
the recorder rotated, so the old file (still open, now a numbered segment) is drained to its
end and the new active file is followed from its start. Numbered segments that disappear
were evicted: their frames leave the timeline and its start moves. An incomplete last line
is pending, not damage.

Bounds, whatever is appended (the reader's limits, applied as bytes arrive): a poll reads at
most 4 MiB of stored bytes and decodes at most 32 MiB (a zstd bomb is worked through over
many polls, the keys answered in between); a skippable frame is counted past, never held; a
line over 16 MiB is dropped as it grows; the growing chunk holds at most 1000 lines or
8 MiB (plus one line) before the next begins. Junk is skipped to the next frame, member or
line and said on the message line; a file truncated under the tail is said, and followed
from its new end; a file replaced by another is said, and the new one followed.
"""

from __future__ import annotations

import contextlib
import os
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Final

import attrs

from allsmi.adapters import wire
from allsmi.adapters.recording.decoding import (
    MAX_LINE,
    READ_SIZE,
    LineStats,
    Start,
    StreamDecoder,
    sniff,
    start_at,
)
from allsmi.adapters.recording.source import CHUNK_FRAMES, Chunk, RecordingSource, SegmentInfo
from allsmi.domain.errors import RecordingUnreadable
from allsmi.domain.segments import numbered_segments

READ_LIMIT: Final = 4 * 1024 * 1024  # stored bytes read per poll at most
DECODE_LIMIT: Final = 32 * 1024 * 1024  # decoded bytes per poll at most (a bomb waits)
TAIL_CHUNK_BYTES: Final = 8 * 1024 * 1024  # lines of the growing chunk held in memory


@attrs.frozen
class FollowUpdate:
    added: int = 0  # frames appended at the end
    dropped: int = 0  # frames evicted from the start
    rotated: bool = False
    rebuilt: bool = False  # frames left elsewhere (a truncation, a rescan): count anew


class LineCutter:
    """Complete lines out of decoded pieces as they come, each with the decoded offset it
    begins at; the same 16 MiB cap as the reader: a longer line is dropped whole and never
    held past the cap. An incomplete last line is pending, not damage."""

    def __init__(self, stats: LineStats) -> None:
        self.stats = stats
        self.at = 0  # decoded offset of the next byte
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._pending_at = 0
        self._oversized = False

    def push(self, data: bytes) -> list[tuple[int, bytes]]:
        lines = []
        begin = 0
        while (nl := data.find(b"\n", begin)) >= 0:
            if self._oversized:
                self._oversized = False
            elif self._pending_size + nl - begin > MAX_LINE:
                self.stats.oversized += 1
            else:
                at = self._pending_at if self._pending else self.at + begin
                raw = b"".join([*self._pending, data[begin:nl]])
                raw = raw[:-1] if raw.endswith(b"\r") else raw
                if raw:  # an empty line is no line (as in the reader)
                    lines.append((at, raw))
            self._pending, self._pending_size = [], 0
            begin = nl + 1
        if begin < len(data) and not self._oversized:
            if not self._pending:
                self._pending_at = self.at + begin
            self._pending.append(data[begin:])
            self._pending_size += len(data) - begin
            if self._pending_size > MAX_LINE:
                self._pending, self._pending_size, self._oversized = [], 0, True
                self.stats.oversized += 1
        self.at += len(data)
        return lines


class TailDecoder:
    """Incremental decoding of one growing file from a start: stored bytes in, complete
    lines out, through the reader's bounded decoder, with the start each line can be
    decoded from again (the latest frame, member or checkpoint at or before its first
    byte — a line may span several)."""

    def __init__(self, path: Path, codec_name: str, start: Start, stats: LineStats) -> None:
        self.fh: BinaryIO = open(path, "rb")  # noqa: SIM115 - kept open across polls
        self.inode = os.fstat(self.fh.fileno()).st_ino
        self.codec = codec_name
        self.stats = stats
        self.exhausted = False  # the last read reached the end of what the file holds
        self._begin(start, lost=False)

    def _begin(self, start: Start, *, lost: bool) -> None:
        self.fh.seek(start.offset)
        self._decoder = StreamDecoder(self.codec, start, self.stats, restarts=True, lost=lost)
        self._cutter = LineCutter(self.stats)
        self._starts = [(attrs.evolve(start, skip=0), 0)]  # (start, its decoded offset)
        self._skip = start.skip

    def close(self) -> None:
        self.fh.close()

    def at_end(self) -> bool:
        return self.exhausted

    def check_truncated(self) -> int | None:
        """If the file is now shorter than what was read, its new size, and decoding goes
        on from there: from the first unit found at or after it (a line right after a
        newline, for plain files). Else None."""
        size = os.fstat(self.fh.fileno()).st_size
        if size >= self.fh.tell():
            return None
        at_boundary = size == 0
        if self.codec == "none" and size:
            self.fh.seek(size - 1)
            at_boundary = self.fh.read(1) == b"\n"
        self._begin(Start(size), lost=not at_boundary)
        return size

    def read_lines(self) -> list[tuple[Start, bytes]]:
        """New complete lines since the previous call, each with the start it can be
        decoded from; at most ``READ_LIMIT`` stored and ``DECODE_LIMIT`` decoded bytes."""
        lines: list[tuple[Start, bytes]] = []
        stored = decoded = 0
        self.exhausted = False
        while decoded < DECODE_LIMIT:
            block = self._decoder.read()
            if block is None:
                if stored >= READ_LIMIT:
                    return lines
                data = self.fh.read(READ_SIZE)
                if not data:
                    self.exhausted = True
                    return lines
                stored += len(data)
                self._decoder.feed(data)
                continue
            decoded += len(block.data)
            for at, raw in self._cutter.push(block.data):
                if at >= self._skip:
                    lines.append((self._start_of(at), raw))
            if block.restart is not None:
                self._starts.append((block.restart, self._cutter.at))
        return lines

    def _start_of(self, at: int) -> Start:
        """The start for a line beginning at decoded offset ``at``: the latest one at or
        before it (lines come in order, so older starts are dropped as they pass)."""
        while len(self._starts) > 1 and self._starts[1][1] <= at:
            del self._starts[0]
        restart, restart_at = self._starts[0]
        return start_at(self.codec, restart, restart_at, at)


class FollowingSource(RecordingSource):
    """A recording that may still be growing: ``poll()`` brings in what was added."""

    def __init__(self, path: Path, **kw: Any) -> None:
        self._tail: TailDecoder | None = None
        self._tail_chunk: Chunk | None = None
        self._tail_lines: list[bytes] = []
        self._gone: set[int] = set()
        self._vanished: set[int] = set()  # rotated and deleted before we found its new name
        self._tail_bytes = 0  # bytes of the growing chunk's lines
        self._replaced = False  # the active file was replaced, the old one is nowhere
        self._told_oversized = 0  # lines over 16 MiB the tail found and we said so
        self._pinned: dict[Chunk, list[bytes]] = {}  # lines whose bytes are gone
        self._last_number: int | None = None  # the newest numbered segment in the timeline
        super().__init__(path, **kw)
        self._attach()

    # ----------------------------------------------------------------- attaching

    def _attach(self) -> None:
        """Put the tail at the end of the active file's last chunk (what is known so far)."""
        active = self.segments[-1] if self.segments else None
        if active is None or active.path != self.path:
            return
        seg_index = len(self.segments) - 1
        ats = [i for i, c in enumerate(self.chunks) if c.segment == seg_index]
        if not ats:  # the active file holds no frame yet: follow it from its start
            self._open_tail(active)
            return
        last = ats[-1]
        lines = list(self._lines(last))
        chunk = self.chunks[last]
        self._tail = TailDecoder(active.path, active.codec, chunk.start, LineStats())
        self._told_oversized = 0
        self._tail_chunk, self._tail_lines = chunk, lines
        self._tail_bytes = sum(map(len, lines))
        self._forget_lines([chunk])  # its lines live with the tail from now on
        known, seen = len(lines), 0  # (lines grows as the tail adds to it)

        def skip_known(start: Start, raw: bytes) -> None:
            """The chunk's lines known already are passed; what follows them is taken."""
            nonlocal seen
            if seen >= known:
                self._take(start, raw)
                return
            info = wire.slice_line(raw)
            if info is not None and info.kind == wire.KIND_DATA:
                seen += 1

        self._drain(skip_known)

    def _open_tail(self, segment: SegmentInfo) -> bool:
        """Follow the active file from its start once it has bytes (its codec is read from
        them: an empty file right after a rotation has none yet)."""
        with open(self.path, "rb") as fh:
            head = fh.read(8)
        if not head:
            self._tail = None
            return False
        segment.codec = sniff(head)
        self._tail = TailDecoder(self.path, segment.codec, Start(0), LineStats())
        self._tail_chunk, self._tail_lines, self._tail_bytes = None, [], 0
        self._told_oversized = 0
        self._drain(self._take)
        return True

    def _drain(self, take: Callable[[Start, bytes], None]) -> None:
        """Everything the tail's file holds now, however much (reads come 4 MiB at a time)."""
        assert self._tail is not None
        while True:
            for start, raw in self._tail.read_lines():
                take(start, raw)
            if self._tail.at_end():
                self._report_tail()
                return

    def _lines(self, at: int) -> list[bytes]:
        chunk = self.chunks[at]
        if self._tail_chunk is not None and chunk is self._tail_chunk:
            return self._tail_lines  # the growing chunk lives here, never evicted
        pinned = self._pinned.get(chunk)
        if pinned is not None:
            return pinned  # its bytes were truncated away: only these lines remain
        return super()._lines(at)

    def _rescan(self, seg_index: int) -> None:
        """A rescan rebuilds the segment's chunks; for the active file the tail is put back
        at the end of the new last chunk, so nothing is read twice or left out."""
        super()._rescan(seg_index)
        if seg_index == len(self.segments) - 1 and self._tail is not None:
            self._tail.close()
            self._tail, self._tail_chunk, self._tail_lines = None, None, []
            self._attach()

    # ----------------------------------------------------------------- polling

    def poll(self) -> FollowUpdate:
        before, generation = self.frame_count, self.generation
        rotated = self._follow_rotation()
        dropped = self._drop_evicted()
        if self._tail is not None:
            cut = self._tail.check_truncated()
            if cut is not None:
                self._truncated(cut)
            for start, raw in self._tail.read_lines():
                self._take(start, raw)
            self._report_tail()
        self._renumber()
        added = self.frame_count - before + dropped
        rebuilt = self.generation != generation + (1 if dropped else 0)
        return FollowUpdate(added=max(0, added), dropped=dropped, rotated=rotated, rebuilt=rebuilt)

    def _truncated(self, size: int) -> None:
        """The active file was cut to ``size``: chunks that began past it are gone (those
        whose lines are held stay, pinned), and the next line starts a chunk of its own."""
        seg_index = len(self.segments) - 1
        kept, gone = [], 0
        for chunk in self.chunks:
            if chunk.segment == seg_index and chunk is self._tail_chunk:
                self._pinned[chunk] = self._tail_lines
            elif chunk.segment == seg_index and chunk.start.offset >= size:
                gone += chunk.count or 0
                continue
            kept.append(chunk)
        self.chunks = kept
        self._tail_chunk, self._tail_lines, self._tail_bytes = None, [], 0
        self._cache.clear()
        self._cache_bytes = 0
        self.generation += 1
        lost = f"; {gone} frames after that point are gone" if gone else ""
        self.warnings.append(
            f"{self.path.name} was truncated to {size:,} bytes{lost}: following what comes next"
        )

    def _report_tail(self) -> None:
        """Tell (on the message line) what the tail found that was not known before."""
        assert self._tail is not None
        stats = self._tail.stats
        segment = self.segments[-1]
        for damage in segment.take_stats(LineStats(damage=stats.damage)):
            self.warnings.append(damage.describe(self.path.name) + " skipped; following on")
        if stats.oversized > self._told_oversized:
            segment.oversized_lines += stats.oversized - self._told_oversized
            self._told_oversized = stats.oversized
            self.warnings.append(f"{self.path.name}: a line over 16 MiB skipped")

    def _drop_evicted(self) -> int:
        gone = {
            i
            for i, segment in enumerate(self.segments[:-1])
            if i not in self._gone and (i in self._vanished or not segment.path.exists())
        }
        if not gone:
            return 0
        self._gone |= gone
        dropped = sum(c.count or 0 for c in self.chunks if c.segment in gone)
        self.chunks = [c for c in self.chunks if c.segment not in gone]
        self._cache.clear()
        self._cache_bytes = 0
        if self._replaced:
            self.warnings.append(
                f"{self.path.name} was replaced and the file before is gone "
                f"({dropped} frames): following the new one"
            )
        else:
            self.warnings.append(f"{dropped} frames at the start were evicted by rotation")
        self._replaced = False
        self.generation += 1
        return dropped

    def _follow_rotation(self) -> bool:
        try:
            inode = os.stat(self.path).st_ino
        except FileNotFoundError:
            return False  # between the rename and the new file: try again next poll
        if self._tail is not None and inode == self._tail.inode:
            return False
        last = len(self.segments) - 1
        if self._tail is None and self._waiting(last):
            self._open_tail(self.segments[last])  # it had no bytes when we looked: now?
            return False
        if self._tail is not None:
            self._drain(self._take)  # the rotated file, to its end, through our open fd
            self._last_number = self._rename_rotated(self._tail.inode)
            if self._last_number is None:
                # Renamed and already evicted (--max-files 1), or replaced by another file:
                # its frames are gone with it.
                self._vanished.add(len(self.segments) - 1)
                self._replaced = True
            self._tail.close()
            self._tail = None
        if self._last_number is not None:
            self._open_rotated_after(self._last_number)
        with open(self.path, "rb") as fh:
            if not fh.read(1):
                return False  # the new active file has no bytes yet: next poll
        segment = SegmentInfo(path=self.path, codec="none", size=0)
        self.segments.append(segment)
        self._open_tail(segment)
        return True

    def _waiting(self, last: int) -> bool:
        """Whether segment ``last`` is the active file, followed before it had a byte."""
        return (
            last >= 0
            and self.segments[last].path == self.path
            and last not in self._vanished
            and not any(c.segment == last for c in self.chunks)
        )

    def _rename_rotated(self, inode: int) -> int | None:
        """The active file was renamed to a numbered segment: find it by its inode; its
        number, or None when it is nowhere."""
        names = os.listdir(self.path.parent)
        for number, name in reversed(numbered_segments(self.path.name, names)):
            candidate = self.path.parent / name
            with contextlib.suppress(OSError):
                if candidate.stat().st_ino == inode:
                    self.segments[-1].path = candidate
                    return number
        return None

    def _open_rotated_after(self, number: int) -> None:
        """Segments rotated out after the one we followed and before the new active file
        (several rotations between two polls): read each whole, in order."""
        names = os.listdir(self.path.parent)
        for later, name in numbered_segments(self.path.name, names):
            if later > number:
                with contextlib.suppress(RecordingUnreadable):  # evicted meanwhile
                    self._open_segment(self.path.parent / name)
                self._last_number = later
        self._renumber()

    def _take(self, start: Start, raw: bytes) -> None:
        info = wire.slice_line(raw)
        if info is None:
            self.segments[-1].corrupt_lines += 1
        elif info.kind == wire.KIND_HEADER:
            if self.segments[-1].header is None:
                self.segments[-1].header = self._header(raw)
        elif info.kind == wire.KIND_INDEX and info.seq is not None:
            if self._ours():  # a chunk of ours begins: decodable from its index line
                self._new_chunk(start, info.t_ms, info.seq)
        elif info.kind == wire.KIND_DATA and info.t_ms is not None:
            chunk = self._tail_chunk
            if (
                chunk is None
                or (chunk.count or 0) >= CHUNK_FRAMES
                or self._tail_bytes >= TAIL_CHUNK_BYTES
            ):
                self._new_chunk(start, info.t_ms, None)
            self._add_line(raw, info.t_ms)

    def _ours(self) -> bool:
        header = self.segments[-1].header
        return header is not None and header.writer == "allsmi"

    def _new_chunk(self, start: Start, t_ms: int | None, seq: int | None) -> None:
        key = self._last_key()
        chunk = Chunk(
            segment=len(self.segments) - 1,
            start=start,
            first_index=self.frame_count,
            count=0,
            t_first=_first_key(key, t_ms),
            seq_first=seq,
            keys=array("q"),
            times=array("q"),
            verified=seq is not None,
        )
        self.chunks.append(chunk)
        self._tail_chunk, self._tail_lines, self._tail_bytes = chunk, [], 0

    def _add_line(self, raw: bytes, t_ms: int | None) -> None:
        chunk = self._tail_chunk
        assert chunk is not None and chunk.keys is not None and chunk.times is not None
        assert t_ms is not None
        key = chunk.keys[-1] if chunk.keys else self._key_before(self.chunks.index(chunk))
        chunk.times.append(t_ms)
        chunk.keys.append(t_ms if key is None else max(key, t_ms))
        chunk.count = (chunk.count or 0) + 1
        self._tail_lines.append(raw)
        self._tail_bytes += len(raw)

    def close(self) -> None:
        if self._tail is not None:
            self._tail.close()
            self._tail = None


def _first_key(key: int | None, t_ms: int | None) -> int:
    if t_ms is None:
        return key or 0
    return t_ms if key is None else max(key, t_ms)
