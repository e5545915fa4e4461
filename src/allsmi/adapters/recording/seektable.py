"""The zstd seek table of a recording (docs/recording-format.md §7): markers, table, trailer.

All three are zstd *skippable frames* (RFC 8878 §3.1.2): a little-endian u32 magic in
0x184D2A50..0x184D2A5F, a u32 payload size, then the payload. ``zstd -d`` and every zstd
decoder skip them, so a recording stays a plain ``.ndjson.zst`` to every tool. We use four
of the sixteen magics, one per role:

- **marker** (before each chunk): JSON ``{"seq":S,"t":"…","prev":P,"sum":U}`` — the chunk's
  first data frame, the offset of the previous marker (``-1`` for the first), so a reader
  that finds the last marker can walk back over every chunk without decompressing anything,
  and the offset of the previous chunk's summary frame (absent when none). ``sum`` was added
  after version 1.0 (docs/recording-format.md §10.5): a reader without it ignores it
  (§10.1, 3), and a marker without it reads as ``-1``.
- **summary** (right after a chunk's zstd frame, before the next marker or the table): one
  zstd frame of :meth:`allsmi.domain.summary.Summary.to_bytes` for the chunk's frames
  (skippable payloads are stored as they are, so the payload is compressed), at most
  :data:`MAX_SUMMARY_PAYLOAD` bytes. Never between a marker and its chunk (§10.2, 3).
- **table** (on clean close): JSON ``{"chunks":[[offset,seq,t_ms,frames],…],"last_seq":…,
  "last_t":…,"summaries":[[offset,size]|null,…]}`` where ``offset`` is where the chunk's
  zstd frame starts and each ``summaries`` entry locates the chunk's summary frame
  (``size`` is the whole frame's stored bytes, its 8-byte head included) or is null. The
  rows of ``chunks`` never change (§10.2, 4); a ``summaries`` key that does not parse, or
  does not have one entry per chunk, is ignored and the table is read as without it.
- **trailer** (the last 16 bytes of a cleanly closed file): payload ``u64`` offset of the
  table frame. A reader opens such a file in O(1).

Offsets read from a file are never trusted blindly: the bytes there must carry the expected
magic and decode (see the reader).
"""

from __future__ import annotations

import struct
from typing import Final

import attrs
import orjson

from allsmi.domain.parse import format_rfc3339_ms, parse_rfc3339_ms

MARKER_MAGIC: Final = 0x184D2A5A
TABLE_MAGIC: Final = 0x184D2A5B
TRAILER_MAGIC: Final = 0x184D2A5C
SUMMARY_MAGIC: Final = 0x184D2A51  # the lowest unassigned value (§10.4)
ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"
TRAILER_SIZE: Final = 16
MAX_MARKER_PAYLOAD: Final = 256
MAX_TABLE_PAYLOAD: Final = 64 * 1024 * 1024
MAX_SUMMARY_PAYLOAD: Final = 16 * 1024 * 1024  # compressed bytes of one summary frame
MAX_CHUNK_FRAMES: Final = 1000  # the format's limit on data frames in one chunk

_HEAD = struct.Struct("<II")
_TRAILER = struct.Struct("<IIQ")


@attrs.frozen
class Marker:
    seq: int
    t_ms: int
    prev: int  # offset of the previous marker, -1 for the first of the segment
    sum: int = -1  # offset of the previous chunk's summary frame, -1 for none


@attrs.frozen
class ChunkEntry:
    offset: int  # where the chunk's zstd frame starts in the stored file
    seq: int  # first data frame of the chunk
    t_ms: int
    frames: int


@attrs.frozen
class Table:
    chunks: tuple[ChunkEntry, ...]
    last_seq: int
    last_t_ms: int
    # per chunk: (offset, stored bytes) of its summary frame, or None; () when not stored
    summaries: tuple[tuple[int, int] | None, ...] = ()


@attrs.frozen
class SummaryRef:
    """Where a chunk's summary frame was said to be, and what the chunk it describes holds,
    as its segment's table or markers told it; nothing here has been read or trusted."""

    offset: int  # of the summary frame's head
    size: int | None  # the whole frame's stored bytes (the table says), None (a marker)
    after: int  # the frame must begin after this offset (its chunk's zstd frame)...
    before: int  # ...and end at or before this one (the next chunk's frame, or the table)
    t_lo: int  # the chunk's first time and the next chunk's first (or the last) time, ms
    t_hi: int
    frames: int  # the chunk's frame count


