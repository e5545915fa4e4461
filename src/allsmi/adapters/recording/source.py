"""The seekable file source: random access to the frames of a recording (DESIGN.md §4).

Theory of operation. A recording (one file, or a rotated set chained oldest first) is seen
as a list of *chunks*: runs of data lines decodable from a known :class:`Start`. Frames are
addressed by their ordinal *index* across the whole set (0 … N−1), so frames that share a
timestamp, and recordings whose ``seq`` has gaps (``jq``-filtered, evicted), step one by one.
Each chunk knows its first index, its frame count and its first time; the per-frame times of
a chunk are learned when it is first decoded (or during a scan) and kept — 8 bytes a frame.
Raw lines live in a byte-limited LRU cache; only the frame asked for is structured.

Opening, per segment, cheapest first:
1. our zstd file with a footer: the trailer points at the chunk table — O(1);
2. our zstd file without one (a crash, or still recording): the last marker near the end,
   then its ``prev`` chain — O(chunks), nothing decompressed but the last chunk;
3. anything else (gzip, plain, all-smi files, damaged files): one scan, with progress,
   keeping restart points (member starts, zlib checkpoints every ~16 MiB, plain offsets).
Offsets read from a file are never trusted: a chunk whose bytes do not decode to the index
line it promises sends its segment to the scan path.

Seeking by time uses a non-decreasing key (the running maximum of ``t``), so a
concatenated file whose clock goes back still bisects; the frame shows its own ``t``.
"""

from __future__ import annotations

import bisect
import itertools
import os
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, Final

import attrs

from allsmi.adapters import wire
from allsmi.adapters.recording import seektable
from allsmi.adapters.recording.decoding import (
    Damage,
    LineStats,
    RawLine,
    Start,
    decode_blocks,
    decode_with_restarts,
    fast_lines,
    sniff,
    split_lines,
    start_at,
)
from allsmi.adapters.recording.files import require_regular_file
from allsmi.domain.errors import RecordingCorrupt, RecordingUnreadable, UnsupportedSchema
from allsmi.domain.model import Frame, Header
from allsmi.domain.segments import numbered_segments, segment_number

CHUNK_FRAMES: Final = 1000  # frames per chunk built by a scan
CHUNK_BYTES: Final = 8 * 1024 * 1024  # or fewer, once their lines hold this many bytes
CACHE_BYTES: Final = 48 * 1024 * 1024  # raw lines kept; the 1M-frame bench peaks < 100 MB
MAX_HEADER_HOSTS: Final = 1024
MARKER_SEARCH: Final = (1 << 20, 8 << 20, 64 << 20)  # tail windows searched for a marker
MARKER_BYTES: Final = seektable.MARKER_MAGIC.to_bytes(4, "little")
TRAILER_BYTES: Final = seektable.encode_trailer(0)[:8]  # magic and payload size
TRAILER_SEARCH: Final = 64 * 1024  # bytes after a trailer that still let it be found
_DATA_PREFIX: Final = b'{"schema":1,"t":"'

Progress = Callable[[float], None]


@attrs.define(eq=False)
class Chunk:
    segment: int
    start: Start
    first_index: int
    count: int | None  # data frames; None until known
    t_first: int  # ms; the seek key of the chunk's first frame
    seq_first: int | None = None  # the seq its index line promises (our files)
    keys: array[int] | None = None  # per-frame seek keys (running max of t), once known
    times: array[int] | None = None  # per-frame t, once known
    verified: bool = False
    empty: bool = False  # decoding it gave no line at all


@attrs.define
class SegmentInfo:
    path: Path
    codec: str
    size: int
    header: Header | None = None
    opened_by: str = "scan"  # "footer" | "markers" | "scan"
    corrupt_lines: int = 0
    oversized_lines: int = 0
    torn_tail: bool = False
    damage: list[Damage] = attrs.field(factory=list)  # stored bytes that did not decode
    cut_short: bool = False  # ends inside a compressed unit: a crash, or still recording
    runs: int = 1  # headers seen: a concatenated file has several
    run_starts: list[int] = attrs.field(
        factory=list
    )  # frame of the segment each later run starts at
    table_damaged: bool = False  # a seek table pointed at the wrong bytes: scanned instead
    short_chunks: int = 0  # chunks that held fewer frames than their table promised

    def take_stats(self, stats: LineStats) -> list[Damage]:
        """Add what one read of part of this segment noticed; the damage not known before."""
        self.oversized_lines += stats.oversized
        self.torn_tail |= stats.torn_tail
        self.cut_short |= stats.cut_short
        new = [d for d in stats.damage if d not in self.damage]
        self.damage += new
        return new


