"""Following a recording while it is written (DESIGN.md §5, ``--follow``).

:class:`FollowingSource` is the seekable file source plus a *tail*: a decoder that keeps its
state at the end of the active file, so each poll decodes only the bytes added since the
last one — no rescans. A poll stats the active path: the same inode with more bytes means
new lines; another inode means the recorder rotated, so the old file (still open, now a
numbered segment) is drained to its end and the new active file is followed from its start.
Numbered segments that disappear were evicted: their frames leave the timeline and its
start moves. An incomplete last line is pending, not damage.
"""

from __future__ import annotations

import contextlib
import os
import zlib
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Final

import attrs
import zstandard

from allsmi.adapters import codec, seektable
from allsmi.adapters.decoding import GZIP_MAGIC, MAX_LINE, MAX_WINDOW, Start, sniff
from allsmi.adapters.filesource import CHUNK_FRAMES, Chunk, RecordingSource, SegmentInfo
from allsmi.domain.errors import AllsmiError
from allsmi.domain.model import IndexLine
from allsmi.domain.segments import numbered_segments

READ_LIMIT: Final = 4 * 1024 * 1024  # stored bytes decoded per poll at most


@attrs.frozen
class FollowUpdate:
    added: int = 0  # frames appended at the end
    dropped: int = 0  # frames evicted from the start
    rotated: bool = False


class TailDecoder:
    """Incremental decoding of one growing file from a start: bytes in, complete lines out."""

    def __init__(self, path: Path, codec_name: str, start: Start) -> None:
        self.fh: BinaryIO = open(path, "rb")  # noqa: SIM115 - kept open across polls
        self.inode = os.fstat(self.fh.fileno()).st_ino
        self.codec = codec_name
        self.origin = start
        self.offset = start.offset  # stored bytes consumed
        self.fh.seek(start.offset)
        self.skip = start.skip
        self.decoded = 0  # decoded bytes produced after the skip
        self._raw = bytearray()
        self._pending = bytearray()
        self._pending_at = 0
        self._obj: Any = start.zlib_state.copy() if start.zlib_state is not None else None
        self.damaged = False

    def close(self) -> None:
        self.fh.close()

    def at_end(self) -> bool:
        return self.offset >= os.fstat(self.fh.fileno()).st_size

    def read_lines(self) -> list[tuple[int, bytes]]:
        """New complete lines as (decoded position, line) since the previous call."""
        data = self.fh.read(READ_LIMIT)
        self.offset += len(data)
        out = self._decode(data) if data else b""
        if self.skip:
            cut = min(self.skip, len(out))
            out, self.skip = out[cut:], self.skip - cut
        return self._split(out)

    def _decode(self, data: bytes) -> bytes:
        if self.codec == "none":
            return data
        self._raw += data
        return self._zstd() if self.codec == "zstd" else self._gzip()

    def _zstd(self) -> bytes:
        return self._units(self._next_zstd_frame, zstandard.ZstdError)

    def _gzip(self) -> bytes:
        return self._units(self._next_gzip_member, zlib.error)

    def _units(self, begin: Callable[[], Any], error: type[Exception]) -> bytes:
        """Decode buffered bytes unit by unit (zstd frames, gzip members), keeping the
        decoder of an unfinished unit for the next poll."""
        out = bytearray()
        while self._raw and not self.damaged:
            if self._obj is None:
                self._obj = begin()
                if self._obj is None:
                    break  # more bytes needed, or damage found
            try:
                out += self._obj.decompress(bytes(self._raw))
            except error:
                self.damaged = True
                break
            self._raw = bytearray(self._obj.unused_data if self._obj.eof else b"")
            if not self._obj.eof:
                break
            self._obj = None
        return bytes(out)

    def _next_zstd_frame(self) -> Any:
        """Skip skippable frames (markers, table, trailer); a decoder for the next frame."""
        while len(self._raw) >= 8:
            head = seektable.read_head(bytes(self._raw[:8]))
            if head is None:
                if self._raw[:4] != seektable.ZSTD_MAGIC:
                    self.damaged = True
                    return None
                return zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW).decompressobj()
            if len(self._raw) < 8 + head[1]:
                return None
            del self._raw[: 8 + head[1]]
        return None

    def _next_gzip_member(self) -> Any:
        if self._raw[:1] != GZIP_MAGIC[:1]:
            self.damaged = True
            return None
        return zlib.decompressobj(31)

    def _split(self, out: bytes) -> list[tuple[int, bytes]]:
        lines = []
        begin = 0
        while (nl := out.find(b"\n", begin)) >= 0:
            if not self._pending:
                self._pending_at = self.decoded + begin
            self._pending += out[begin:nl]
            if len(self._pending) <= MAX_LINE:
                lines.append((self._pending_at, bytes(self._pending).rstrip(b"\r")))
            self._pending.clear()
            begin = nl + 1
        if begin < len(out):
            if not self._pending:
                self._pending_at = self.decoded + begin
            if len(self._pending) <= MAX_LINE:
                self._pending += out[begin:]
        self.decoded += len(out)
        return lines


