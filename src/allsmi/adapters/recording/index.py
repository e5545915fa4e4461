"""The chunk index of one segment: where its frames can be decoded from
(docs/recording-format.md §7.7).

A segment (one file of a recording) is seen as a list of *chunks*: runs of data lines
decodable from a known :class:`Start`, each with its first seek key and, once known, its frame
count. Found cheapest first:

1. :func:`from_footer` — our zstd file with a footer: the trailer points at the chunk
   table, O(1);
2. :func:`from_markers` — our zstd file without one (a crash, or still recording): the last
   marker near the end, then its ``prev`` chain, O(chunks), nothing decompressed;
3. :func:`scan` — anything else (gzip, plain, all-smi files, damaged files): one pass, with
   progress, keeping restart points (member starts, zlib checkpoints every ~16 MiB, plain
   offsets) and every frame's time.

Offsets read from a file are never trusted: :func:`read_chunk` decodes a chunk a table
promised only if its bytes open with the index line it promises, and says so when they do
not (the reader then scans the segment instead). What reading finds wrong is kept on the
:class:`SegmentInfo` as typed :class:`~allsmi.adapters.recording.damage.Damage` records.
"""

from __future__ import annotations

import itertools
from array import array
from collections.abc import Callable, Hashable, Iterator
from pathlib import Path
from typing import BinaryIO, Final

import attrs

from allsmi.adapters import wire
from allsmi.adapters.recording import seektable
from allsmi.adapters.recording.damage import REGIONS, Damage, DamageKind, DamageLog
from allsmi.adapters.recording.decoding import (
    LineStats,
    RawLine,
    Start,
    checkpoint_spacing,
    decode_blocks,
    decode_with_restarts,
    fast_lines,
    split_lines,
    start_at,
)
from allsmi.adapters.recording.discovery import open_segment
from allsmi.domain.errors import RecordingCorrupt, UnsupportedSchema
from allsmi.domain.model import WRITER_NAME, Header

CHUNK_FRAMES: Final = 1000  # frames per chunk built by a scan
CHUNK_BYTES: Final = 8 * 1024 * 1024  # or fewer, once their lines hold this many bytes
MAX_HEADER_HOSTS: Final = 1024
MARKER_SEARCH: Final = (1 << 20, 8 << 20, 64 << 20)  # tail windows searched for a marker
MARKER_BYTES: Final = seektable.MARKER_MAGIC.to_bytes(4, "little")
TRAILER_BYTES: Final = seektable.encode_trailer(0)[:8]  # magic and payload size
TRAILER_SEARCH: Final = 64 * 1024  # bytes after a trailer that still let it be found

PROGRESS_FRAMES: Final = 4096  # a scan tells its progress this many frames apart
Progress = Callable[[float, int], None]  # fraction of the segment's bytes read, frames met


@attrs.define(eq=False)
class Chunk:
    """A run of frames decodable from ``start``; hashed by identity (a cache key)."""

    segment: int
    start: Start
    first_index: int
    count: int | None  # data frames; None until known
    t_first: int  # ms; the seek key of the chunk's first frame
    seq_first: int | None = None  # the seq its index line promises (our files)
    keys: array[int] | None = None  # per-frame seek keys (running max of t), once known
    times: array[int] | None = None  # per-frame t, once known
    verified: bool = False
    approx: bool = False  # its count came from a bulk scan: reading it may correct it
    span: int | None = None  # decoded bytes of its lines (bulk scan): where reading it stops
    empty: bool = False  # decoding it gave no line at all


@attrs.define
class SegmentInfo:
    """One file of a recording: how it was opened and what reading it found wrong."""

    path: Path
    codec: str
    size: int
    header: Header | None = None
    opened_by: str = "scan"  # "footer" | "markers" | "scan"
    damage: DamageLog = attrs.field(factory=DamageLog)
    runs: int = 1  # headers seen: a concatenated file has several
    run_starts: list[int] = attrs.field(
        factory=list
    )  # frame of the segment each later run starts at
    scans: int = 0  # passes of a scan over it (a second one rebuilt its chunks)
    # per chunk its footer or markers listed: where its stored summary was said to be
    # (docs/recording-format.md §7.4, §7.3); read by adapters.recording.summaries
    summaries: list[seektable.SummaryRef | None] = attrs.field(factory=list)

    @property
    def ours(self) -> bool:
        """Written by allsmi (its header says so): chunks begin at index lines, and time never
        goes back within a run."""
        return self.header is not None and self.header.writer == WRITER_NAME

    def note(self, damage: Damage) -> bool:
        """Keep a damage record; False when it was known already."""
        return self.damage.add(damage)

    def count(self, kind: DamageKind) -> int:
        return self.damage.count(kind)

    def take_stats(self, stats: LineStats) -> list[Damage]:
        """Add what one read of part of this segment noticed; the regions of stored bytes
        that were not known before."""
        return [d for d in stats.records() if self.note(d) and d.kind in REGIONS]


