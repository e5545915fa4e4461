"""The seekable file source: random access to the frames of a recording (docs/architecture.md §3.1).

A thin façade over the reader's parts: :mod:`.discovery` finds the set's files, :mod:`.index`
finds each segment's chunks (footer, markers, or one scan), a :class:`Timeline` numbers the
frames and knows their times, and a :class:`LineCache` keeps recently read raw lines within a
byte limit. Only the frame asked for is structured.

Chunks are decoded lazily: the first time a frame of a chunk is asked for, its lines are read
and their times learned.

Opened with ``background=True`` (replay), a segment with no seek table is indexed by the bulk
scan (:mod:`.bulk`) in a thread: the source opens as soon as its first chunk is known, and
:meth:`RecordingSource.poll_index` takes in what the thread found since (on the caller's
thread: the timeline is only ever changed there). Segments after it are opened when it is
done; :attr:`RecordingSource.indexing` is the fraction of the set's bytes indexed, or None
once all is. The whole duration is known at once where the tail of the set's last file
tells its last frame's time (:mod:`.tail`: plain files, allsmi's gzip), else it grows with
the index (:attr:`RecordingSource.whole_duration_ms`).

A chunk a seek table promised that does not decode as promised sends its segment to the
scan (the timeline is rebuilt: :attr:`RecordingSource.generation` bumps); a chunk that held
fewer frames than promised shrinks the timeline. Either way the frame asked for is found
again, or the last one that remains stands in for it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import BinaryIO

import attrs

from allsmi.adapters import wire
from allsmi.adapters.recording.bulk import Batch, Findings, bulk_scan
from allsmi.adapters.recording.cache import CACHE_BYTES, LineCache
from allsmi.adapters.recording.damage import Damage, DamageKind
from allsmi.adapters.recording.decoding import LineStats, sniff
from allsmi.adapters.recording.discovery import discover, open_segment
from allsmi.adapters.recording.index import (
    Chunk,
    FrameLog,
    Progress,
    SchemaCheck,
    SegmentInfo,
    first_lines,
    from_footer,
    from_markers,
    parse_header,
    read_chunk,
    running_max,
    scan,
)
from allsmi.adapters.recording.tail import tail_time
from allsmi.adapters.recording.timeline import Timeline
from allsmi.domain.errors import RecordingCorrupt, RecordingUnreadable, UnsupportedSchema
from allsmi.domain.model import Frame, Header

__all__ = ["IndexUpdate", "RecordingSource", "discover"]  # discover: where callers found it


def _codec_of(path: Path) -> str:
    """The codec of the file at ``path`` by its first bytes (``none`` if unreadable)."""
    try:
        with open(path, "rb") as fh:
            return sniff(fh.read(8))
    except OSError:
        return "none"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


@attrs.frozen
class IndexUpdate:
    """What :meth:`RecordingSource.poll_index` took in."""

    added: int = 0  # frames appended
    rebuilt: bool = False  # frames were counted anew meanwhile (a chunk read corrected one)


class _Indexer:
    """The bulk scan of one segment in a daemon thread, its batches in a queue."""

    def __init__(self, path: Path, codec: str, seg_index: int, key_before: int | None) -> None:
        self.batches: queue.Queue[Batch | BaseException] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(path, codec, seg_index, key_before), daemon=True
        )
        self._thread.start()

    def _run(self, path: Path, codec: str, seg_index: int, key_before: int | None) -> None:
        try:
            with open_segment(path) as fh:
                for batch in bulk_scan(fh, codec, seg_index, key_before=key_before):
                    self.batches.put(batch)
                    if self._stop.is_set():
                        return
        except BaseException as err:  # handed to the reader's thread, which raises it
            self.batches.put(err)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class RecordingSource:
    """Random access to the frames of the recording at ``path``."""

    def __init__(
        self,
        path: Path,
        *,
        cache_bytes: int = CACHE_BYTES,
        progress: Progress | None = None,
        background: bool = False,
        log_frames: bool = False,
        log_lines: Callable[[bytes], Hashable] | None = None,
        cache: LineCache | None = None,
    ) -> None:
        """``cache``: a line cache shared with other sources (a merged replay's inputs share
        one), instead of one of ``cache_bytes`` of its own."""
        self.path = path
        self.segments: list[SegmentInfo] = []
        self.timeline = Timeline()
        self._chunks = self.timeline.chunks  # the timeline's own list (read here, never changed)
        self.cache = cache if cache is not None else LineCache(cache_bytes)
        self.warnings: list[str] = []  # for the message line, oldest first
        self.schema = SchemaCheck()
        # scanned segments' frames, by segment, when a caller asks for them (FrameLog)
        self.frame_logs: dict[int, FrameLog] | None = {} if log_frames else None
        self._log_lines = log_lines  # what the logs keep of each line (FrameLog.read)
        self._progress = progress
        self._background = background
        self._indexer: _Indexer | None = None
        self._later: list[Path] = []  # segments to open once the one indexed is done
        self._bytes_done = 0  # stored bytes of the segments indexed before the current one
        self._bytes_read = 0  # of the one being indexed
        self._total_bytes = 0
        self._run_chunks: dict[int, list[int]] = {}  # bulk-indexed segments: see _place_runs
        paths = discover(path)
        self._last_path = paths[-1]  # the recording's end is in it
        self._tail_ms: int | None = None  # its last frame's time, read from its tail
        self._tail_read = False  # ... once, when the first segment is indexed behind
        for seg_path in paths:
            self._total_bytes += _size(seg_path)
        try:
            for seg_path in paths:
                if self._indexer is not None:
                    self._later.append(seg_path)
                else:
                    self.open_segment(seg_path)
            while self.frame_count == 0 and self._indexer is not None:
                self._take(block=True)  # the first chunk: the first frame can be shown
            if self.frame_count == 0:
                raise RecordingUnreadable(f"no frames in {path}")
        except BaseException:
            self.close()  # a source that failed to open leaves no index running
            raise

    def close(self) -> None:
        """Stop a background index (each read opens its segment: nothing else is held)."""
        if self._indexer is not None:
            self._indexer.stop()
            self._indexer = None

    def __enter__(self) -> RecordingSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- the timeline

    @property
    def chunks(self) -> Sequence[Chunk]:
        return self._chunks

    @property
    def generation(self) -> int:
        """Bumps whenever frames already counted are counted anew (see :class:`Timeline`)."""
        return self.timeline.generation

    @property
    def frame_count(self) -> int:
        return self.timeline.frame_count

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
        """The last seek key less the first. While the index grows, the newest chunk is not
        decoded for it (a gzip chunk may sit 16 MiB of deflate past its checkpoint): its
        first key stands for it until the index is done. This is how far the frames reach
        (a seek past it waits for the index); the length to show is
        :attr:`whole_duration_ms`."""
        if self.indexing is not None:
            last = self.timeline.last_key()
            return max(0, (last if last is not None else self.key_at(0)) - self.key_at(0))
        return max(0, self.key_at(self.timeline.frame_count - 1) - self.key_at(0))

    @property
    def whole_duration_ms(self) -> int | None:
        """The recording's whole length where it is known: once indexed, :attr:`duration_ms`;
        while indexing, the time of the set's last frame read from its tail (:mod:`.tail`)
        less the first key, never below what is indexed; None where the tail did not tell it
        (the length then grows with the index). It equals the final duration unless the
        clock went back before the last frame (the seek keys then run past its time)."""
        if self.indexing is None:
            return self.duration_ms
        if self._tail_ms is None:
            return None
        return max(self.duration_ms, self._tail_ms - self.key_at(0))

    @property
    def skipped_lines(self) -> int:
        return sum(
            s.count(DamageKind.CORRUPT_LINE) + s.count(DamageKind.OVERSIZED_LINE)
            for s in self.segments
        )

    def segment_of(self, index: int) -> int:
        """The position in :attr:`segments` of the file frame ``index`` comes from."""
        at, _ = self._locate(index)
        return self._chunks[at].segment

    def chunk_starts(self) -> list[tuple[int, int]]:
        """(first index, first seek key) of every chunk: the coarse timeline."""
        return self.timeline.chunk_starts()

    def time_at(self, index: int) -> int:
        """The recorded time of frame ``index``."""
        at, pos = self._locate(index)
        times = self._chunks[at].times
        assert times is not None
        return times[pos]

    def key_at(self, index: int) -> int:
        """The seek key of frame ``index``: the running maximum of the times up to it."""
        at, pos = self._locate(index)
        keys = self._chunks[at].keys
        assert keys is not None
        return keys[pos]

    def index_at_or_before(self, key_ms: int) -> int:
        """The last frame whose seek key is ≤ ``key_ms`` (the first frame when none is)."""
        timeline = self.timeline
        generation = timeline.generation
        at = timeline.chunk_by_key(key_ms)
        while True:
            chunk = self._loaded(at)
            if timeline.generation != generation:
                return self.index_at_or_before(key_ms)  # rebuilt under us: look again
            if chunk.count or at == 0:
                break
            at -= 1  # a chunk that turned out empty: look at the one before
        return timeline.index_by_key(at, key_ms)

    # ----------------------------------------------------------------- frames

    def raw(self, index: int) -> bytes:
        """The stored line of frame ``index``."""
        while True:
            at, pos = self._locate(index)
            lines = self._lines(at, rescan=True)
            if pos < len(lines):
                return lines[pos]
            # Read again, it held fewer lines than counted: the lines are the truth (each
            # turn shrinks the timeline, so this ends).
            if (self._chunks[at].count or 0) > len(lines):
                self.timeline.shrink(at, len(lines))
            index = min(index, self.frame_count - 1)

    def structure(self, index: int) -> Frame | Damage:
        """The structured frame at ``index``, or the damage record of a frame line that will
        not structure."""
        found = self._decoded(index)
        return found if isinstance(found, Frame) else Damage(DamageKind.UNSTRUCTURED)

    def frame(self, index: int) -> Frame:
        """The structured frame at ``index``; a line that will not structure becomes an
        errors-only frame at its time, so replay shows a gap rather than stopping."""
        found = self._decoded(index)
        if isinstance(found, Frame):
            return found
        return Frame(t_ms=self.time_at(index), errors=(found,))

    def _decoded(self, index: int) -> Frame | str:
        """The frame at ``index``, or why it will not structure."""
        try:
            line = wire.decode_line(self.raw(index), index + 1)
        except (RecordingCorrupt, UnsupportedSchema) as err:
            return f"unreadable frame: {err}"
        return line if isinstance(line, Frame) else "unreadable frame"

    # ----------------------------------------------------------------- chunks

    def chunk_lines(self, at: int) -> list[bytes]:
        """The raw data lines of chunk ``at`` (decoded now unless cached or held)."""
        return self._lines(at, rescan=True)

    def _locate(self, index: int) -> tuple[int, int]:
        """(chunk position, position in chunk) of frame ``index``, its chunk decoded. When
        reading a chunk shows it held fewer frames than counted and the timeline shrinks
        past ``index``, the last frame that remains stands in for it."""
        timeline, chunks = self.timeline, self._chunks
        while True:
            count = timeline.frame_count
            if index >= count > 0:
                index = count - 1
            if count == 0:  # every frame counted was gone when read: the file shrank
                raise RecordingUnreadable(f"no frames left in {self.path}: it shrank while read")
            if not 0 <= index < count:
                raise IndexError(f"frame {index} outside 0..{count - 1}")
            at = timeline.chunk_of(index)
            chunk = chunks[at]
            if chunk.keys is None:
                generation = timeline.generation
                chunk = self._loaded(at)
                if timeline.generation != generation:
                    continue  # the timeline was rebuilt while decoding: look again
            if chunk.count is not None and index - chunk.first_index < chunk.count:
                return at, index - chunk.first_index
            # the chunk held fewer frames than promised: the timeline was renumbered

    def _loaded(self, at: int) -> Chunk:
        """Chunk ``at`` with its times known (decoding it if needed)."""
        chunk = self._chunks[at]
        if chunk.keys is None:
            self._lines(at, rescan=True)
            chunk = self._chunks[min(at, len(self._chunks) - 1)]
        return chunk

    def _lines(self, at: int, *, rescan: bool) -> list[bytes]:
        """The lines of chunk ``at``. One a seek table promised that turns out not to be
        what it said gets its segment rescanned (``rescan``), or is left for the caller to
        judge (opening)."""
        chunks = self._chunks
        chunk = chunks[at]
        lines = self.cache.get(chunk)
        if lines is not None:
            return lines
        stats = LineStats()
        segment = self.segments[chunk.segment]
        last = at + 1 == len(chunks) or chunks[at + 1].segment != chunk.segment
        lines, times = read_chunk(segment, chunk, stats, last=last, warnings=self.warnings)
        if chunk.seq_first is not None and not chunk.verified and rescan:
            self._rescan(chunk.segment)
            return self._lines(min(at, len(chunks) - 1), rescan=True)
        first_read = chunk.keys is None
        promised = chunk.count
        corrected = self.timeline.learn(at, times)
        if first_read or corrected:
            self._rekey_after(at)
        if chunk.approx and corrected:
            self._place_runs(chunk.segment)
        elif corrected:
            if first_read:
                segment.note(Damage(DamageKind.SHORT_CHUNK))
            self.warnings.append(
                f"chunk at frame {chunk.first_index} held {len(lines)} frames, {promised} promised"
            )
        if first_read:  # what the first read of this chunk noticed counts
            self.warnings += [d.describe(segment.path.name) for d in segment.take_stats(stats)]
        self.cache.put(chunk, lines)
        return lines

    def _rekey_after(self, at: int) -> None:
        """A bulk-indexed chunk read before the chunks after it: their keys were computed
        from the key before them as then known (a chunk not read yet gives only its first
        key); now the keys before them may be higher (a clock that went back inside chunk
        ``at``), so they are computed again, until one does not change. Once every chunk was
        read, every key is the running maximum of all times before it, as the exact scan's."""
        chunks = self._chunks
        for later in range(at + 1, len(chunks)):
            chunk = chunks[later]
            if chunk.keys is None or chunk.times is None:
                return
            keys = running_max(list(chunk.times), self.timeline.key_before(later))
            if keys == chunk.keys:
                return
            chunk.keys = keys

    def _rescan(self, seg_index: int) -> None:
        """Replace a segment's seek-table chunks by the chunks of one scan of it."""
        span = self.timeline.segment_span(seg_index)
        assert span is not None
        first, last = span
        with open_segment(self.segments[seg_index].path) as fh:
            scanned = self._scan(fh, seg_index, self.timeline.key_before(first))
        self.timeline.replace(first, last, scanned)
        self.cache.clear()

    # ----------------------------------------------------------------- opening

    def open_segment(self, path: Path) -> None:
        """Add the file at ``path`` as the newest segment: its chunks by its footer, its
        markers, or one scan, whichever holds."""
        try:
            size = path.stat().st_size
            with open(path, "rb") as fh:
                codec_name = sniff(fh.read(8))
                segment = SegmentInfo(path=path, codec=codec_name, size=size)
                self.segments.append(segment)
                seg_index = len(self.segments) - 1
                chunks = None
                if codec_name == "zstd":
                    chunks = from_footer(fh, segment, seg_index) or from_markers(
                        fh, segment, seg_index
                    )
                if chunks is None or not self._adopt(seg_index, chunks):
                    if self._background:
                        if not self._tail_read:  # once: the set's end, for the duration
                            self._tail_read = True
                            self._tail_ms = tail_time(self._last_path, _codec_of(self._last_path))
                        segment.opened_by = "scan"
                        segment.scans += 1
                        key = self.timeline.last_key()
                        self._indexer = _Indexer(path, codec_name, seg_index, key)
                    else:
                        self.timeline.extend(self._scan(fh, seg_index, self.timeline.last_key()))
            if self._indexer is None:
                self._bytes_done += size
        except OSError as err:
            raise RecordingUnreadable(f"cannot read {path}: {err.strerror or err}") from None

    def _adopt(self, seg_index: int, chunks: list[Chunk]) -> bool:
        """Take chunks found by the seek table if the first (and an open last) decode as
        promised; otherwise leave the segment to the scan."""
        timeline = self.timeline
        segment = self.segments[seg_index]
        before = len(timeline)
        timeline.extend(chunks)
        self.schema.check(first_lines(segment, chunks[0], self.warnings))
        ends = {before, len(timeline) - 1}
        for at in sorted(ends):
            self._lines(at, rescan=False)
        end = timeline.chunks[-1]
        if len(timeline) - 1 > before and segment.opened_by == "markers" and end.empty:
            self.cache.forget(timeline.truncate(len(timeline) - 1))  # cut right after its marker
            ends = {before}
        if all(timeline.chunks[at].verified for at in ends):
            return True
        self.cache.forget(timeline.truncate(before))
        segment.note(Damage(DamageKind.TABLE_DAMAGED))
        self.warnings.append(Damage(DamageKind.TABLE_DAMAGED).describe(segment.path.name))
        return False

    # ----------------------------------------------------------------- the background index

    @property
    def indexing(self) -> float | None:
        """The fraction of the set's stored bytes indexed so far; None once all is."""
        if self._indexer is None and not self._later:
            return None
        done = self._bytes_done + self._bytes_read
        return min(0.999, done / max(1, self._total_bytes))

    def estimated_frames(self) -> int:
        """The frame count, extrapolated from the bytes indexed while the index grows."""
        fraction = self.indexing
        if fraction is None or fraction <= 0:
            return self.frame_count
        return max(self.frame_count, round(self.frame_count / fraction))

    def poll_index(self) -> IndexUpdate:
        """Take in what the background index found since the last call (never waits)."""
        before, generation = self.frame_count, self.generation
        while self._indexer is not None and self._take(block=False):
            pass
        rebuilt = self.generation != generation
        return IndexUpdate(added=max(0, self.frame_count - before), rebuilt=rebuilt)

    def _take(self, *, block: bool) -> bool:
        """One batch of the index in (waiting for it when ``block``); False when none was
        there."""
        indexer = self._indexer
        assert indexer is not None
        try:
            batch = indexer.batches.get(block=block)
        except queue.Empty:
            return False
        if isinstance(batch, BaseException):
            self._indexer = None
            if isinstance(batch, OSError):
                raise RecordingUnreadable(f"cannot read {self.segments[-1].path}: {batch}")
            raise batch
        segment = self.segments[-1]
        if batch.head and not segment.header:
            self.schema.check(list(batch.head))  # an unsupported schema fails the open at once
            info = wire.slice_line(batch.head[0])
            if info is not None and info.kind == wire.KIND_HEADER:
                segment.header = parse_header(batch.head[0], self.warnings)
        self.timeline.extend(batch.chunks)
        self._bytes_read = batch.read
        if batch.done is not None:
            self._finish_index(batch.done)
        return True

    def _finish_index(self, found: Findings) -> None:
        """The segment is indexed: what the pass learned becomes the segment's; the
        segments after it are opened (one may start the next background index)."""
        segment = self.segments[-1]
        self.schema.check(found.first_lines)
        if segment.header is None and found.header_line is not None:
            segment.header = parse_header(found.header_line, self.warnings)
        segment.runs = found.runs
        self._run_chunks[len(self.segments) - 1] = found.run_chunks
        self._place_runs(len(self.segments) - 1)
        found.stats.oversized = 0  # counted as the chunks holding them are read
        self.warnings += [d.describe(segment.path.name) for d in segment.take_stats(found.stats)]
        self._indexer = None
        self._bytes_done += segment.size
        self._bytes_read = 0
        while self._later and self._indexer is None:
            self.open_segment(self._later.pop(0))

    def _place_runs(self, seg_index: int) -> None:
        """The frames a bulk-indexed segment's later runs begin at: each begins a chunk
        (:mod:`.bulk`), so its place is that chunk's first index, exact once the counts
        before it are (reading a chunk corrects its count: this runs again then)."""
        ordinals = self._run_chunks.get(seg_index)
        span = self.timeline.segment_span(seg_index)
        if ordinals is None or span is None:
            return
        first, last = span
        base = self._chunks[first].first_index
        end = self._chunks[last].first_index + (self._chunks[last].count or 0)
        self.segments[seg_index].run_starts = [
            self._chunks[first + n].first_index - base if first + n <= last else end - base
            for n in ordinals
        ]

    def _scan(self, fh: BinaryIO, seg_index: int, key_before: int | None) -> list[Chunk]:
        log = None
        if self.frame_logs is not None:  # a scan again (a rescan) logs the segment anew
            log = self.frame_logs[seg_index] = FrameLog(read=self._log_lines)
        return scan(
            fh,
            self.segments[seg_index],
            seg_index,
            key_before=key_before,
            schema=self.schema,
            warnings=self.warnings,
            progress=self._progress,
            log=log,
        )