class FollowingSource(RecordingSource):
    """A recording that may still be growing: ``poll()`` brings in what was added."""

    def __init__(self, path: Path, **kw: Any) -> None:
        self._tail: TailDecoder | None = None
        self._tail_chunk: Chunk | None = None
        self._tail_lines: list[bytes] = []
        self._gone: set[int] = set()
        self._vanished: set[int] = set()  # rotated and deleted before we found its new name
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
            self._tail = TailDecoder(active.path, active.codec, Start(0))
            self._drain(self._take)
            return
        last = ats[-1]
        lines = list(self._lines(last))
        chunk = self.chunks[last]
        self._tail = TailDecoder(active.path, active.codec, chunk.start)
        self._tail_chunk, self._tail_lines = chunk, lines
        self._forget(last)
        seen = 0

        def skip_known(position: int, raw: bytes) -> None:
            nonlocal seen
            info = codec.slice_line(raw)
            if info is not None and info.kind == codec.KIND_DATA:
                seen += 1
                if seen > len(lines):
                    self._add_line(raw, info.t_ms)

        self._drain(skip_known)

    def _drain(self, take: Callable[[int, bytes], None]) -> None:
        """Everything the tail's file holds now, however much (reads come 4 MiB at a time)."""
        assert self._tail is not None
        while True:
            for position, raw in self._tail.read_lines():
                take(position, raw)
            if self._tail.at_end():
                return

    def _forget(self, at: int) -> None:
        dropped = self._cache.pop(at, None)
        if dropped is not None:
            self._cache_bytes -= sum(len(x) for x in dropped)
        self._renumber()

    def _lines(self, at: int) -> list[bytes]:
        if self._tail_chunk is not None and self.chunks[at] is self._tail_chunk:
            return self._tail_lines  # the growing chunk lives here, never evicted
        return super()._lines(at)

    # ----------------------------------------------------------------- polling

    def poll(self) -> FollowUpdate:
        before = self.frame_count
        rotated = self._follow_rotation()
        dropped = self._drop_evicted()
        if self._tail is not None:
            for position, raw in self._tail.read_lines():
                self._take(position, raw)
        self._renumber()
        added = self.frame_count - before + dropped
        return FollowUpdate(added=max(0, added), dropped=dropped, rotated=rotated)

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
        self.warnings.append(f"{dropped} frames at the start were evicted by rotation")
        self.generation += 1
        return dropped

    def _follow_rotation(self) -> bool:
        try:
            inode = os.stat(self.path).st_ino
        except FileNotFoundError:
            return False  # between the rename and the new file: try again next poll
        if self._tail is not None and inode == self._tail.inode:
            return False
        if self._tail is not None:
            self._drain(self._take)  # the rotated file, to its end, through our open fd
            if not self._rename_rotated(self._tail.inode):
                # Renamed and already evicted (--max-files 1): its frames are gone with it.
                self._vanished.add(len(self.segments) - 1)
            self._tail.close()
        with open(self.path, "rb") as fh:
            head = fh.read(8)
        if not head:
            self._tail = None
            return False
        self.segments.append(SegmentInfo(path=self.path, codec=sniff(head), size=0))
        self._tail = TailDecoder(self.path, self.segments[-1].codec, Start(0))
        self._tail_chunk = None
        return True

    def _rename_rotated(self, inode: int) -> bool:
        """The active file was renamed to a numbered segment: find it by its inode."""
        names = os.listdir(self.path.parent)
        for _, name in reversed(numbered_segments(self.path.name, names)):
            candidate = self.path.parent / name
            with contextlib.suppress(OSError):
                if candidate.stat().st_ino == inode:
                    self.segments[-1].path = candidate
                    return True
        return False

    def _take(self, position: int, raw: bytes) -> None:
        info = codec.slice_line(raw)
        if info is None:
            self.segments[-1].corrupt_lines += 1
        elif info.kind == codec.KIND_HEADER:
            if self.segments[-1].header is None:
                self.segments[-1].header = self._header(raw)
        elif info.kind == codec.KIND_INDEX and info.seq is not None:
            offset = _index_offset(raw) if self._ours() else None
            if offset is not None:  # all-smi's index offsets are not stored offsets: ignore
                self._new_chunk(Start(offset), info.t_ms, info.seq)
        elif info.kind == codec.KIND_DATA and info.t_ms is not None:
            if self._tail_chunk is None or (self._tail_chunk.count or 0) >= CHUNK_FRAMES:
                assert self._tail is not None
                origin = self._tail.origin
                self._new_chunk(origin.skipping(position), info.t_ms, None)
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
        self._tail_chunk, self._tail_lines = chunk, []

    def _add_line(self, raw: bytes, t_ms: int | None) -> None:
        chunk = self._tail_chunk
        assert chunk is not None and chunk.keys is not None and chunk.times is not None
        assert t_ms is not None
        key = chunk.keys[-1] if chunk.keys else self._key_before(self.chunks.index(chunk))
        chunk.times.append(t_ms)
        chunk.keys.append(t_ms if key is None else max(key, t_ms))
        chunk.count = (chunk.count or 0) + 1
        self._tail_lines.append(raw)

    def close(self) -> None:
        if self._tail is not None:
            self._tail.close()
            self._tail = None


def _first_key(key: int | None, t_ms: int | None) -> int:
    if t_ms is None:
        return key or 0
    return t_ms if key is None else max(key, t_ms)


def _index_offset(raw: bytes) -> int | None:
    try:
        line = codec.decode_line(raw, 0)
    except AllsmiError:
        return None
    return line.byte_offset if isinstance(line, IndexLine) else None