@attrs.define
class SchemaCheck:
    """The first line that carries a schema decides for the whole recording: not 1 →
    unsupported (exit 2)."""

    done: bool = False

    def check(self, lines: list[bytes]) -> None:
        if self.done:
            return
        for raw in lines:
            schema = wire.schema_of(raw)
            if schema is None:
                continue
            self.done = True
            if schema != 1:
                raise UnsupportedSchema(schema)
            return

    def check_unsliced(self, raw: bytes) -> None:
        """A line that is no recording line may still be the first to carry a schema."""
        schema = wire.schema_of(raw)
        if not self.done and schema is not None:
            self.done = True
            if schema != 1:
                raise UnsupportedSchema(schema)


def parse_header(raw: bytes, warnings: list[str]) -> Header | None:
    """A header line, its hosts cut to 1024 (with a warning); None when it is none."""
    try:
        line = wire.decode_line(raw, 1)
    except RecordingCorrupt:
        return None
    if not isinstance(line, Header):
        return None
    if len(line.hosts) > MAX_HEADER_HOSTS:
        warnings.append(f"header lists {len(line.hosts)} hosts; kept the first 1024")
        return attrs.evolve(line, hosts=line.hosts[:MAX_HEADER_HOSTS])
    return line


# --------------------------------------------------------------------------- seek tables


def from_footer(fh: BinaryIO, segment: SegmentInfo, seg_index: int) -> list[Chunk] | None:
    """The chunks the footer's table lists, if the trailer, the table and the first marker
    all check out; the segment is then opened by its footer."""
    found = footer_table(fh, segment.size)
    if found is None:
        return None
    table, table_at, size = found
    first = _marker_at(fh, 0, size)
    if first is None or first[1] != table.chunks[0].offset:
        return None  # the table does not describe this file from its start
    segment.opened_by = "footer"
    segment.summaries = _footer_summaries(table, table_at)
    return [
        Chunk(
            segment=seg_index,
            start=Start(c.offset),
            first_index=0,
            count=c.frames,
            t_first=c.t_ms,
            seq_first=c.seq,
        )
        for c in table.chunks
    ]


def footer_table(fh: BinaryIO, size: int) -> tuple[seektable.Table, int, int] | None:
    """The footer's table of the zstd segment ``fh`` of ``size`` stored bytes, where it lies,
    and where the trailer ends; None unless the trailer and a table listing increasing chunk
    offsets check out (whether the table describes the file is :func:`from_footer`'s)."""
    end = _trailer_end(fh, size)
    if end is None:
        return None
    fh.seek(end - seektable.TRAILER_SIZE)
    table_at = seektable.decode_trailer(fh.read(seektable.TRAILER_SIZE))
    if table_at is None or not 0 <= table_at < end - seektable.TRAILER_SIZE:
        return None
    fh.seek(table_at)
    head = seektable.read_head(fh.read(8))
    if head is None or head[0] != seektable.TABLE_MAGIC:
        return None
    if head[1] > min(seektable.MAX_TABLE_PAYLOAD, end):
        return None
    table = seektable.decode_table(fh.read(head[1]))
    if (
        table is None
        or not table.chunks
        or not _increasing([c.offset for c in table.chunks], table_at)
    ):
        return None
    return table, table_at, end


