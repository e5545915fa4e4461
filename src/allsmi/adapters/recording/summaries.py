"""Per-chunk summaries stored in our zstd recordings, written and read back without decoding
a single frame (docs/recording-format.md §7.2, §7.6; the summary itself:
:mod:`allsmi.domain.summary`).

Rules this module obeys:
- Only zstd segments carry them: a *summary frame* (skippable, magic
  :data:`~allsmi.adapters.recording.seektable.SUMMARY_MAGIC`) right after its chunk's zstd
  frame, before the next marker or the table, holding one zstd frame of
  :meth:`~allsmi.domain.summary.Summary.to_bytes` of exactly the chunk's data frames. The
  table's ``summaries`` key (footer) or the next marker's ``sum`` (a file cut short) says
  where; the last chunk of a file without a footer has none that can be found.
- A summary frame whose chunk has the keys (hosts, GPUs) of an earlier summary frame of the
  segment refers to the one that lists them (its offset and their digest) instead of listing
  them again; frames are read in order and a reference resolves only to a frame read and
  accepted before it with keys of that digest, else its chunk has none (computed from its
  frames: never a summary with other keys).
- Every summary is built by :func:`new_summary` from the segment's header (its hosts decide
  which errors name a host), by the writer and by every check alike.
- Nothing read is trusted. A stored summary counts only when its frame lies between its
  chunk and the next, carries the summary magic within the 16 MiB bound, decompresses to at
  most :data:`MAX_SUMMARY_BYTES` (no zip bombs) into a summary
  :meth:`~allsmi.domain.summary.Summary.from_bytes` accepts, whose frames all lie within the
  chunk's times (its first to the next chunk's first, or the last frame's) and number
  exactly the chunk's count, in buckets of the one width (:data:`BUCKET_MS`: chunks merge).
  Anything else is ``None`` for that chunk (the caller computes
  it from the chunk's frames instead), with the reason kept: nothing here raises on hostile
  bytes. Values are checked only against decoded frames: ``allsmi verify`` does it for every
  stored summary, the replay for each chunk it reads for the screen.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import BinaryIO, Final

import attrs
import orjson
import zstandard

from allsmi.adapters.recording import seektable
from allsmi.adapters.recording.index import Chunk, SegmentInfo
from allsmi.domain.events import KINDS, Event
from allsmi.domain.model import Frame, Header
from allsmi.domain.summary import BUCKET_MS, KeyList, Summary, SummaryInvalid

MAX_SUMMARY_BYTES: Final = 64 * 1024 * 1024  # decompressed bytes of one stored summary
MIN_BLOCK: Final = 512  # bytes of payload a compressed block holds at least
SUMMARY_LEVEL: Final = 3  # zstd level of the payload (bench: level 19 saves little, costs much)
_HEAD: Final = 8


@attrs.frozen
class Stored:
    """What one chunk's stored summary turned out to be: ``summary`` when it passed every
    check; ``present`` when the segment named a summary frame for the chunk at all;
    ``problem``, the one-line reason a named one was refused; ``events``, the events its
    writer detected and stored with it (None: it stored none)."""

    summary: Summary | None
    present: bool = False
    problem: str | None = None
    events: tuple[Event, ...] | None = None


NONE: Final = Stored(None)


def new_summary(header: Header | None) -> Summary:
    """The empty summary of one chunk of a segment with ``header``."""
    if header is None:
        return Summary()
    return Summary(expected_hosts=header.hosts, interval_ms=header.interval_ms)


def summary_of(frames: Iterable[Frame], header: Header | None) -> Summary:
    """The summary of ``frames`` as the writer builds it (:func:`new_summary`)."""
    summary = new_summary(header)
    for frame in frames:
        summary.add(frame)
    return summary


def summary_frame(
    summary: Summary,
    cctx: zstandard.ZstdCompressor,
    shared: tuple[int, KeyList] | None = None,
    events: Sequence[Event] | None = None,
) -> bytes:
    """The stored summary frame of ``summary``: its bytes compressed by ``cctx`` into one
    zstd frame, its content size written, a block ending after each byte plane of at least
    :data:`MIN_BLOCK` bytes (so each keeps its own statistics). ``shared``:
    ``(offset, keys)`` of an earlier summary frame of the segment that lists its keys; when
    ``summary`` has those keys, the payload refers to that frame instead of listing them."""
    pieces = summary.to_pieces(shared, None if events is None else encode_events(events))
    writer = cctx.compressobj(size=sum(map(len, pieces)))  # the size goes in its header
    out: list[bytes] = []
    block = 0
    for piece in pieces:  # a block per plane, small ones together (Summary.to_pieces)
        out.append(writer.compress(piece))
        block += len(piece)
        if block >= MIN_BLOCK:
            out.append(writer.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK))
            block = 0
    out.append(writer.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH))
    return seektable.encode_summary(b"".join(out))


def new_compressor() -> zstandard.ZstdCompressor:
    """The compressor of summary payloads (content size written: readers bound the output)."""
    return zstandard.ZstdCompressor(level=SUMMARY_LEVEL, write_content_size=True)


def read_stored(
    path: Path, segment: SegmentInfo, chunks: Sequence[Chunk], full: bool = True
) -> list[Stored]:
    """One :class:`Stored` per chunk of ``chunks`` (the segment's own, in order, as its
    footer or markers listed them). A segment that was scanned, or is no zstd file, has
    none. ``full``: each summary passes :meth:`Summary.check`, else only
    :meth:`Summary.check_bounds` (the map: its values are checked when their chunk is
    decoded)."""
    refs = segment.summaries
    if segment.codec != "zstd" or segment.opened_by not in ("footer", "markers"):
        return [NONE] * len(chunks)
    wanted = [refs[n] if n < len(refs) else None for n in range(len(chunks))]
    if not any(wanted):
        return [NONE] * len(chunks)
    known: dict[int, KeyList] = {}
    try:
        with open(path, "rb") as fh:
            return [NONE if ref is None else _read_one(fh, ref, known, full) for ref in wanted]
    except OSError as err:
        why = f"cannot read {path.name}: {err.strerror or err}"
        return [NONE if ref is None else Stored(None, True, why) for ref in wanted]


def stored_summaries(
    path: Path, segment: SegmentInfo, chunks: Sequence[Chunk]
) -> list[Summary | None]:
    """The stored summary of each chunk of ``chunks`` that passed the checks at open (its
    place, size, span and count, and :meth:`Summary.check_bounds`), else None (the caller
    computes that chunk's summary from its frames)."""
    return [found.summary for found in read_stored(path, segment, chunks, full=False)]


def _read_one(
    fh: BinaryIO,
    ref: seektable.SummaryRef,
    known: dict[int, KeyList],
    full: bool,
) -> Stored:
    try:
        data = _payload_at(fh, ref)
        summary = _summary_in(data, ref, known, full)
        return Stored(summary, True, events=_events_in(data, ref))
    except SummaryInvalid as err:
        return Stored(None, True, str(err))


def _payload_at(fh: BinaryIO, ref: seektable.SummaryRef) -> bytes:
    """The payload of the summary frame ``ref`` locates, decompressed within its bounds;
    :class:`SummaryInvalid` (one line) otherwise."""
    if not ref.after < ref.offset or ref.offset + _HEAD > ref.before:
        raise SummaryInvalid(f"summary frame at {ref.offset:,} is outside its chunk")
    fh.seek(ref.offset)
    head = seektable.read_head(fh.read(_HEAD))
    if head is None or head[0] != seektable.SUMMARY_MAGIC:
        raise SummaryInvalid(f"no summary frame at {ref.offset:,}")
    size = head[1]
    if size > seektable.MAX_SUMMARY_PAYLOAD or ref.offset + _HEAD + size > ref.before:
        raise SummaryInvalid(f"summary frame at {ref.offset:,} runs past its bound")
    if ref.size is not None and ref.size != _HEAD + size:
        raise SummaryInvalid(f"summary frame at {ref.offset:,} is not the size listed")
    payload = fh.read(size)
    if len(payload) != size:
        raise SummaryInvalid(f"summary frame at {ref.offset:,} is cut short")
    try:
        params = zstandard.get_frame_parameters(payload)
        if not 0 <= params.content_size <= MAX_SUMMARY_BYTES:  # unknown size reads as -1
            raise SummaryInvalid(f"summary at {ref.offset:,} decompresses past its bound")
        data = zstandard.ZstdDecompressor().decompress(payload, max_output_size=MAX_SUMMARY_BYTES)
    except zstandard.ZstdError as err:
        raise SummaryInvalid(f"summary at {ref.offset:,} does not decompress: {err}") from None
    return data


def _summary_in(
    data: bytes, ref: seektable.SummaryRef, known: dict[int, KeyList], full: bool
) -> Summary:
    """The summary of the payload ``data`` of the frame ``ref`` locates, checked;
    :class:`SummaryInvalid` (one line) otherwise."""
    target = Summary.keys_ref(data)
    summary = Summary.from_bytes(data, known, full)
    if summary.width_ms != BUCKET_MS:  # what every writer of ours uses: chunks must merge
        raise SummaryInvalid(f"summary buckets of {summary.width_ms} ms, not {BUCKET_MS}")
    summary.check_span(ref.t_lo, ref.t_hi)
    counted = summary.frames
    if counted != ref.frames:
        raise SummaryInvalid(f"summary counts {counted} frames, its chunk {ref.frames}")
    if target is None:  # it lists its keys: a later summary frame may refer to them
        known[ref.offset] = summary.key_list()
    return summary


# --------------------------------------------------------------------------- events

MAX_EVENTS: Final = 100_000  # events one stored summary may carry


def encode_events(events: Sequence[Event]) -> bytes:
    """The events block of a summary payload: a JSON array of ``[t_ms, host, gpu, kind,
    message]`` (docs/recording-format.md §7.10)."""
    return orjson.dumps([[e.t_ms, e.host, e.gpu, e.kind, e.message] for e in events])


def _events_in(data: bytes, ref: seektable.SummaryRef) -> tuple[Event, ...] | None:
    """The events a payload carries (None: none stored), each checked: its kind one of
    ours, its host, GPU and message texts (as the frames gave them: whoever prints them
    makes them safe), its time not before 1970 and no later than its chunk's last (an
    event is stored with the chunk whose frames confirmed it, stamped at its onset, which
    may be earlier); :class:`SummaryInvalid` (one line) otherwise."""
    block = Summary.events_of(data)
    if block is None:
        return None
    try:
        rows = orjson.loads(block)
    except orjson.JSONDecodeError:
        raise SummaryInvalid(f"summary at {ref.offset:,}: its events are not JSON") from None
    if type(rows) is not list or len(rows) > MAX_EVENTS:
        raise SummaryInvalid(f"summary at {ref.offset:,}: its events are no list of events")
    found = []
    for row in rows:
        if not (
            type(row) is list
            and len(row) == 5
            and type(row[0]) is int
            and 0 <= row[0] <= ref.t_hi
            and all(v is None or type(v) is str for v in row[1:3])
            and row[3] in KINDS
            and type(row[4]) is str
        ):
            raise SummaryInvalid(f"summary at {ref.offset:,}: an event it stores is malformed")
        found.append(Event(row[0], row[1], row[2], row[3], row[4]))
    return tuple(found)


def stored_events(parts: Sequence[tuple[SegmentInfo, Sequence[Chunk]]]) -> list[Event] | None:
    """Every event the recorder stored with the chunks of these segments (a recording's, in
    order), in time order; None unless they are all of one recorder run (one
    ``started_ms`` in every header: a restart makes a scan's one detection across the runs
    see what no run's saw, the downtime's gap first), every segment was closed by its writer
    (its footer read: a crash-cut or growing file is not) and is one run, and every chunk's
    summary carries its events: the caller then detects them from the frames."""
    found: list[Event] = []
    starts = {None if s.header is None else s.header.started_ms for s, _ in parts}
    if len(starts) > 1:  # several recorder runs: one detection across them, from the frames
        return None
    for segment, chunks in parts:
        if segment.codec != "zstd" or segment.opened_by != "footer" or segment.runs != 1:
            return None
        for one in read_events(segment, chunks):
            if one is None:
                return None
            found += one
    found.sort(key=lambda event: event.t_ms)
    return found


def read_events(segment: SegmentInfo, chunks: Sequence[Chunk]) -> list[tuple[Event, ...] | None]:
    """The events stored with each chunk of ``chunks`` (None for a chunk whose summary
    frame carries none, or is missing or refused), read without the summaries' columns."""
    refs = segment.summaries
    wanted = [refs[n] if n < len(refs) else None for n in range(len(chunks))]
    out: list[tuple[Event, ...] | None] = []
    try:
        with open(segment.path, "rb") as fh:
            for ref in wanted:
                try:
                    out.append(None if ref is None else _events_in(_payload_at(fh, ref), ref))
                except SummaryInvalid:
                    out.append(None)
    except OSError:
        return [None] * len(chunks)
    return out
