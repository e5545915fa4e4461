"""The bulk index of a segment that has no seek table: lines counted, not parsed
(docs/recording-format.md §7.7, 3; docs/architecture.md §3.1).

The exact scan (:func:`allsmi.adapters.recording.index.scan`) slices every line for its
kind and time: about a microsecond and a half a line in Python, so a million-frame gzip file
took longer to index than ``zcat`` took to decompress it, and a plain one 30 times longer
than ``cat`` took to read it. Replay does not need every frame's time to open: it needs
where chunks of about a thousand frames begin, how many frames each holds, and the time of
its first frame. This module finds exactly that with operations that run in C over whole
decoded blocks — ``bytes.count`` of newlines and of the header and index prefixes,
``bytes.find`` of the next newline at each chunk boundary — and parses only the first data
line of each chunk. A chunk's frames and their times are read when a seek or a step first
lands in it (the reader then learns them, and corrects the count where this one was off).

Rules this module obeys:
- Chunks it makes are marked ``approx``: their ``count`` is newlines minus header and index
  lines, which is exact for allsmi's and all-smi's files and off only by lines that are not
  frames (corrupt, empty, over 16 MiB, unknown kinds); reading the chunk corrects it without
  calling it damage (what it skipped is damage, counted then).
- A header line after frames (a concatenated recording: a later run) ends the chunk before
  it, so each run begins a chunk: the run's first frame is that chunk's first, and its
  place in the segment is exact once the chunks before it are read (:attr:`Findings.run_chunks`).
  Header and index lines are those that *begin* with their prefix.
- Their ``t_first`` is the running maximum of the chunks' first times: a seek key that never
  goes back. Inside a chunk the reader computes the exact keys when it reads it.
- Every line is some chunk's: a chunk begins at a data line (the segment's first at its
  first byte) and ends where the next begins, so lines between data lines (corrupt, empty,
  index, header) are read, and counted as damage, with the chunk before them.
- A chunk begins at a line start and, like the exact scan's, holds about
  :data:`~allsmi.adapters.recording.index.CHUNK_FRAMES` lines or at most
  :data:`~allsmi.adapters.recording.index.CHUNK_BYTES` of them; it is decoded from the last
  restart point before it (a gzip member, a zlib checkpoint, a plain offset).
- The work comes in :class:`Batch` es, one per decoded block, each with the stored bytes read
  so far; the caller may run it in a thread and take batches as they come. It touches nothing
  shared: what it learns of the segment comes back in the last batch (:class:`Findings`).

A large plain file that allsmi wrote is not even read whole. Its index lines (one before every
chunk the writer made, docs/recording-format.md §6.2) say where they sit (``byte_offset``)
and which ``seq`` their chunk begins with, and a writer numbers a run's frames one by one:
so reading a little at every :data:`SPARSE_STRIDE` stored bytes, to the next index line,
gives chunks whose counts are ``seq`` differences (:func:`_sparse_marks`). That path is
taken only while everything it reads agrees — the first line our header, every index line
met where its ``byte_offset`` says, ``seq`` only going up, no header in the last stretch
(counted whole) — and the scan above takes the file from its first byte otherwise. Its
chunks are ``approx`` as the others are: lines between that are no frame (or frames missing
from a run) are corrected when the chunk is read.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from typing import BinaryIO, Final, Literal, TypeGuard

import attrs
import orjson

from allsmi.adapters import wire
from allsmi.adapters.recording.decoding import (
    MAX_LINE,
    Decoded,
    LineStats,
    Start,
    checkpoint_spacing,
    decode_with_restarts,
    start_at,
)
from allsmi.adapters.recording.index import CHUNK_BYTES, CHUNK_FRAMES, Chunk
from allsmi.domain.parse import parse_rfc3339_ms

HEADER_PREFIX: Final = b'{"schema":1,"header":true'
INDEX_PREFIX: Final = b'{"schema":1,"index":true'
PLAIN_BLOCK: Final = 4 * 1024 * 1024  # stored bytes of a plain file read at once
MIN_SPAN: Final = 4096  # decoded bytes a chunk spans at least
RESTARTS_KEPT: Final = 8  # restart points remembered for lines that began before them
SPARSE_STRIDE: Final = CHUNK_BYTES  # a large plain file: stored bytes between samples
SPARSE_MIN_STRIDES: Final = 4  # ... taken sparsely from this many strides up
SPARSE_READ: Final = 1024 * 1024  # read at once while looking for the next index line
SPARSE_BATCH: Final = 64  # chunks a sparse batch holds


@attrs.define
class Findings:
    """What a bulk pass learned of its segment, besides the chunks."""

    header_line: bytes | None = None  # the first header line, whole
    first_lines: list[bytes] = attrs.Factory(list)  # the first two lines: the schema check
    runs: int = 1  # headers met (concatenated recordings), at least 1
    run_chunks: list[int] = attrs.Factory(list)  # of each later run: its first chunk's ordinal
    stats: LineStats = attrs.Factory(LineStats)  # what decoding noticed (damage, a torn tail)
    sampled: bool = False  # indexed by its index lines alone (a large plain file of ours)


@attrs.frozen
class Batch:
    chunks: list[Chunk]
    read: int  # stored bytes read so far
    done: Findings | None = None  # set on the last batch
    head: tuple[bytes, ...] = ()  # on the first batch: the segment's first lines (schema, header)


def bulk_scan(
    fh: BinaryIO,
    codec: str,
    seg_index: int,
    *,
    key_before: int | None,
    stride: int | None = None,
) -> Iterator[Batch]:
    """The chunks of ``fh`` (a segment of codec ``codec``), batch by batch; a large plain
    file of ours by its index lines, ``stride`` stored bytes apart (see the module's rules)."""
    scan = _BulkScan(fh, codec, seg_index, key_before)
    stride = stride or SPARSE_STRIDE
    if codec == "none":
        size = fh.seek(0, os.SEEK_END)
        if size >= SPARSE_MIN_STRIDES * stride:
            return scan.sparse(size, stride)
    return scan.run()


@attrs.frozen
class _Mark:
    """An index line of a plain file: where it begins, and its chunk's first ``t`` and
    ``seq``."""

    at: int
    t_ms: int
    seq: int


@attrs.frozen
class _Tail:
    """The stretch after the last mark, counted: frames, and whether its last line is torn."""

    frames: int
    torn: bool


class _BulkScan:
    def __init__(self, fh: BinaryIO, codec: str, seg_index: int, key: int | None) -> None:
        self.fh = fh
        self.codec = codec
        self.seg_index = seg_index
        self.key = key  # running max of the chunks' first times
        self.found = Findings()
        self.restarts: deque[tuple[int, Start]] = deque([(0, Start(0))], maxlen=RESTARTS_KEPT)
        self.current: Chunk | None = None
        self.closed: list[Chunk] = []  # chunks closed since the last batch
        self.current_at = 0  # decoded offset of the current chunk's first line
        self.current_end = 0  # decoded offset just past its last line counted so far
        self.current_frames = 0  # frames counted in it so far
        self.lines = 0  # lines counted so far (for the average line length)
        self.bytes = 0  # decoded bytes of those lines
        self.headers = 0
        self.made = 0  # chunks closed so far
        self.full = False  # the current chunk holds its share: it ends at the next data line

    def run(self, start: int = 0) -> Iterator[Batch]:
        """Every line counted, from decoded offset ``start`` (a line start; not 0 only in a
        plain file, after :meth:`sparse`)."""
        stats = self.found.stats
        carry = b""  # the unfinished last line of the previous block (never over 16 MiB)
        skipping = False  # inside a line over 16 MiB: dropped up to its newline
        at = start  # decoded offset of the first byte of ``carry`` (or of the next block)
        if start:
            self.restarts.append((start, Start(start)))
        sent_head = False
        for data, restart in self._blocks(stats, start):
            end = at + len(carry) + len(data)
            start = 0  # where this block's own whole lines begin
            if carry or skipping:
                first_nl = data.find(b"\n")
                if first_nl < 0:  # the line goes on
                    carry, skipping = self._grow(carry + data if not skipping else b"", skipping)
                    at = end - len(carry)
                    self._restart(end, restart)
                    continue
                start = first_nl + 1
                if not skipping:  # the line that spans blocks, joined (the only copy)
                    head = carry + data[:start]
                    self._block(head, at, 0, len(head))
                at, carry, skipping = at + len(carry) + start, b"", False
            last_nl = data.rfind(b"\n")
            if last_nl >= start:  # whole lines, counted in place
                self._block(data, at - start, start, last_nl + 1)
                at += last_nl + 1 - start
                start = last_nl + 1
            carry, skipping = self._grow(data[start:], False)
            at = end - len(carry)
            if self.closed or (self.found.first_lines and not sent_head):
                yield Batch(self._take(), self.fh.tell(), head=tuple(self.found.first_lines))
                sent_head = True
            self._restart(end, restart)
        if carry.strip(b"\0") or skipping:
            stats.torn_tail = True
        self._close()
        self.found.runs = max(1, self.headers)
        yield Batch(
            self._take(), self.fh.tell(), done=self.found, head=tuple(self.found.first_lines)
        )

    def sparse(self, size: int, stride: int) -> Iterator[Batch]:
        """The chunks of a large plain file of ours from its index lines: each from one mark
        to the next, its count their ``seq`` difference; the last one to the end of the file,
        counted. From the first mark that disagrees (module rules), the lines are counted as
        :meth:`run` counts them."""
        opened = _sparse_head(self.fh, size)
        if opened is None:
            yield from self.run()
            return
        head, mark = opened
        found = self.found
        found.header_line, found.first_lines = head[0], head
        self.headers = 1
        sent_head = False
        for after in _marks_after(self.fh, mark, size, stride):
            if after is None or after.seq <= mark.seq:  # numbering went back: another run
                break
            self._sampled(mark, after.at, after.seq - mark.seq)
            mark = after
            if len(self.closed) >= SPARSE_BATCH or not sent_head:
                yield Batch(self._take(), mark.at, head=() if sent_head else tuple(head))
                sent_head = True
        else:
            tail = _tail(_pread(self.fh, mark.at, size - mark.at))
            if tail is not None:
                self._sampled(mark, size, tail.frames)
                found.stats.torn_tail = tail.torn
                found.sampled = True
                yield Batch(self._take(), size, done=found, head=tuple(head))
                return
        yield from self.run(start=mark.at)  # counted from the last mark that agreed

    def _sampled(self, mark: _Mark, ends: int, frames: int) -> None:
        """A chunk from ``mark`` to stored offset ``ends`` holding ``frames`` frames, closed."""
        self.key = mark.t_ms if self.key is None else max(self.key, mark.t_ms)
        begins = mark.at if self.made else 0  # the first chunk holds the header line too
        chunk = Chunk(
            segment=self.seg_index,
            start=Start(begins),
            first_index=0,
            count=frames,
            t_first=self.key,
            approx=True,
            span=ends - begins,
        )
        self.closed.append(chunk)
        self.made += 1

    def _blocks(self, stats: LineStats, start: int) -> Iterator[Decoded]:
        """Decoded blocks; a plain file is read in large blocks straight from the file."""
        if self.codec != "none":
            size = self.fh.seek(0, os.SEEK_END)
            every = checkpoint_spacing(size)
            yield from decode_with_restarts(
                self.fh, self.codec, Start(0), stats, checkpoint_every=every
            )
            return
        self.fh.seek(start)
        while data := self.fh.read(PLAIN_BLOCK):
            yield Decoded(data, None)

    def _grow(self, carry: bytes, skipping: bool) -> tuple[bytes, bool]:
        """An unfinished line so far: dropped (and counted) once it is over 16 MiB."""
        if len(carry) > MAX_LINE:
            self.found.stats.oversized += 1
            return b"", True
        return carry, skipping

    def _restart(self, end: int, restart: Start | None) -> None:
        if restart is not None:
            self.restarts.append((end, restart))

    def _take(self) -> list[Chunk]:
        """The chunks closed since the last batch: only closed ones leave (their counts
        are final; a consumer in another thread never sees one change)."""
        closed, self.closed = self.closed, []
        return closed

    # ------------------------------------------------------------------ one block

    def _block(self, buf: bytes, at: int, pos: int, stop: int) -> None:
        """Count the whole lines of ``buf[pos:stop]`` into chunks (``buf[0]`` is at decoded
        offset ``at``)."""
        if not self.found.first_lines:
            self._first_lines(buf[pos : min(stop, pos + 2 * MAX_LINE)])
        while pos < stop:
            if self.current is None or self.full:
                found = _next_data(buf, pos, stop)
                end = stop if found is None else found[0]
                self._count(buf, pos, end)  # no frame: the full chunk's lines (or the first's)
                if self.current is not None:
                    self.current_end = at + end
                if found is None:
                    break
                self._close()
                self._begin(found, at)
                pos = found[0]
            span = self._span()
            target = self.current_at + span - at  # where the next chunk may begin, in buf
            boundary = stop if target >= stop else buf.find(b"\n", max(pos, target - 1)) + 1
            header = _line_start(buf, HEADER_PREFIX, pos, boundary)
            if header >= 0:  # a later run begins: it begins a chunk (see the rules)
                boundary = header
            self._count(buf, pos, boundary)
            self.current_end = at + boundary
            if boundary == stop:
                break
            pos = boundary
            self.full = True  # it ends before the next data line

    def _count(self, buf: bytes, start: int, end: int) -> None:
        """The lines of ``buf[start:end]`` (whole lines) into the current chunk."""
        if end <= start:
            return
        lines = buf.count(b"\n", start, end)
        headers = _line_starts(buf, HEADER_PREFIX, start, end)
        other = headers + _line_starts(buf, INDEX_PREFIX, start, end)
        if headers:
            self._headers(buf, start, end)
        self.lines += lines
        self.bytes += end - start
        self.current_frames += max(0, lines - other)

    def _headers(self, buf: bytes, start: int, end: int) -> None:
        """Each header line met: the first is the segment's; later ones begin a run, whose
        first frame begins the next chunk (:meth:`_block` fills a chunk at a header)."""
        find = _line_start(buf, HEADER_PREFIX, start, end)
        while find >= 0:
            self.headers += 1
            if self.headers == 1:
                self.found.header_line = buf[find : buf.index(b"\n", find)].rstrip(b"\r")
            else:
                self.found.run_chunks.append(self.made + (self.current is not None))
            find = _line_start(buf, HEADER_PREFIX, find + 1, end)

    def _span(self) -> int:
        """Decoded bytes a chunk spans: about CHUNK_FRAMES lines of the average length so
        far, within [MIN_SPAN, CHUNK_BYTES]."""
        if self.made == 0:  # the first chunk is small: it is in the first batch, shown at once
            return MIN_SPAN
        average = self.bytes // self.lines if self.lines else 1024
        return max(MIN_SPAN, min(CHUNK_BYTES, CHUNK_FRAMES * max(1, average)))

    def _begin(self, found: tuple[int, int], at: int) -> None:
        """Begin a chunk at the data line ``found`` (its place in the block decoded from
        ``at``, its time); the segment's first chunk begins at its first byte, so that every
        line is some chunk's (what lies between data lines is read, and judged, with the
        chunk before them)."""
        line_at, t_ms = found
        self.key = t_ms if self.key is None else max(self.key, t_ms)
        self.current_at = at + line_at if self.made else 0
        self.current = Chunk(
            segment=self.seg_index,
            start=self._start(self.current_at) if self.made else Start(0),
            first_index=0,
            count=None,
            t_first=self.key,
            approx=True,
        )

    def _start(self, position: int) -> Start:
        """Where the line at decoded ``position`` can be decoded from."""
        restart_at, restart = self.restarts[0]
        for offset, candidate in self.restarts:
            if offset <= position:
                restart_at, restart = offset, candidate
        return start_at(self.codec, restart, restart_at, position)

    def _close(self) -> None:
        if self.current is not None:
            self.current.count = self.current_frames
            self.current.span = self.current_end - self.current_at
            self.closed.append(self.current)
            self.made += 1
            self.current_frames = 0
            self.current = None
            self.full = False

    def _first_lines(self, buf: bytes) -> None:
        lines = buf.split(b"\n", 2)[:2]
        self.found.first_lines = [line.rstrip(b"\r") for line in lines if line]


# --------------------------------------------------------------------------- sparse plain


def _sparse_head(fh: BinaryIO, size: int) -> tuple[list[bytes], _Mark] | None:
    """The first two lines of a plain file of ours (its header and first index line) and the
    first mark; None when they are not that."""
    head = b""
    while head.count(b"\n") < 2 and len(head) < min(size, 2 * MAX_LINE + 2):
        head = _pread(fh, 0, min(size, 2 * MAX_LINE + 2, max(SPARSE_READ, 4 * len(head))))
    lines = head.split(b"\n", 2)
    if len(lines) < 3 or not lines[0].startswith(HEADER_PREFIX):
        return None
    first = _mark(lines[1], len(lines[0]) + 1)
    if first is None:
        return None
    return [line.rstrip(b"\r") for line in lines[:2]], first


def _marks_after(fh: BinaryIO, first: _Mark, size: int, stride: int) -> Iterator[_Mark | None]:
    """The index lines after ``first``, the first one met in each ``stride`` (and the
    writer's second chunk, so the first chunk is small: it is shown at once), in order;
    None for one that is not what an index line of ours must be (then nothing more)."""
    last = first.at
    for at in [first.at + 1, *range(stride, size, stride)]:
        mark = _next_mark(fh, max(at, last + 1), min(size, (at // stride + 1) * stride))
        if mark is False:
            yield None
            return
        if mark is not None:  # else no chunk begins in this stride
            last = mark.at
            yield mark


def _next_mark(fh: BinaryIO, at: int, stop: int) -> _Mark | Literal[False] | None:
    """The first index line that begins in [at, stop): None when none does; False when one
    is not what an index line of ours must be."""
    pos = at - 1  # an index line begins after a newline
    carry = b""
    while pos < stop:
        block = carry + _pread(fh, pos, min(SPARSE_READ, stop - pos + len(INDEX_PREFIX)))
        if len(block) <= len(carry):
            return None
        found = block.find(b"\n" + INDEX_PREFIX)
        if found >= 0:
            begins = pos - len(carry) + found + 1
            if begins >= stop:
                return None
            line = _pread(fh, begins, 4096).split(b"\n", 1)[0]
            return _mark(line, begins) or False
        keep = len(INDEX_PREFIX)
        pos += len(block) - len(carry)
        carry = block[-keep:]
    return None


def _mark(line: bytes, at: int) -> _Mark | None:
    """The mark of an index line of ours that says it begins at ``at``; None otherwise."""
    if not line.startswith(INDEX_PREFIX):
        return None
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    t, seq, offset = obj.get("t"), obj.get("seq"), obj.get("byte_offset")
    if not (isinstance(t, str) and _whole(seq) and _whole(offset) and offset == at):
        return None
    try:
        return _Mark(at, parse_rfc3339_ms(t), seq)
    except ValueError:
        return None


def _whole(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _tail(buf: bytes) -> _Tail | None:
    """The last stretch (from the last mark to the end), counted as the scan counts; None
    when a header line is in it (another run begins there: the scan reads the file)."""
    if _line_starts(buf, HEADER_PREFIX, 0, len(buf)):
        return None
    end = buf.rfind(b"\n") + 1
    lines = buf.count(b"\n", 0, end)
    other = _line_starts(buf, INDEX_PREFIX, 0, end)
    return _Tail(max(0, lines - other), bool(buf[end:].strip(b"\0")))


def _pread(fh: BinaryIO, at: int, length: int) -> bytes:
    fh.seek(at)
    return fh.read(max(0, length))


def _line_starts(buf: bytes, prefix: bytes, start: int, end: int) -> int:
    """Lines of ``buf[start:end]`` (``start`` a line start) that begin with ``prefix``."""
    return buf.count(b"\n" + prefix, start, end) + buf.startswith(prefix, start, end)


def _line_start(buf: bytes, prefix: bytes, start: int, end: int) -> int:
    """Where the first line of ``buf[start:end]`` that begins with ``prefix`` begins; -1
    when none does (``start`` is a line start)."""
    if buf.startswith(prefix, start, end):
        return start
    find = buf.find(b"\n" + prefix, start, end)
    return find + 1 if find >= 0 else -1


def _next_data(buf: bytes, pos: int, stop: int) -> tuple[int, int] | None:
    """The first data line of ``buf[pos:stop]`` (``pos`` a line start): where it begins, and
    its time; None when no line left is one."""
    while pos < stop:
        nl = buf.find(b"\n", pos)
        t_ms = _data_time(buf[pos:nl])
        if t_ms is not None:
            return pos, t_ms
        pos = nl + 1
    return None


def _data_time(raw: bytes) -> int | None:
    """The time of a data line (ours by fixed offsets, else sliced); None for any other."""
    raw = raw.rstrip(b"\r")
    t_ms = wire.data_time(raw)
    if t_ms is not None:
        return t_ms
    info = wire.slice_line(raw)
    if info is None or info.kind != wire.KIND_DATA:
        return None
    return info.t_ms


__all__ = ["Batch", "Findings", "bulk_scan"]