def from_markers(fh: BinaryIO, segment: SegmentInfo, seg_index: int) -> list[Chunk] | None:
    """The chunks of the marker chain that ends at the last marker near the file's end, if
    it reaches back to the file's start; the segment is then opened by its markers. The last
    chunk's count is unknown until it is read."""
    size = segment.size
    last = _find_last_marker(fh, size)
    if last is None:
        return None
    found: list[tuple[int, seektable.Marker, int]] = []  # (marker offset, marker, chunk)
    at, marker, chunk_at = last
    seen = 0
    while True:
        found.append((at, marker, chunk_at))
        seen += 1
        if marker.prev < 0:
            break
        if marker.prev >= at or seen > size // 8:
            return None
        step = _marker_at(fh, marker.prev, size)
        if step is None:
            return None
        at, marker, chunk_at = marker.prev, step[0], step[1]
    if at != 0:
        return None  # the chain starts mid-file: something precedes it (a `cat`?)
    found.reverse()
    refs: list[seektable.SummaryRef | None] = []
    chunks = []
    for n, (_, mark, chunk_offset) in enumerate(found):
        following = found[n + 1][1].seq if n + 1 < len(found) else None
        count = following - mark.seq if following is not None else None
        if count is not None and not 0 < count <= seektable.MAX_CHUNK_FRAMES:
            return None
        summary_at = found[n + 1][1].sum if n + 1 < len(found) else -1
        refs.append(
            None
            if count is None or summary_at < 0
            else seektable.SummaryRef(
                offset=summary_at,
                size=None,
                after=chunk_offset,
                before=found[n + 1][0],
                t_lo=mark.t_ms,
                t_hi=found[n + 1][1].t_ms,
                frames=count,
            )
        )
        chunks.append(
            Chunk(
                segment=seg_index,
                start=Start(chunk_offset),
                first_index=0,
                count=count,
                t_first=mark.t_ms,
                seq_first=mark.seq,
            )
        )
    segment.opened_by = "markers"
    segment.summaries = refs
    return chunks


def _footer_summaries(table: seektable.Table, table_at: int) -> list[seektable.SummaryRef | None]:
    """Where the table says each chunk's summary frame is (none for a table without the
    ``summaries`` key: a file written before them)."""
    chunks = table.chunks
    if not table.summaries:
        return [None] * len(chunks)
    refs: list[seektable.SummaryRef | None] = []
    for n, (chunk, entry) in enumerate(zip(chunks, table.summaries, strict=True)):
        last = n + 1 == len(chunks)
        refs.append(
            None
            if entry is None
            else seektable.SummaryRef(
                offset=entry[0],
                size=entry[1],
                after=chunk.offset,
                before=table_at if last else chunks[n + 1].offset,
                t_lo=chunk.t_ms,
                t_hi=table.last_t_ms if last else chunks[n + 1].t_ms,
                frames=chunk.frames,
            )
        )
    return refs


# --------------------------------------------------------------------------- the scan


@attrs.define
class FrameLog:
    """Every frame's time and ``seq`` in the order one scan met them (``-1``: no ``seq``),
    and, when ``read`` is given, what it makes of each frame's line (kept once per distinct
    value: a million frames of one host cost an index each). ``allsmi verify`` keeps one per
    scanned segment, so its walk over every frame reads these instead of decoding the
    segment a second time (docs/architecture.md §3.1)."""

    times: array[int] = attrs.Factory(lambda: array("q"))
    seqs: array[int] = attrs.Factory(lambda: array("q"))
    read: Callable[[bytes], Hashable] | None = None
    values: list[Hashable] = attrs.Factory(list)  # the distinct values read, first met first
    of_frame: array[int] = attrs.Factory(lambda: array("I"))  # each frame's, by position
    _ids: dict[Hashable, int] = attrs.Factory(dict)

    def keep(self, raw: bytes) -> None:
        """Log what ``read`` makes of the next frame's line."""
        assert self.read is not None
        value = self.read(raw)
        at = self._ids.get(value)
        if at is None:
            at = self._ids[value] = len(self.values)
            self.values.append(value)
        self.of_frame.append(at)

    def value(self, frame: int) -> Hashable:
        """What ``read`` made of the line of the ``frame``-th frame logged."""
        return self.values[self.of_frame[frame]]


