"""The rotating compressed sink: how a recording reaches the disk (docs/recording-format.md §6–§8).

Theory of operation. A recording is a set of *segments* (the active file plus rotated,
numbered ones). A segment is a sequence of *chunks*; a chunk is one independent
compression unit (a zstd frame, a gzip member, or a run of plain lines) that begins with an
index line naming its first data frame and its own stored offset; the first chunk of a
segment starts with the header line. A chunk ends after 1000 data frames or 8 MiB of
uncompressed lines; a chunk that stores a summary ends sooner, on a summary bucket's boundary
(docs/recording-format.md §7.10), when the bucket beginning would not fit in it whole (judged
by the largest bucket the chunk took so far): its summary then holds whole buckets, none
shared with the next chunk's, which keeps stored summaries small and lets a reader append
them without joining buckets. For zstd, a skippable *marker* frame precedes each chunk and a clean
close appends the *table* and *trailer* (see :mod:`allsmi.adapters.recording.seektable`).
A zstd chunk whose every frame was given structured (``append(..., frame=)``) is followed by
its *summary frame* (:mod:`allsmi.adapters.recording.summaries`), located by the next
marker's ``sum`` and the table's ``summaries`` (docs/recording-format.md §7.3, §7.4).

Rules this module obeys:
- Every segment starts with a header and holds at least one data frame: a segment is
  opened lazily by the first frame written to it.
- Bytes reach the OS only through :meth:`RecordingSink.flush` (the recorder calls it so
  that every frame is handed over within a second of its collection) and on chunk ends.
  zstd flushes with ``FLUSH_BLOCK``, gzip with ``Z_SYNC_FLUSH``: a reader decodes every
  flushed frame even when the chunk was never finished (a crash, or still recording).
- Rotation counts *stored* bytes and is checked after each flush; a full segment is closed
  there, or, while the sink stores events, when the next frame arrives or the run stops
  (so what only the end of a run confirms is stored with its last chunk). Files are created 0600
  with ``O_NOFOLLOW``; a symlink at any path written, rotation targets included, is refused.
- At most ``max_files`` files of the set exist, the active one included; the oldest
  numbered segments are evicted first. ``max_files == 1`` keeps the active file only.
- With ``max_age_ms``, a numbered segment is deleted once its last frame is older than the
  age, judged by the time of the frame being written (so an injected clock drives it, and a
  stopped recorder deletes nothing): checked at every frame in O(1) against the oldest kept
  segment's end, which is read once per segment (:mod:`allsmi.adapters.recording.retention`).
  The active file is never deleted; instead it rotates once it spans the age divided by
  ``max_files - 1`` (an age needs at least two files), so the age can be kept by numbered
  segments alone, without one huge active file that would hold everything. A segment that
  cannot be deleted (read-only, immutable) is noted once in ``stats.notes`` and left: old
  data that will not go never stops the recording of new data. Only regular files are
  judged (:func:`~allsmi.adapters.recording.retention.segment_end_ms`).
- Any OS error becomes one :class:`SinkFailed` line; what was flushed before stays readable.
- After each flush the open file must still be the file at the path: one ``fstat`` (a link
  count of 0 means it was deleted, its directory perhaps with it) and one ``lstat`` (another
  inode, or none, means it was moved or replaced). Otherwise the recorder would go on
  reporting frames written to a file nobody can open; it stops with one line instead.
- A summary is of exactly the frames of its chunk, as given: a chunk with any frame given
  without its structure, at another time than its line's, or before the chunk's first time
  gets none (never a summary missing frames, nor one a reader must refuse). It is written
  with the chunk's end, in the same write: a crash leaves the chunk without its summary or
  with all of it, never a marker naming a summary that is not there.
- One recorder per set: the composition root holds :mod:`allsmi.adapters.recording.lock` for
  the whole run, from before the first rotation to after the last close.
"""

from __future__ import annotations

import enum
import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Final, Protocol

import attrs
import zstandard

from allsmi.adapters import wire
from allsmi.adapters.recording import seektable, summaries
from allsmi.adapters.recording.decoding import MAX_LINE
from allsmi.adapters.recording.files import describe_os_error, open_private, refuse_symlink
from allsmi.adapters.recording.retention import segment_end_ms
from allsmi.domain.errors import SinkFailed, UsageError
from allsmi.domain.events import Detector, Event
from allsmi.domain.model import Frame, Header, IndexLine
from allsmi.domain.segments import numbered_segments, segment_name
from allsmi.domain.summary import KeyList, Summary, bucket_of