def skippable(magic: int, payload: bytes) -> bytes:
    return _HEAD.pack(magic, len(payload)) + payload


def encode_marker(marker: Marker) -> bytes:
    obj: dict[str, object] = {
        "seq": marker.seq,
        "t": format_rfc3339_ms(marker.t_ms),
        "prev": marker.prev,
    }
    if marker.sum >= 0:  # absent means none: a marker with nothing to add is as in 1.0
        obj["sum"] = marker.sum
    return skippable(MARKER_MAGIC, orjson.dumps(obj))


def encode_table(table: Table) -> bytes:
    obj: dict[str, object] = {
        "chunks": [[c.offset, c.seq, c.t_ms, c.frames] for c in table.chunks],
        "last_seq": table.last_seq,
        "last_t": table.last_t_ms,
    }
    if table.summaries:
        obj["summaries"] = [None if s is None else list(s) for s in table.summaries]
    return skippable(TABLE_MAGIC, orjson.dumps(obj))


def encode_summary(payload: bytes) -> bytes:
    """A summary frame around ``payload`` (already compressed: one zstd frame)."""
    return skippable(SUMMARY_MAGIC, payload)


def encode_trailer(table_offset: int) -> bytes:
    return _TRAILER.pack(TRAILER_MAGIC, 8, table_offset)


def read_head(data: bytes) -> tuple[int, int] | None:
    """(magic, payload size) of a skippable frame header, or None if ``data`` is not one."""
    if len(data) < _HEAD.size:
        return None
    magic, size = _HEAD.unpack_from(data)
    if magic & 0xFFFFFFF0 != 0x184D2A50:
        return None
    return magic, size


def decode_trailer(data: bytes) -> int | None:
    """The table offset from a file's last 16 bytes, or None if they are not our trailer."""
    if len(data) != TRAILER_SIZE:
        return None
    magic, size, offset = _TRAILER.unpack(data)
    if magic != TRAILER_MAGIC or size != 8:
        return None
    return int(offset)


def decode_marker(payload: bytes) -> Marker | None:
    try:
        obj = orjson.loads(payload)
        seq, t, prev = obj["seq"], obj["t"], obj["prev"]
        if not (_is_int(seq) and _is_int(prev) and isinstance(t, str)) or seq < 0:
            return None
        found = obj.get("sum", -1)  # added after 1.0: absent or malformed reads as none
        summary = found if _is_int(found) and found >= 0 else -1
        return Marker(seq=seq, t_ms=parse_rfc3339_ms(t), prev=prev, sum=summary)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def decode_table(payload: bytes) -> Table | None:
    try:
        obj = orjson.loads(payload)
        chunks = tuple(
            ChunkEntry(offset=o, seq=s, t_ms=t, frames=n)
            for o, s, t, n in obj["chunks"]
            if all(_is_int(v) and v >= 0 for v in (o, s, t, n))
        )
        if len(chunks) != len(obj["chunks"]) or not _is_int(obj["last_seq"]):
            return None
        if not _is_int(obj["last_t"]) or not _counts_agree(chunks, obj["last_seq"]):
            return None
        return Table(
            chunks=chunks,
            last_seq=obj["last_seq"],
            last_t_ms=obj["last_t"],
            summaries=_summaries(obj.get("summaries"), len(chunks)),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def _summaries(value: object, chunks: int) -> tuple[tuple[int, int] | None, ...]:
    """The table's ``summaries`` entries; () when absent or not one well-formed entry per
    chunk (the key is extra information: its damage never costs the table)."""
    if not isinstance(value, list) or len(value) != chunks:
        return ()
    out: list[tuple[int, int] | None] = []
    for entry in value:
        if entry is None:
            out.append(None)
        elif (
            isinstance(entry, list)
            and len(entry) == 2
            and all(_is_int(v) and v >= 0 for v in entry)
        ):
            out.append((entry[0], entry[1]))
        else:
            return ()
    return tuple(out)


def _counts_agree(chunks: tuple[ChunkEntry, ...], last_seq: int) -> bool:
    """Frame counts are validated like offsets: each within the format's chunk limit and
    equal to the step of ``seq`` to the next chunk (to ``last_seq`` for the last one)."""
    ends = [c.seq for c in chunks[1:]] + [last_seq + 1]
    return all(
        0 < c.frames <= MAX_CHUNK_FRAMES and end - c.seq == c.frames
        for c, end in zip(chunks, ends, strict=True)
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