def scan(
    fh: BinaryIO,
    segment: SegmentInfo,
    seg_index: int,
    *,
    key_before: int | None,
    schema: SchemaCheck,
    warnings: list[str],
    progress: Progress | None = None,
    log: FrameLog | None = None,
) -> list[Chunk]:
    """The chunks of one pass over the whole segment, every frame's time and seek key known
    (keys continue from ``key_before``). What the pass finds wrong replaces what earlier
    reads of the segment found (it sees all of it again). Each frame met is appended to
    ``log`` when one is given."""
    segment.opened_by = "scan"
    segment.scans += 1
    stats = LineStats()
    chunks: list[Chunk] = []
    current: Chunk | None = None
    times: list[int] = []
    keys: list[int] = []
    key = key_before
    headers = frames = held = corrupt = 0  # held: bytes of the current chunk's lines
    segment.run_starts = []
    every = checkpoint_spacing(segment.size)
    blocks = decode_with_restarts(fh, segment.codec, Start(0), stats, checkpoint_every=every)
    for line in split_lines(blocks, stats, Start(0)):
        info = wire.slice_line(line.raw)
        if info is None:
            schema.check_unsliced(line.raw)
            corrupt += 1
            continue
        if not schema.done:
            schema.check([line.raw])
        if info.kind == wire.KIND_HEADER:
            headers += 1
            if headers > 1:
                segment.run_starts.append(frames)
            if segment.header is None:
                segment.header = parse_header(line.raw, warnings)
            continue
        if info.kind in (wire.KIND_INDEX, wire.KIND_OTHER):
            continue
        t_ms = info.t_ms
        assert t_ms is not None
        frames += 1
        key = t_ms if key is None else max(key, t_ms)
        if current is None or len(times) >= CHUNK_FRAMES or held >= CHUNK_BYTES:
            _close_scan_chunk(current, times, keys)
            held = 0
            current = Chunk(
                segment=seg_index,
                start=_start_for(segment.codec, line),
                first_index=0,
                count=None,
                t_first=key,
            )
            chunks.append(current)
            times, keys = [], []
        times.append(t_ms)
        keys.append(key)
        held += len(line.raw)
        if log is not None:
            log.times.append(t_ms)
            log.seqs.append(-1 if info.seq is None else info.seq)
            if log.read is not None:
                log.keep(line.raw)
        if progress and not frames % PROGRESS_FRAMES:  # the caller's line limits its draws
            progress(min(1.0, fh.tell() / max(1, segment.size)), frames)
    _close_scan_chunk(current, times, keys)
    segment.runs = max(1, headers)
    if corrupt:
        segment.note(Damage(DamageKind.CORRUPT_LINE, corrupt))
    segment.damage.forget((DamageKind.OVERSIZED_LINE, DamageKind.TORN_TAIL, *REGIONS))
    segment.take_stats(stats)
    found = stats.records()  # a torn line is told only when no cut inside a block holds it
    if any(d.kind is DamageKind.TORN_TAIL for d in found):
        warnings.append(Damage(DamageKind.TORN_TAIL).describe(segment.path.name))
    warnings += [d.describe(segment.path.name) for d in stats.damage]
    return chunks


# --------------------------------------------------------------------------- one chunk


def read_chunk(
    segment: SegmentInfo, chunk: Chunk, stats: LineStats, *, last: bool, warnings: list[str]
) -> tuple[list[bytes], list[int]]:
    """The data lines of a chunk and their times. A chunk that a seek table promised must
    open with its index line; if the bytes there say otherwise, it yields nothing (and says
    so: the table is damaged) rather than frames from the wrong place. The ``last`` chunk of
    its segment must not run into another chunk (a table that left chunks out), and may hold
    nothing at all (a crash right after its marker): that is no lie."""
    lines: list[bytes] = []
    times: list[int] = []
    promised = chunk.seq_first is not None
    corrupt = 0  # lines that are no recording line (a bulk scan counted them as frames)
    chunk.empty = True
    # An exact count (a scan's) may end the read; a bulk scan's span always does.
    limit = chunk.count if not (promised or chunk.approx) else None
    with open_segment(segment.path) as fh:
        for raw in _chunk_lines(fh, segment, chunk.start, stats, chunk.span):
            if not raw:  # a "\r\n" alone: an empty line is no line, as the scan's splitter says
                continue
            chunk.empty = False
            if chunk.verified or not promised:
                t_ms = wire.data_time(raw)  # the common line: no full slice needed
                if t_ms is not None:
                    lines.append(raw)
                    times.append(t_ms)
                    if limit is not None and len(lines) >= limit:
                        break
                    continue
            info = wire.slice_line(raw)
            corrupt += info is None
            if info is None or info.kind in (wire.KIND_HEADER, wire.KIND_OTHER):
                continue
            if info.kind == wire.KIND_INDEX:
                if not promised:
                    continue
                if lines or info.seq != chunk.seq_first:
                    # the next chunk begins (or this one is not what it said)
                    chunk.verified = chunk.verified and not last
                    break
                chunk.verified = True
                continue
            if promised and not chunk.verified:
                break
            assert info.t_ms is not None
            lines.append(raw)
            times.append(info.t_ms)
            if limit is not None and len(lines) >= limit:
                break
    if corrupt and chunk.approx and chunk.keys is None:  # first read: the scan never saw them
        segment.note(Damage(DamageKind.CORRUPT_LINE, corrupt))
    if promised and not chunk.verified and not (last and chunk.empty):
        segment.note(Damage(DamageKind.TABLE_DAMAGED))
        warnings.append(
            f"{segment.path.name}: seek table points at the wrong bytes near frame "
            f"{chunk.first_index}; the file was scanned instead"
        )
    return lines, times