CHUNK_MAX_FRAMES: Final = 1000
CHUNK_MAX_BYTES: Final = 8 * 1024 * 1024  # uncompressed
MAX_LINE_BYTES: Final = MAX_LINE  # what the reader accepts, the writer never exceeds
ZSTD_LEVEL: Final = 3
GZIP_LEVEL: Final = 6
_NONE_LEFT: Final = 1 << 62  # the oldest end when no numbered segment is left to expire


class Codec(enum.Enum):
    ZSTD = "zstd"
    GZIP = "gzip"
    NONE = "none"


def codec_for(path: Path, override: str | None) -> Codec:
    """``--compress`` wins; otherwise the extension (``.zst``, ``.gz``), else none."""
    if override:
        try:
            return Codec(override)
        except ValueError:
            raise UsageError(f"unknown --compress {override!r}: use zstd, gzip or none") from None
    name = path.name.lower()
    if name.endswith(".zst"):
        return Codec.ZSTD
    if name.endswith(".gz"):
        return Codec.GZIP
    return Codec.NONE


class _Encoder(Protocol):
    """One chunk's compressor: bytes in, stored bytes out."""

    def write(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...

    def finish(self) -> bytes: ...


class _ZstdEncoder:
    def __init__(self, cctx: zstandard.ZstdCompressor) -> None:
        self._obj = cctx.compressobj()

    def write(self, data: bytes) -> bytes:
        return self._obj.compress(data)

    def flush(self) -> bytes:
        return self._obj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)

    def finish(self) -> bytes:
        return self._obj.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)


class _GzipEncoder:
    def __init__(self) -> None:
        # wbits 31: a gzip member (RFC 1952) with mtime 0, so output is reproducible.
        self._obj = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)

    def write(self, data: bytes) -> bytes:
        return self._obj.compress(data)

    def flush(self) -> bytes:
        return self._obj.flush(zlib.Z_SYNC_FLUSH)

    def finish(self) -> bytes:
        return self._obj.flush(zlib.Z_FINISH)


class _PlainEncoder:
    def write(self, data: bytes) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""

    def finish(self) -> bytes:
        return b""


@attrs.frozen
class SinkConfig:
    path: Path
    codec: Codec
    max_size: int = 100 * 1024 * 1024  # stored bytes per segment; 0 = never rotate
    max_files: int = 10
    chunk_max_frames: int = CHUNK_MAX_FRAMES
    chunk_max_bytes: int = CHUNK_MAX_BYTES
    events: bool = True  # zstd: detect events as frames come, stored with the summaries
    max_age_ms: int = 0  # delete numbered segments whose last frame is older; 0 = keep

    @property
    def segment_span_ms(self) -> int:
        """With an age limit, the most time the active segment spans before it rotates."""
        return self.max_age_ms // max(1, self.max_files - 1)


@attrs.define
class SinkStats:
    frames: int = 0
    stored_bytes: int = 0  # bytes handed to the OS, all segments of this run
    raw_bytes: int = 0  # uncompressed line bytes
    segments: int = 0
    rotations: int = 0
    notes: list[str] = attrs.field(factory=list)  # said once, for the user (not failures)


@attrs.define
class _Chunk:
    offset: int  # stored offset where the chunk's compression unit begins
    seq: int
    t_ms: int
    encoder: _Encoder
    frames: int = 0
    raw_bytes: int = 0
    summary: Summary | None = None  # of its frames so far (zstd); None: it gets none
    events: list[Event] | None = None  # the events its frames confirmed; None: none stored
    bucket: int | None = None  # the summary bucket of its last frame
    bucket_frames: int = 0  # frames and bytes of that bucket in this chunk so far
    bucket_bytes: int = 0
    whole_frames: int = 0  # the most frames and bytes a bucket ended in this chunk took
    whole_bytes: int = 0

    def ends_before(self, t_ms: int, line: int, config: SinkConfig) -> bool:
        """Whether the chunk ends before a frame at ``t_ms`` of ``line`` bytes: when it is
        full, or when the frame begins a summary bucket that would not fit whole (module
        header: chunks end on bucket boundaries)."""
        if self.frames >= config.chunk_max_frames or self.raw_bytes + line > config.chunk_max_bytes:
            return True
        if self.summary is None or bucket_of(t_ms) == self.bucket:
            return False
        whole_frames = max(self.whole_frames, self.bucket_frames)
        whole_bytes = max(self.whole_bytes, self.bucket_bytes)
        return (
            self.frames + whole_frames > config.chunk_max_frames
            or self.raw_bytes + whole_bytes > config.chunk_max_bytes
        )

    def count(self, t_ms: int, line: int) -> None:
        """Count a frame at ``t_ms`` of ``line`` bytes written into the chunk."""
        bucket = bucket_of(t_ms)
        if bucket != self.bucket:
            self.whole_frames = max(self.whole_frames, self.bucket_frames)
            self.whole_bytes = max(self.whole_bytes, self.bucket_bytes)
            self.bucket, self.bucket_frames, self.bucket_bytes = bucket, 0, 0
        self.bucket_frames += 1
        self.bucket_bytes += line
        self.frames += 1
        self.raw_bytes += line