class RecordingSource:
    """Stateless random access to the frames of the recording at ``path``."""

    def __init__(
        self, path: Path, *, cache_bytes: int = CACHE_BYTES, progress: Progress | None = None
    ) -> None:
        self.path = path
        self.segments: list[SegmentInfo] = []
        self.chunks: list[Chunk] = []
        # Keyed by the chunk itself, never by its position: positions shift as chunks are
        # adopted, dropped or rescanned, and a stale entry would answer for another chunk.
        self._cache: OrderedDict[Chunk, list[bytes]] = OrderedDict()
        self._cache_bytes = 0
        self._cache_limit = cache_bytes
        self._progress = progress
        self.warnings: list[str] = []
        self.schema_checked = False
        self._first_indexes: list[int] = []
        self._first_keys: list[int] = []
        self._opening = True
        self.generation = 0  # bumps when the timeline is rebuilt (a damaged seek table)
        for seg_path in discover(path):
            self._open_segment(seg_path)
        self._renumber()
        self._opening = False
        if self.frame_count == 0:
            raise RecordingUnreadable(f"no frames in {path}")

    def close(self) -> None:
        """Release what the source holds open (a followed file's tail)."""
        return None

    def __enter__(self) -> RecordingSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- the timeline

    @property
    def frame_count(self) -> int:
        if not self.chunks:
            return 0
        last = self.chunks[-1]
        return last.first_index + (last.count or 0)

    @property
    def header(self) -> Header | None:
        return next((s.header for s in self.segments if s.header is not None), None)

    @property
    def first_t_ms(self) -> int:
        return self.time_at(0)

    @property
    def last_t_ms(self) -> int:
        return self.time_at(self.frame_count - 1)

    @property
    def duration_ms(self) -> int:
        return max(0, self.key_at(self.frame_count - 1) - self.key_at(0))

    @property
    def skipped_lines(self) -> int:
        return sum(s.corrupt_lines + s.oversized_lines for s in self.segments)

    def segment_of(self, index: int) -> int:
        """The position in :attr:`segments` of the file frame ``index`` comes from."""
        at, _ = self._locate(index)
        return self.chunks[at].segment

    def chunk_starts(self) -> list[tuple[int, int]]:
        """(first index, first seek key) of every chunk: the coarse timeline."""
        return [(c.first_index, c.t_first) for c in self.chunks]

    def time_at(self, index: int) -> int:
        at, pos = self._locate(index)
        times = self.chunks[at].times
        assert times is not None
        return times[pos]

    def key_at(self, index: int) -> int:
        at, pos = self._locate(index)
        keys = self.chunks[at].keys
        assert keys is not None
        return keys[pos]

    def index_at_or_before(self, t_ms: int) -> int:
        """The last frame whose time is ≤ ``t_ms`` (the first frame when none is)."""
        generation = self.generation
        at = max(0, bisect.bisect_right(self._first_keys, t_ms) - 1)
        while True:
            chunk = self._loaded(at)
            if self.generation != generation:
                return self.index_at_or_before(t_ms)  # rebuilt under us: look again
            if chunk.count or at == 0:
                break
            at -= 1  # a chunk that turned out empty: look at the one before
        assert chunk.keys is not None
        pos = bisect.bisect_right(chunk.keys, t_ms) - 1
        return min(self.frame_count - 1, chunk.first_index + max(0, pos))

    def raw(self, index: int) -> bytes:
        while True:
            at, pos = self._locate(index)
            lines = self._lines(at)
            if pos < len(lines):
                return lines[pos]
            # Read again, it held fewer lines than counted: the lines are the truth (each
            # turn shrinks the timeline, so this ends).
            chunk = self.chunks[at]
            if chunk.count != len(lines):
                chunk.count = len(lines)
                if chunk.keys is not None and chunk.times is not None:
                    del chunk.keys[len(lines) :], chunk.times[len(lines) :]
                self._renumber()
                self.generation += 1
            index = min(index, self.frame_count - 1)

    def frame(self, index: int) -> Frame:
        """The structured frame at ``index``; a line that will not structure becomes an
        errors-only frame at its time, so replay shows a gap rather than stopping."""
        raw = self.raw(index)
        try:
            line = wire.decode_line(raw, index + 1)
        except (RecordingCorrupt, UnsupportedSchema) as err:
            return Frame(t_ms=self.time_at(index), errors=(f"unreadable frame: {err}",))
        if not isinstance(line, Frame):
            return Frame(t_ms=self.time_at(index), errors=("unreadable frame",))
        return line

    # ----------------------------------------------------------------- locating

    def _locate(self, index: int) -> tuple[int, int]:
        """(chunk position, position in chunk) of frame ``index``, its chunk decoded. When
        reading a chunk shows it held fewer frames than counted and the timeline shrinks
        past ``index``, the last frame that remains stands in for it."""
        if not 0 <= index < self.frame_count:
            raise IndexError(f"frame {index} outside 0..{self.frame_count - 1}")
        while True:
            if index >= self.frame_count > 0:
                index = self.frame_count - 1
            if not 0 <= index < self.frame_count:
                raise IndexError(f"frame {index} outside 0..{self.frame_count - 1}")
            generation = self.generation
            at = bisect.bisect_right(self._first_indexes, index) - 1
            chunk = self._loaded(at)
            if self.generation != generation:
                continue  # the timeline was rebuilt while decoding: look again
            if chunk.count is not None and index - chunk.first_index < chunk.count:
                return at, index - chunk.first_index
            # the chunk held fewer frames than promised: the timeline was renumbered

    def _loaded(self, at: int) -> Chunk:
        """Chunk ``at`` with its times known (decoding it if needed)."""
        chunk = self.chunks[at]
        if chunk.keys is None:
            self._lines(at)
            chunk = self.chunks[min(at, len(self.chunks) - 1)]
        return chunk

    def _lines(self, at: int) -> list[bytes]:
        chunk = self.chunks[at]
        lines = self._cache.get(chunk)
        if lines is not None:
            self._cache.move_to_end(chunk)
            return lines
        stats = LineStats()
        last = at + 1 == len(self.chunks) or self.chunks[at + 1].segment != chunk.segment
        lines, times = self._decode_chunk(chunk, stats, last=last)
        if chunk.seq_first is not None and not chunk.verified and not self._opening:
            self._rescan(chunk.segment)
            return self._lines(min(at, len(self.chunks) - 1))
        first_read = chunk.keys is None
        changed = chunk.count is not None and chunk.count != len(lines)
        if changed:
            self.segments[chunk.segment].short_chunks += first_read
            self.warnings.append(
                f"chunk at frame {chunk.first_index} held {len(lines)} frames, "
                f"{chunk.count} promised"
            )
        chunk.count = len(lines)
        if first_read:  # what the first read of this chunk noticed counts
            segment = self.segments[chunk.segment]
            new = segment.take_stats(stats)
            self.warnings += [d.describe(segment.path.name) for d in new]
        if first_read or changed:  # times learned before no longer match these lines
            chunk.times = array("q", times)
            chunk.keys = _running_max(times, self._key_before(at))
        self._renumber()
        self._remember(chunk, lines)
        return lines

    def _key_before(self, at: int) -> int | None:
        """The seek key that chunk ``at`` continues from: the last key before it (the
        running maximum of ``t`` across chunks), None at the very start."""
        if at <= 0 or not self.chunks:
            return None
        before = self.chunks[min(at, len(self.chunks)) - 1]
        return before.keys[-1] if before.keys else before.t_first

    def _remember(self, chunk: Chunk, lines: list[bytes]) -> None:
        self._cache[chunk] = lines
        self._cache_bytes += sum(map(len, lines))
        while self._cache_bytes > self._cache_limit and len(self._cache) > 1:
            _, dropped = self._cache.popitem(last=False)
            self._cache_bytes -= sum(map(len, dropped))

    def _forget_lines(self, chunks: list[Chunk]) -> None:
        """Drop the cached lines of ``chunks`` (leaving the timeline)."""
        for chunk in chunks:
            dropped = self._cache.pop(chunk, None)
            if dropped is not None:
                self._cache_bytes -= sum(map(len, dropped))

    def _renumber(self) -> None:
        index = 0
        for chunk in self.chunks:
            chunk.first_index = index
            index += chunk.count or 0
        self._first_indexes = [c.first_index for c in self.chunks]
        self._first_keys = [c.t_first for c in self.chunks]

    # ----------------------------------------------------------------- decoding chunks

    def _decode_chunk(
        self, chunk: Chunk, stats: LineStats, *, last: bool
    ) -> tuple[list[bytes], list[int]]:
        """The data lines of a chunk and their times. A chunk that a seek table promised
        must open with its index line; if the bytes there say otherwise, it yields nothing
        (and says so) rather than frames from the wrong place. The ``last`` chunk of its
        segment must not run into another chunk (a table that left chunks out), and may
        hold nothing at all (a crash right after its marker): that is no lie."""
        segment = self.segments[chunk.segment]
        lines: list[bytes] = []
        times: list[int] = []
        promised = chunk.seq_first is not None
        chunk.empty = True
        with _open_segment(segment.path) as fh:
            for raw in _chunk_lines(fh, segment, chunk.start, stats):
                chunk.empty = False
                if raw.startswith(_DATA_PREFIX) and (chunk.verified or not promised):
                    t_ms = wire.data_time(raw)  # the common line: no full slice needed
                    if t_ms is not None:
                        lines.append(raw)
                        times.append(t_ms)
                        if not promised and chunk.count is not None and len(lines) >= chunk.count:
                            break
                        continue
                info = wire.slice_line(raw)
                if info is None or info.kind == wire.KIND_HEADER:
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
                if not promised and chunk.count is not None and len(lines) >= chunk.count:
                    break
        if promised and not chunk.verified and not (last and chunk.empty):
            segment.table_damaged = True
            self.warnings.append(
                f"{segment.path.name}: seek table points at the wrong bytes near frame "
                f"{chunk.first_index}; the file was scanned instead"
            )
        return lines, times

    def _rescan(self, seg_index: int) -> None:
        """Replace a segment's seek-table chunks by the chunks of one scan of it."""
        segment = self.segments[seg_index]
        with _open_segment(segment.path) as fh:
            first = next(i for i, c in enumerate(self.chunks) if c.segment == seg_index)
            scanned = self._scan(fh, seg_index, key_before=self._key_before(first))
        last = max(i for i, c in enumerate(self.chunks) if c.segment == seg_index)
        self.chunks[first : last + 1] = scanned
        self._cache.clear()
        self._cache_bytes = 0
        self._renumber()
        self.generation += 1

    # ----------------------------------------------------------------- opening

    def _open_segment(self, path: Path) -> None:
        try:
            size = path.stat().st_size
            with open(path, "rb") as fh:
                codec_name = sniff(fh.read(8))
                segment = SegmentInfo(path=path, codec=codec_name, size=size)
                self.segments.append(segment)
                seg_index = len(self.segments) - 1
                chunks = None
                if codec_name == "zstd":
                    chunks = self._from_footer(fh, seg_index) or self._from_markers(fh, seg_index)
                if chunks is None or not self._adopt(seg_index, chunks):
                    self.chunks.extend(self._scan(fh, seg_index, self._last_key()))
                    self._renumber()
        except OSError as err:
            raise RecordingUnreadable(f"cannot read {path}: {err.strerror or err}") from None

    def _adopt(self, seg_index: int, chunks: list[Chunk]) -> bool:
        """Take chunks found by the seek table if the first (and an open last) decode as
        promised; otherwise leave the segment to the scan."""
        before = len(self.chunks)
        self.chunks.extend(chunks)
        self._renumber()
        self._check_schema(self._first_lines(seg_index, chunks[0]))
        ends = {before, len(self.chunks) - 1}
        for at in sorted(ends):
            self._lines(at)
        end = self.chunks[-1]
        opened_by = self.segments[seg_index].opened_by
        if len(self.chunks) - 1 > before and opened_by == "markers" and end.empty:
            self._forget_lines([self.chunks.pop()])  # cut right after its marker: no frame
            self._renumber()
            ends = {before}
        if all(self.chunks[at].verified for at in ends):
            return True
        del self.chunks[before:]
        self._forget_lines(chunks)
        self._renumber()
        self.segments[seg_index].table_damaged = True
        self.warnings.append(f"{self.segments[seg_index].path.name}: seek table damaged; scanned")
        return False

    def _first_lines(self, seg_index: int, chunk: Chunk) -> list[bytes]:
        segment = self.segments[seg_index]
        out = []
        with _open_segment(segment.path) as fh:
            for raw in _chunk_lines(fh, segment, chunk.start, LineStats()):
                out.append(raw)
                if len(out) >= 2:
                    break
        info = wire.slice_line(out[0]) if out else None
        if info is not None and info.kind == wire.KIND_HEADER:
            segment.header = self._header(out[0])
        return out

    def _header(self, raw: bytes) -> Header | None:
        try:
            line = wire.decode_line(raw, 1)
        except RecordingCorrupt:
            return None
        if not isinstance(line, Header):
            return None
        if len(line.hosts) > MAX_HEADER_HOSTS:
            self.warnings.append(f"header lists {len(line.hosts)} hosts; kept the first 1024")
            return attrs.evolve(line, hosts=line.hosts[:MAX_HEADER_HOSTS])
        return line

    def _check_schema(self, lines: list[bytes]) -> None:
        """The first line that carries a schema decides: not 1 → unsupported (exit 2)."""
        if self.schema_checked:
            return
        for raw in lines:
            schema = wire.schema_of(raw)
            if schema is None:
                continue
            self.schema_checked = True
            if schema != 1:
                raise UnsupportedSchema(schema)
            return

    def _from_footer(self, fh: BinaryIO, seg_index: int) -> list[Chunk] | None:
        size = _trailer_end(fh, self.segments[seg_index].size)
        if size is None:
            return None
        fh.seek(size - seektable.TRAILER_SIZE)
        table_at = seektable.decode_trailer(fh.read(seektable.TRAILER_SIZE))
        if table_at is None or not 0 <= table_at < size - seektable.TRAILER_SIZE:
            return None
        fh.seek(table_at)
        head = seektable.read_head(fh.read(8))
        if head is None or head[0] != seektable.TABLE_MAGIC:
            return None
        if head[1] > min(seektable.MAX_TABLE_PAYLOAD, size):
            return None
        table = seektable.decode_table(fh.read(head[1]))
        if (
            table is None
            or not table.chunks
            or not _increasing([c.offset for c in table.chunks], table_at)
        ):
            return None
        first = _marker_at(fh, 0, size)
        if first is None or first[1] != table.chunks[0].offset:
            return None  # the table does not describe this file from its start
        self.segments[seg_index].opened_by = "footer"
        chunks = [
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
        return chunks

    def _from_markers(self, fh: BinaryIO, seg_index: int) -> list[Chunk] | None:
        size = self.segments[seg_index].size
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
        chunks = []
        for n, (_, mark, chunk_offset) in enumerate(found):
            following = found[n + 1][1].seq if n + 1 < len(found) else None
            count = following - mark.seq if following is not None else None
            if count is not None and not 0 < count <= seektable.MAX_CHUNK_FRAMES:
                return None
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
        self.segments[seg_index].opened_by = "markers"
        return chunks

    # ----------------------------------------------------------------- the scan

    def _scan(self, fh: BinaryIO, seg_index: int, key_before: int | None = None) -> list[Chunk]:
        segment = self.segments[seg_index]
        segment.opened_by = "scan"
        stats = LineStats()
        chunks: list[Chunk] = []
        current: Chunk | None = None
        times: list[int] = []
        keys: list[int] = []
        key = key_before
        headers = frames = held = 0  # held: bytes of the current chunk's lines
        segment.run_starts = []
        reported = 0
        blocks = decode_with_restarts(fh, segment.codec, Start(0), stats)
        for line in split_lines(blocks, stats, Start(0)):
            info = wire.slice_line(line.raw)
            if info is None:
                self._check_bad_schema_line(line.raw, segment)
                continue
            if not self.schema_checked:
                self._check_schema([line.raw])
            if info.kind == wire.KIND_HEADER:
                headers += 1
                if headers > 1:
                    segment.run_starts.append(frames)
                if segment.header is None:
                    segment.header = self._header(line.raw)
                continue
            if info.kind == wire.KIND_INDEX:
                continue
            t_ms = info.t_ms
            assert t_ms is not None
            frames += 1
            key = t_ms if key is None else max(key, t_ms)
            if current is None or len(times) >= CHUNK_FRAMES or held >= CHUNK_BYTES:
                _close_scan_chunk(current, times, keys)
                held = 0
                start = _start_for(segment.codec, line)
                current = Chunk(
                    segment=seg_index, start=start, first_index=0, count=None, t_first=key
                )
                chunks.append(current)
                times, keys = [], []
            times.append(t_ms)
            keys.append(key)
            held += len(line.raw)
            if self._progress and fh.tell() - reported > (8 << 20):
                reported = fh.tell()
                self._progress(min(1.0, reported / max(1, segment.size)))
        _close_scan_chunk(current, times, keys)
        segment.runs = max(1, headers)
        segment.oversized_lines, segment.torn_tail, segment.damage = 0, False, []
        segment.take_stats(stats)
        if stats.torn_tail:
            self.warnings.append(f"{segment.path.name}: torn last line dropped")
        self.warnings += [d.describe(segment.path.name) for d in stats.damage]
        return chunks

    def _last_key(self) -> int | None:
        return self._key_before(len(self.chunks))

    def _check_bad_schema_line(self, raw: bytes, segment: SegmentInfo) -> None:
        schema = wire.schema_of(raw)
        if not self.schema_checked and schema is not None:
            self.schema_checked = True
            if schema != 1:
                raise UnsupportedSchema(schema)
        segment.corrupt_lines += 1


# --------------------------------------------------------------------------- helpers


def _open_segment(path: Path) -> BinaryIO:
    """A segment that vanished under a reader (a running recorder evicted it) is one clear
    error, not a traceback."""
    try:
        return open(path, "rb")
    except OSError as err:
        raise RecordingUnreadable(
            f"{path.name} is gone ({err.strerror}): evicted by a running recorder? "
            "replay a growing recording with --follow"
        ) from None


def discover(path: Path) -> list[Path]:
    """The files of the recording named ``path``, oldest first (DESIGN.md §4, Reading).

    ``PATH``'s numbered segments, then ``PATH`` itself (also when it is missing). A numbered
    segment given directly is read alone — unless it has numbered segments of its own, as
    ``run.2026.ndjson`` (rotating to ``run.0001.2026.ndjson``) does.
    """
    parent = path.parent
    if path.is_dir():
        raise RecordingUnreadable(f"{path} is a directory, not a recording")
    try:
        names = os.listdir(parent)
    except OSError as err:
        raise RecordingUnreadable(f"cannot read {parent}: {err.strerror}") from None
    own = numbered_segments(path.name, names)
    if not own and segment_number_of(path) is not None:
        if not path.exists():
            raise RecordingUnreadable(f"no such recording: {path}")
        require_regular_file(path, "recording")
        return [path]
    files = [parent / name for _, name in own]
    if path.exists():
        files.append(path)
    if not files:
        raise RecordingUnreadable(f"no such recording: {path}")
    for file in files:  # a FIFO or a device would never end (or never begin)
        require_regular_file(file, "recording")
    return files


def segment_number_of(path: Path) -> int | None:
    """If ``path`` looks like ``name.NNNN.ext`` of an existing set, its number."""
    parts = path.name.split(".")
    for i in range(1, len(parts)):
        if len(parts[i]) >= 4 and parts[i].isdigit():
            active = ".".join(parts[:i] + parts[i + 1 :])
            if segment_number(active, path.name) is not None:
                return int(parts[i])
    return None


def _chunk_lines(
    fh: BinaryIO, segment: SegmentInfo, start: Start, stats: LineStats
) -> Iterator[bytes]:
    """A chunk's lines; a scanned segment (damaged, or foreign) is decoded carefully."""
    careful = segment.opened_by == "scan"
    return fast_lines(decode_blocks(fh, segment.codec, start, stats, careful=careful), stats)


def _start_for(codec_name: str, line: RawLine) -> Start:
    assert line.restart is not None
    return start_at(codec_name, line.restart, line.restart_position, line.position)


def _close_scan_chunk(chunk: Chunk | None, times: list[int], keys: list[int]) -> None:
    if chunk is not None:
        chunk.count = len(times)
        chunk.times = array("q", times)
        chunk.keys = array("q", keys)


def _running_max(times: list[int], before: int | None) -> array[int]:
    keys = array("q")
    key = before
    for t in times:
        key = t if key is None or t > key else key
        keys.append(key)
    return keys


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