def first_lines(segment: SegmentInfo, chunk: Chunk, warnings: list[str]) -> list[bytes]:
    """The first two lines of ``chunk``; a header among them becomes the segment's."""
    out = []
    with open_segment(segment.path) as fh:
        for raw in _chunk_lines(fh, segment, chunk.start, LineStats()):
            out.append(raw)
            if len(out) >= 2:
                break
    info = wire.slice_line(out[0]) if out else None
    if info is not None and info.kind == wire.KIND_HEADER:
        segment.header = parse_header(out[0], warnings)
    return out


def running_max(times: list[int], before: int | None) -> array[int]:
    """Seek keys of frames at ``times``: the running maximum of ``t``, continuing from the
    key ``before`` them (None at the very start)."""
    keys = array("q")
    key = before
    for t in times:
        key = t if key is None or t > key else key
        keys.append(key)
    return keys


# --------------------------------------------------------------------------- helpers


def _chunk_lines(
    fh: BinaryIO, segment: SegmentInfo, start: Start, stats: LineStats, span: int | None = None
) -> Iterator[bytes]:
    """A chunk's lines; a scanned segment (damaged, or foreign) is decoded carefully. With a
    ``span``, only the lines within that many decoded bytes (a bulk-scanned chunk's own)."""
    careful = segment.opened_by == "scan"
    blocks = decode_blocks(fh, segment.codec, start, stats, careful=careful)
    return fast_lines(blocks if span is None else _within(blocks, span), stats)


def _within(blocks: Iterator[bytes], span: int) -> Iterator[bytes]:
    """The first ``span`` decoded bytes of ``blocks``."""
    left = span
    for data in blocks:
        if len(data) >= left:
            yield data[:left]
            return
        left -= len(data)
        yield data


def _start_for(codec_name: str, line: RawLine) -> Start:
    return start_at(codec_name, line.restart, line.restart_position, line.position)


def _close_scan_chunk(chunk: Chunk | None, times: list[int], keys: list[int]) -> None:
    if chunk is not None:
        chunk.count = len(times)
        chunk.times = array("q", times)
        chunk.keys = array("q", keys)


def _trailer_end(fh: BinaryIO, size: int) -> int | None:
    """Where the file's trailer ends: at the end, or before bytes added after it (zeros
    that a power cut leaves, junk); None when there is no trailer to try. The table it
    points at is validated like any other."""
    if size < seektable.TRAILER_SIZE:
        return None
    begin = max(0, size - TRAILER_SEARCH)
    fh.seek(begin)
    tail = fh.read(size - begin)
    at = tail.rfind(TRAILER_BYTES, 0, len(tail) - seektable.TRAILER_SIZE + len(TRAILER_BYTES))
    return begin + at + seektable.TRAILER_SIZE if at >= 0 else size


def _increasing(offsets: list[int], limit: int) -> bool:
    return all(0 <= a < b for a, b in itertools.pairwise(offsets)) and (
        offsets[0] >= 0 and offsets[-1] < limit
    )


def _marker_at(fh: BinaryIO, offset: int, size: int) -> tuple[seektable.Marker, int] | None:
    """The marker at ``offset`` and the offset of the chunk after it, if both check out."""
    fh.seek(offset)
    head = fh.read(8)
    parsed = seektable.read_head(head)
    if parsed is None or parsed[0] != seektable.MARKER_MAGIC:
        return None
    if parsed[1] > seektable.MAX_MARKER_PAYLOAD:
        return None
    marker = seektable.decode_marker(fh.read(parsed[1]))
    chunk_at = offset + 8 + parsed[1]
    if marker is None or chunk_at + 4 > size or fh.read(4) != seektable.ZSTD_MAGIC:
        return None
    return marker, chunk_at


def _find_last_marker(fh: BinaryIO, size: int) -> tuple[int, seektable.Marker, int] | None:
    """Search the file's tail, in growing windows, for the last valid marker."""
    for window in MARKER_SEARCH:
        begin = max(0, size - window)
        fh.seek(begin)
        data = fh.read(size - begin)
        at = len(data)
        while (at := data.rfind(MARKER_BYTES, 0, at)) >= 0:
            found = _marker_at(fh, begin + at, size)
            if found is not None:
                return begin + at, found[0], found[1]
        if begin == 0:
            return None
    return None
