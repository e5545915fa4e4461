"""Following a recording while it is written (docs/architecture.md §5.7, ``--follow``).

:class:`FollowingSource` is a :class:`~allsmi.adapters.recording.source.RecordingSource` (held,
not extended) plus a *tail*: the reader's own bounded decoder
(:class:`~allsmi.adapters.recording.decoding.StreamDecoder`) and line splitter
(:class:`~allsmi.adapters.recording.decoding.LineSplitter`) kept at the end of the active
file, so each poll decodes only the bytes added since the last one — no rescans. What the
tail reads is added to the reader's :class:`~allsmi.adapters.recording.timeline.Timeline`;
the lines of the growing chunk are held in the reader's line cache, outside its bound.

A poll stats the active path: the same inode with more bytes means new lines; another inode
means the recorder rotated, so the old file (still open, now a numbered segment) is drained to
its end and the new active file is followed from its start. Numbered segments that disappear
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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO, Final

import attrs

from allsmi.adapters import wire
from allsmi.adapters.recording.cache import CACHE_BYTES
from allsmi.adapters.recording.damage import Damage, DamageKind
from allsmi.adapters.recording.decoding import (
    READ_SIZE,
    LineSplitter,
    LineStats,
    Start,
    StreamDecoder,
    sniff,
    start_at,
)
from allsmi.adapters.recording.index import (
    CHUNK_FRAMES,
    Chunk,
    Progress,
    SegmentInfo,
    parse_header,
)
from allsmi.adapters.recording.source import RecordingSource
from allsmi.domain.errors import RecordingUnreadable
from allsmi.domain.model import Frame, Header
from allsmi.domain.segments import numbered_segments, segment_number

READ_LIMIT: Final = 4 * 1024 * 1024  # stored bytes read per poll at most
DECODE_LIMIT: Final = 32 * 1024 * 1024  # decoded bytes per poll at most (a bomb waits)
TAIL_CHUNK_BYTES: Final = 8 * 1024 * 1024  # lines of the growing chunk held in memory


@attrs.frozen
class FollowUpdate:
    added: int = 0  # frames appended at the end
    dropped: int = 0  # frames evicted from the start
    rotated: bool = False
    rebuilt: bool = False  # frames were counted anew since the last poll: find them again
    caught_up: bool = True  # the poll read to the end of what the files held


class TailDecoder:
    """Incremental decoding of one growing file from a start: stored bytes in, complete
    lines out, through the reader's bounded decoder and line splitter, with the start each
    line can be decoded from again (the latest frame, member or checkpoint at or before its
    first byte — a line may span several)."""

    def __init__(
        self, file: Path | BinaryIO, codec_name: str, start: Start, stats: LineStats
    ) -> None:
        # (a path is opened; an open file is taken over) kept open across polls
        self.fh: BinaryIO = open(file, "rb") if isinstance(file, Path) else file  # noqa: SIM115
        self.inode = os.fstat(self.fh.fileno()).st_ino
        self.codec = codec_name
        self.stats = stats
        self.exhausted = False  # the last read reached the end of what the file holds
        self._begin(start, lost=False)

    def _begin(self, start: Start, *, lost: bool) -> None:
        self.fh.seek(start.offset)
        self._decoder = StreamDecoder(self.codec, start, self.stats, restarts=True, lost=lost)
        self._splitter = LineSplitter(self.stats, attrs.evolve(start, skip=0))
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
            for line in self._splitter.push(block.data):
                if line.position >= self._skip:
                    start = start_at(self.codec, line.restart, line.restart_position, line.position)
                    lines.append((start, line.raw))
            if block.restart is not None:
                self._splitter.restart(block.restart)
        return lines


class FollowingSource:
    """A recording that may still be growing: ``poll()`` brings in what was added. Reads
    as a :class:`RecordingSource` does (it holds one, :attr:`reader`, and grows it)."""

    def __init__(
        self, path: Path, *, cache_bytes: int = CACHE_BYTES, progress: Progress | None = None
    ) -> None:
        self.path = path
        self.reader = RecordingSource(path, cache_bytes=cache_bytes, progress=progress)
        self._tail: TailDecoder | None = None
        # The active file (the last segment) while it has no bytes: held open, so that it is
        # found by its inode if it is rotated before a poll sees a byte of it.
        self._empty: BinaryIO | None = None
        self._tail_chunk: Chunk | None = None  # the chunk the tail adds to
        self._tail_lines: list[bytes] = []  # its lines (held in the reader's cache)
        self._tail_bytes = 0
        self._tail_scans = 0  # scans of the active segment when the tail was put there
        self._pinned: list[Chunk] = []  # held lines whose bytes were truncated away
        self._gone: set[int] = set()
        self._vanished: set[int] = set()  # rotated and deleted before we found its new name
        self._replaced = False  # the active file was replaced, the old one is nowhere
        self._told_oversized = 0  # lines over 16 MiB the tail found and we said so
        self._last_number: int | None = None  # the newest numbered segment in the timeline
        self._attach()
        self._told_generation = self.reader.generation

    # ----------------------------------------------------------------- reading

    @property
    def segments(self) -> list[SegmentInfo]:
        return self.reader.segments

    @property
    def chunks(self) -> Sequence[Chunk]:
        return self.reader.chunks

    @property
    def warnings(self) -> list[str]:
        return self.reader.warnings

    @property
    def generation(self) -> int:
        return self.reader.generation

    @property
    def frame_count(self) -> int:
        return self.reader.frame_count

    @property
    def header(self) -> Header | None:
        return self.reader.header

    @property
    def first_t_ms(self) -> int:
        return self.reader.first_t_ms

    @property
    def last_t_ms(self) -> int:
        return self.reader.last_t_ms

    @property
    def duration_ms(self) -> int:
        return self.reader.duration_ms

    @property
    def skipped_lines(self) -> int:
        return self.reader.skipped_lines

    def segment_of(self, index: int) -> int:
        return self.reader.segment_of(index)

    def chunk_starts(self) -> list[tuple[int, int]]:
        return self.reader.chunk_starts()

    def time_at(self, index: int) -> int:
        return self.reader.time_at(index)

    def key_at(self, index: int) -> int:
        return self.reader.key_at(index)

    def index_at_or_before(self, key_ms: int) -> int:
        return self.reader.index_at_or_before(key_ms)

    def raw(self, index: int) -> bytes:
        return self.reader.raw(index)

    def structure(self, index: int) -> Frame | Damage:
        return self.reader.structure(index)

    def frame(self, index: int) -> Frame:
        return self.reader.frame(index)

    def close(self) -> None:
        if self._tail is not None:
            self._tail.close()
            self._tail = None
        self._hold_empty(None)

    def __enter__(self) -> FollowingSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- attaching

    def _attach(self) -> None:
        """Put the tail at the end of the active file's last chunk (what is known so far)."""
        reader = self.reader
        active = reader.segments[-1] if reader.segments else None
        if active is None or active.path != self.path:
            return
        while True:
            self._tail_scans = active.scans
            span = reader.timeline.segment_span(len(reader.segments) - 1)
            if span is None:  # the active file holds no frame yet: follow it from its start
                self._open_tail(active)
                return
            lines = list(reader.chunk_lines(span[1]))
            if active.scans == self._tail_scans:
                break  # (reading a chunk a seek table lied about rescans the file: again)
        chunk = reader.chunks[span[1]]
        self._tail = TailDecoder(active.path, active.codec, chunk.start, LineStats())
        self._told_oversized = 0
        self._grow_into(chunk, lines)  # its lines live with the tail from now on
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

    def _reattach_if_rescanned(self) -> None:
        """A read that found the active file's seek table lying rescanned it: its chunks
        were rebuilt, so the tail is put back at the end of the new last chunk — nothing is
        read twice or left out."""
        if self._tail is None or self.reader.segments[-1].scans == self._tail_scans:
            return
        self._tail.close()
        self._tail = None
        self._grow_into(None, [])
        timeline = self.reader.timeline
        for chunk in self._pinned:  # rebuilt away with the rest of the segment
            if chunk not in timeline:
                self.reader.cache.release(chunk)
        self._pinned = [c for c in self._pinned if c in timeline]
        self._attach()

    def _open_tail(self, segment: SegmentInfo, fh: BinaryIO | None = None) -> bool:
        """Follow the last segment's file (``fh``, else the active path opened now) from its
        start once it has bytes (its codec is read from them: an empty file right after a
        rotation has none yet). Until then the file is held open, waiting."""
        if fh is None:
            fh = open(self.path, "rb")  # noqa: SIM115 - held by the tail or while empty
        fh.seek(0)
        head = fh.read(8)
        if not head:
            self._tail = None
            self._hold_empty(fh)
            return False
        if self._empty is fh:
            self._empty = None  # the tail's now
        self._hold_empty(None)
        segment.codec = sniff(head)
        self._tail_scans = segment.scans
        self._tail = TailDecoder(fh, segment.codec, Start(0), LineStats())
        self._grow_into(None, [])
        self._told_oversized = 0
        self._drain(self._take)
        return True

    def _hold_empty(self, fh: BinaryIO | None) -> None:
        """Hold ``fh`` as the empty active file (None: none), closing the one held before."""
        if self._empty is not None and self._empty is not fh:
            self._empty.close()
        self._empty = fh

    def _drain(self, take: Callable[[Start, bytes], None]) -> None:
        """Everything the tail's file holds now, however much (reads come 4 MiB at a time)."""
        assert self._tail is not None
        while True:
            for start, raw in self._tail.read_lines():
                take(start, raw)
            if self._tail.at_end():
                self._report_tail()
                return

    def _grow_into(self, chunk: Chunk | None, lines: list[bytes]) -> None:
        """The chunk the tail adds to from now on, with its lines so far (None: the next
        data line begins one). The chunk before is read from its file again, if it can be."""
        cache = self.reader.cache
        before = self._tail_chunk
        if before is not None and not any(c is before for c in self._pinned):
            cache.release(before)
        self._tail_chunk, self._tail_lines, self._tail_bytes = chunk, lines, sum(map(len, lines))
        if chunk is not None:
            cache.hold(chunk, lines)

    # ----------------------------------------------------------------- polling

    def poll(self) -> FollowUpdate:
        reader = self.reader
        before = reader.frame_count
        self._reattach_if_rescanned()
        rotated = self._follow_rotation()
        dropped = self._drop_evicted()
        if self._tail is not None:
            cut = self._tail.check_truncated()
            if cut is not None:
                self._truncated(cut)
            for start, raw in self._tail.read_lines():
                self._take(start, raw)
            self._report_tail()
        added = reader.frame_count - before + dropped
        rebuilt = reader.generation - (1 if dropped else 0) != self._told_generation
        self._told_generation = reader.generation
        caught_up = self._tail is None or self._tail.exhausted
        return FollowUpdate(max(0, added), dropped, rotated, rebuilt, caught_up)

    def _truncated(self, size: int) -> None:
        """The active file was cut to ``size``: chunks that began past it are gone (those
        whose lines are held stay, pinned), and the next line starts a chunk of its own."""
        reader = self.reader
        seg_index = len(reader.segments) - 1
        tail = self._tail_chunk
        if tail is not None:
            self._pinned.append(tail)
        gone = [
            c
            for c in reader.chunks
            if c.segment == seg_index and c is not tail and c.start.offset >= size
        ]
        lost = reader.timeline.remove(gone)
        self._grow_into(None, [])
        reader.cache.clear()
        said = f"; {lost} frames after that point are gone" if lost else ""
        reader.warnings.append(
            f"{self.path.name} was truncated to {size:,} bytes{said}: following what comes next"
        )

    def _report_tail(self) -> None:
        """Tell (on the message line) what the tail found that was not known before."""
        assert self._tail is not None
        stats = self._tail.stats
        segment = self.reader.segments[-1]
        warnings = self.reader.warnings
        for damage in segment.take_stats(LineStats(damage=stats.damage)):
            warnings.append(damage.describe(self.path.name) + " skipped; following on")
        if stats.oversized > self._told_oversized:
            oversized = Damage(DamageKind.OVERSIZED_LINE, stats.oversized - self._told_oversized)
            segment.note(oversized)
            self._told_oversized = stats.oversized
            warnings.append(oversized.describe(self.path.name))

    def _drop_evicted(self) -> int:
        """Drop the frames of segments whose files are gone: numbered segments deleted by
        eviction, and the followed file when it vanished at a rotation. That one may still
        be the last segment (the new active file has no bytes yet), and its path still
        names the active file: it is dropped now, so that nothing reads its frames from
        the new file."""
        reader = self.reader
        last = len(reader.segments) - 1
        gone = {
            i
            for i, segment in enumerate(reader.segments)
            if i not in self._gone
            and (i in self._vanished or (i < last and not segment.path.exists()))
        }
        if not gone:
            return 0
        self._gone |= gone
        evicted = [c for c in reader.chunks if c.segment in gone]
        dropped = reader.timeline.remove(evicted)
        for chunk in evicted:  # held lines of chunks no longer in the timeline
            reader.cache.release(chunk)
        self._pinned = [c for c in self._pinned if c.segment not in gone]
        reader.cache.clear()
        if self._replaced:
            reader.warnings.append(
                f"{self.path.name} was replaced and the file before is gone "
                f"({dropped} frames): following the new one"
            )
        else:
            reader.warnings.append(f"{dropped} frames at the start were evicted by rotation")
        self._replaced = False
        return dropped

    def _follow_rotation(self) -> bool:
        try:
            inode = os.stat(self.path).st_ino
        except FileNotFoundError:
            return False  # between the rename and the new file: try again next poll
        if self._tail is not None and inode == self._tail.inode:
            return False
        segments = self.reader.segments
        empty = self._empty
        if empty is not None:
            empty_inode = os.fstat(empty.fileno()).st_ino
            if inode == empty_inode:
                self._open_tail(segments[-1], empty)  # it had no bytes when we looked: now?
                return False
            # Rotated before we saw a byte of it: read it whole, through our open fd.
            self._last_number = self._find_rotated(empty_inode)
            if len(segments) - 1 not in self._vanished and self._open_tail(segments[-1], empty):
                assert self._tail is not None
                self._tail.close()
                self._tail = None
            self._hold_empty(None)
        elif self._tail is not None:
            self._last_number = self._find_rotated(self._tail.inode)
            if len(segments) - 1 not in self._vanished:
                self._drain(self._take)  # the rotated file, to its end, through our open fd
            self._tail.close()
            self._tail = None
        if self._last_number is not None:
            self._open_rotated_after(self._last_number)
        with open(self.path, "rb") as fh:
            if not fh.read(1):
                return False  # the new active file has no bytes yet: next poll
        segment = SegmentInfo(path=self.path, codec="none", size=0)
        segments.append(segment)
        self._open_tail(segment)
        return True

    def _find_rotated(self, inode: int) -> int:
        """The followed file (``inode``) left the active path: its number under its new
        name. If it is nowhere (renamed and already evicted, or replaced by another file)
        its frames are gone with it (what it got since the last poll is never read: evicted
        unread), and the segments rotated after it, still there to be read, are numbered
        past every segment we know of: the newest of those numbers."""
        number = self._rename_rotated(inode)
        if number is not None:
            return number
        self._vanished.add(len(self.reader.segments) - 1)
        self._replaced = True
        numbers = (segment_number(self.path.name, s.path.name) for s in self.reader.segments)
        return max((n for n in numbers if n is not None), default=0)

    def _rename_rotated(self, inode: int) -> int | None:
        """The active file was renamed to a numbered segment: find it by its inode; its
        number, or None when it is nowhere."""
        names = os.listdir(self.path.parent)
        for number, name in reversed(numbered_segments(self.path.name, names)):
            candidate = self.path.parent / name
            with contextlib.suppress(OSError):
                if candidate.stat().st_ino == inode:
                    self.reader.segments[-1].path = candidate
                    return number
        return None

    def _open_rotated_after(self, number: int) -> None:
        """Segments rotated out after the one we followed and before the new active file
        (several rotations between two polls): read each whole, in order."""
        names = os.listdir(self.path.parent)
        for later, name in numbered_segments(self.path.name, names):
            if later > number:
                with contextlib.suppress(RecordingUnreadable):  # evicted meanwhile
                    self.reader.open_segment(self.path.parent / name)
                self._last_number = later

    # ----------------------------------------------------------------- taking lines

    def _take(self, start: Start, raw: bytes) -> None:
        info = wire.slice_line(raw)
        segment = self.reader.segments[-1]
        if info is None:
            segment.note(Damage(DamageKind.CORRUPT_LINE))
        elif info.kind == wire.KIND_HEADER:
            if segment.header is None:
                segment.header = parse_header(raw, self.reader.warnings)
        elif info.kind == wire.KIND_INDEX and info.seq is not None:
            if segment.ours:  # a chunk of ours begins: decodable from its index line
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

    def _new_chunk(self, start: Start, t_ms: int | None, seq: int | None) -> None:
        timeline = self.reader.timeline
        key = timeline.last_key()
        chunk = Chunk(
            segment=len(self.reader.segments) - 1,
            start=start,
            first_index=0,
            count=0,
            t_first=_first_key(key, t_ms),
            seq_first=seq,
            keys=array("q"),
            times=array("q"),
            verified=seq is not None,
        )
        timeline.append(chunk)
        self._grow_into(chunk, [])

    def _add_line(self, raw: bytes, t_ms: int) -> None:
        chunk = self._tail_chunk
        assert chunk is not None
        self.reader.timeline.add_frame(chunk, t_ms)
        self._tail_lines.append(raw)
        self._tail_bytes += len(raw)


def _first_key(key: int | None, t_ms: int | None) -> int:
    if t_ms is None:
        return key or 0
    return t_ms if key is None else max(key, t_ms)