class RecordingSink:
    """Writes data lines into the rotated, chunked, compressed set at ``config.path``."""

    def __init__(
        self,
        config: SinkConfig,
        header: Header,
        *,
        write: Callable[[int, memoryview], int] = os.write,
    ) -> None:
        if config.max_files < 1:
            raise UsageError("--max-files must be at least 1")
        if config.max_age_ms and config.max_files < 2:
            raise UsageError(
                "--max-age needs --max-files of at least 2: one file is only ever deleted whole"
            )
        self.config = config
        self.header = header
        self.stats = SinkStats()
        self._fd: int | None = None
        self._offset = 0  # stored bytes in the active segment
        self._pending = bytearray()  # stored bytes not yet handed to the OS
        self._chunk: _Chunk | None = None
        self._chunks: list[seektable.ChunkEntry] = []
        self._last_marker = -1
        self._last_summary = -1  # offset of the summary frame of the chunk just ended
        self._summaries: list[tuple[int, int] | None] = []  # (offset, bytes) per chunk
        # (offset, keys) of the segment's last summary frame that lists its keys: the later
        # ones with the same keys refer to it (docs/recording-format.md §7.10)
        self._shared_keys: tuple[int, KeyList] | None = None
        self._summary_cctx = summaries.new_compressor()
        # the run's event detection (zstd): fed every frame, across rotations, finished at close
        self._detector: Detector | None = None
        if config.events and config.codec is Codec.ZSTD:
            self._detector = Detector(expected_hosts=header.hosts, interval_ms=header.interval_ms)
        self._last: tuple[int, int] | None = None  # (seq, t_ms) of the last frame written
        self._header_pending = b""  # the header line, until the segment's first chunk opens
        self._rotate_due = False  # the active segment is full; rotate before the next frame
        self._full = False  # found full at a flush, left open for the end's events
        self._segment_t_ms: int | None = None  # the active segment's first frame time
        self._ends: dict[str, int] = {}  # numbered segments' last frame times, by name
        self._oldest_end: int | None = None  # of the oldest one kept; None: look again
        self._undeletable: set[str] = set()  # too old, but unlink failed: said once, left
        self._cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True)
        self._write = write  # os.write; tests inject a disk that fills up
        refuse_symlink(config.path)

    # ----------------------------------------------------------------- public API

    def append(self, line: bytes, seq: int, t_ms: int, frame: Frame | None = None) -> None:
        """Add one encoded data line (with its ``\\n``) as frame ``seq`` at time ``t_ms``;
        ``frame`` is what ``line`` encodes (it goes into the chunk's summary)."""
        if len(line) > MAX_LINE_BYTES:
            raise SinkFailed(f"frame {seq} is {len(line)} bytes, over the 16 MiB line limit")
        if self._full or self._spans_age(t_ms):  # full at the last flush, or old enough
            self._full = False
            self._close_segment()
            self._rotate_due = True
        if self._fd is None:
            if self._rotate_due:
                self._rotate_active()
                self._rotate_due = False
                self.stats.rotations += 1
            self._open_segment()
            self._segment_t_ms = t_ms
        chunk = self._chunk
        if chunk is not None and chunk.ends_before(t_ms, len(line), self.config):
            self._end_chunk()
            chunk = None
        if chunk is None:
            chunk = self._begin_chunk(seq, t_ms)
        self._pending += chunk.encoder.write(line)
        if chunk.summary is not None:
            if frame is None or frame.t_ms != t_ms or t_ms < chunk.t_ms:
                chunk.summary = None
            else:
                chunk.summary.add(frame)
        if self._detector is not None:
            if frame is None or chunk.summary is None or chunk.events is None:
                self._detector = chunk.events = None  # a frame not seen: events unknown
            else:
                chunk.events += self._detector.feed(frame)
        chunk.count(t_ms, len(line))
        self.stats.frames += 1
        self.stats.raw_bytes += len(line)
        self._last = (seq, t_ms)
        if self.config.max_age_ms:
            self._expire(t_ms - self.config.max_age_ms)

    def flush(self) -> None:
        """Hand every frame appended so far to the OS; rotate if the segment is full."""
        if self._chunk is not None:
            self._pending += self._chunk.encoder.flush()
        self._write_pending()
        self._check_still_there()
        if self.config.max_size and self._offset >= self.config.max_size:
            # The full segment is closed now (footer and all) but renamed only when the
            # next frame arrives, so the newest data is always in the active file. While
            # events are stored it stays open until then (or the run's end): what only the
            # end of a run confirms goes into its last chunk.
            if self._detector is not None:
                self._full = True
            else:
                self._close_segment()
                self._rotate_due = True

    def close(self) -> None:
        """Finish the chunk, write the footer (zstd), close the file. Idempotent. The run is
        over: what only its end confirms (:meth:`Detector.finish`) is stored with its last
        chunk."""
        chunk, detector = self._chunk, self._detector
        if chunk is not None and chunk.events is not None and detector is not None:
            chunk.events += detector.finish()
        self._detector = None
        self._full = False
        self._close_segment()

    def _check_still_there(self) -> None:
        """Raise ``SinkFailed`` when the open segment is no longer the file at the path."""
        if self._fd is None:
            return
        path = self.config.path
        try:
            mine = os.fstat(self._fd)
        except OSError as err:
            raise SinkFailed(describe_os_error(err, path)) from None
        if mine.st_nlink == 0:
            gone = "" if path.parent.exists() else " (its directory is gone)"
            raise SinkFailed(f"{path}: the file was deleted while recording{gone}")
        try:
            there = os.lstat(path)
        except FileNotFoundError:
            there = None
        except OSError:
            return  # cannot look (a directory made unsearchable): writes report real failures
        if there is None or (there.st_dev, there.st_ino) != (mine.st_dev, mine.st_ino):
            raise SinkFailed(f"{path}: the file was moved or replaced while recording")

    # ----------------------------------------------------------------- segments

    def prepare_existing(self) -> None:
        """A restart on an existing path: rotate the old active file out of the way first."""
        path = self.config.path
        refuse_symlink(path)
        if path.exists():
            self._rotate_active()

    def _open_segment(self) -> None:
        self._fd = open_private(self.config.path, exclusive=True)
        self._offset = 0
        self._chunks = []
        self._last_marker = -1
        self._last_summary = -1
        self._summaries = []
        self._shared_keys = None
        self.stats.segments += 1
        # The header line travels inside the segment's first chunk, before its index line.
        self._header_pending = wire.encode_line(self.header)

    def _begin_chunk(self, seq: int, t_ms: int) -> _Chunk:
        if self.config.codec is Codec.ZSTD:
            marker_at = self._offset + len(self._pending)
            self._pending += seektable.encode_marker(
                seektable.Marker(seq=seq, t_ms=t_ms, prev=self._last_marker, sum=self._last_summary)
            )
            self._last_marker = marker_at
            self._last_summary = -1
        offset = self._offset + len(self._pending)
        chunk = _Chunk(offset=offset, seq=seq, t_ms=t_ms, encoder=self._new_encoder())
        first, self._header_pending = self._header_pending, b""
        if self.config.codec is Codec.NONE and first:
            # Plain files: the index line's offset is the index line's own offset.
            chunk.offset = offset + len(first)
        index = wire.encode_line(IndexLine(t_ms=t_ms, seq=seq, byte_offset=chunk.offset))
        self._pending += chunk.encoder.write(first + index)
        chunk.raw_bytes += len(first) + len(index)
        self.stats.raw_bytes += len(first) + len(index)
        if self.config.codec is Codec.ZSTD:
            chunk.summary = summaries.new_summary(self.header)
            chunk.events = [] if self._detector is not None else None
        self._chunk = chunk
        return chunk

    def _new_encoder(self) -> _Encoder:
        if self.config.codec is Codec.ZSTD:
            return _ZstdEncoder(self._cctx)
        if self.config.codec is Codec.GZIP:
            return _GzipEncoder()
        return _PlainEncoder()

    def _end_chunk(self) -> None:
        chunk = self._chunk
        if chunk is None:
            return
        self._pending += chunk.encoder.finish()
        if self.config.codec is Codec.ZSTD:
            self._summaries.append(self._summary_frame(chunk))
        self._chunks.append(
            seektable.ChunkEntry(
                offset=chunk.offset, seq=chunk.seq, t_ms=chunk.t_ms, frames=chunk.frames
            )
        )
        self._chunk = None
        self._write_pending()

    def _summary_frame(self, chunk: _Chunk) -> tuple[int, int] | None:
        """Add the ended ``chunk``'s summary frame to the pending bytes (the chunk's end is
        written with it); where it lies, or None when the chunk gets none."""
        if chunk.summary is None or not chunk.frames:
            return None
        shared = self._shared_keys
        stored = summaries.summary_frame(chunk.summary, self._summary_cctx, shared, chunk.events)
        if len(stored) - 8 > seektable.MAX_SUMMARY_PAYLOAD:
            return None
        at = self._offset + len(self._pending)
        self._pending += stored
        self._last_summary = at
        if shared is None or not chunk.summary.same_keys(shared[1]):
            self._shared_keys = (at, chunk.summary.key_list())
        return at, len(stored)

    def _close_segment(self) -> None:
        if self._fd is None:
            return
        try:
            self._end_chunk()
            if self.config.codec is Codec.ZSTD and self._chunks and self._last:
                table_at = self._offset + len(self._pending)
                table = seektable.Table(
                    chunks=tuple(self._chunks),
                    last_seq=self._last[0],
                    last_t_ms=self._last[1],
                    summaries=tuple(self._summaries) if any(self._summaries) else (),
                )
                self._pending += seektable.encode_table(table)
                self._pending += seektable.encode_trailer(table_at)
            self._write_pending()
        finally:
            fd, self._fd = self._fd, None
            os.close(fd)

    def _spans_age(self, t_ms: int) -> bool:
        """Whether the open segment has spanned its share of the age by ``t_ms``."""
        return (
            self.config.max_age_ms > 0
            and self._fd is not None
            and self._segment_t_ms is not None
            and t_ms - self._segment_t_ms >= self.config.segment_span_ms
        )

    def _expire(self, before_ms: int) -> None:
        """Delete the numbered segments whose last frame is older than ``before_ms`` (module
        rules). Every one is judged, not only up to the first one kept: after a clock step
        back, or beside a segment dated in the future, the older ones still go."""
        if self._oldest_end is not None and self._oldest_end >= before_ms:
            return
        directory = self.config.path.parent
        self._oldest_end = _NONE_LEFT
        for _, name in numbered_segments(self.config.path.name, _list_names(directory)):
            if name in self._undeletable:
                continue
            end = self._ends.get(name)
            if end is None:
                end = segment_end_ms(directory / name)
                if end is None:
                    continue  # gone meanwhile
                self._ends[name] = end
            if end >= before_ms:
                self._oldest_end = min(self._oldest_end, end)
                continue
            try:
                (directory / name).unlink()
            except FileNotFoundError:
                pass
            except OSError as err:  # old data that will not go never stops the recording
                self._undeletable.add(name)
                reason = err.strerror or type(err).__name__
                self.stats.notes.append(
                    f"cannot delete {directory / name} (older than --max-age): {reason}"
                )
            del self._ends[name]

    def _rotate_active(self) -> None:
        active = self.config.path
        directory = active.parent
        names = _list_names(directory)
        existing = numbered_segments(active.name, names)
        number = existing[-1][0] + 1 if existing else 1
        target = directory / segment_name(active.name, number)
        refuse_symlink(target)
        try:
            if target.exists():
                target.unlink()
            os.rename(active, target)
        except OSError as err:
            raise SinkFailed(describe_os_error(err, target)) from None
        if self._last is not None and self._fd is None and self.stats.frames:
            self._ends[target.name] = self._last[1]  # the segment this run just closed
        self._oldest_end = None
        self._evict([*existing, (number, target.name)])

    def _evict(self, numbered: list[tuple[int, str]]) -> None:
        """Keep at most ``max_files - 1`` numbered segments beside the active file."""
        keep = self.config.max_files - 1
        excess = numbered[: max(0, len(numbered) - keep)]
        for _, name in excess:
            self._ends.pop(name, None)
            try:
                (self.config.path.parent / name).unlink()
            except FileNotFoundError:
                pass
            except OSError as err:  # as in _expire: said once, never a stop
                if name not in self._undeletable:
                    self._undeletable.add(name)
                    reason = err.strerror or type(err).__name__
                    where = self.config.path.parent / name
                    self.stats.notes.append(f"cannot delete {where} (over --max-files): {reason}")

    # ----------------------------------------------------------------- writing

    def _write_pending(self) -> None:
        if not self._pending or self._fd is None:
            return
        view = memoryview(self._pending)
        try:
            while view:
                written = self._write(self._fd, view)
                view = view[written:]
                self._offset += written
                self.stats.stored_bytes += written
        except OSError as err:
            raise SinkFailed(describe_os_error(err, self.config.path)) from None
        finally:
            remaining = bytes(view)
            view.release()
            self._pending = bytearray(remaining)


def _list_names(directory: Path) -> list[str]:
    try:
        return os.listdir(directory)
    except OSError as err:
        raise SinkFailed(describe_os_error(err, directory)) from None
