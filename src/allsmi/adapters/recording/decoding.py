"""Decoding stored recording bytes into lines, from any decodable starting point.

A *start* is where decoding can begin without reading what precedes it: byte offset 0, a
zstd frame or gzip member boundary (our chunks), a zlib checkpoint inside a gzip member
(``Decompress.copy()``), or any line of a plain file; plus how many decoded bytes to skip
to reach the first wanted line. Everything that reads a recording goes through here.

Limits against hostile files, enforced while reading (docs/recording-format.md §11): a line
is at most 16 MiB decompressed (a longer one is skipped whole, never buffered), the zstd
window is at most 128 MiB, and decompression output is produced in bounded pieces, so a zstd or gzip
bomb costs time, not memory. A truncated compressed tail ends the stream after the last
complete line, noted as *cut short* when the file ends where a flush ended (a complete zstd
block, a gzip sync flush: nothing lost) and as *cut inside a block* otherwise, with the
stored bytes after the last complete block (docs/recording-format.md §9); a torn last line
(no ``\\n``) is reported, never returned.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, Final, NamedTuple

import attrs
import zstandard

from allsmi.adapters.recording import seektable
from allsmi.adapters.recording.damage import Damage, DamageKind

GZIP_MAGIC: Final = b"\x1f\x8b"
MAX_LINE: Final = 16 * 1024 * 1024
MAX_WINDOW: Final = 128 * 1024 * 1024
READ_SIZE: Final = 256 * 1024
OUT_SIZE: Final = 1024 * 1024  # most decoded bytes produced per step
CHECKPOINT_EVERY: Final = 16 * 1024 * 1024  # compressed bytes between gzip checkpoints, at most
CHECKPOINT_MIN: Final = 1024 * 1024  # ... and at least
CHECKPOINTS: Final = 1000  # a segment gets about this many, within those bounds (~45 KB each)


def checkpoint_spacing(size: int) -> int:
    """Compressed bytes between zlib checkpoints in a gzip segment of ``size`` bytes: about
    :data:`CHECKPOINTS` of them, 1 … 16 MiB apart, so a chunk is decoded from at most that
    far back (a 72 MB member: every 1 MiB, 3 MB of state) and state stays ≤ ~45 MB."""
    return max(CHECKPOINT_MIN, min(CHECKPOINT_EVERY, size // CHECKPOINTS))


BLOCK_MAX: Final = 128 * 1024  # a zstd block never holds more (RFC 8878 §3.1.1.2.4)
GZIP_MEMBER: Final = b"\x1f\x8b\x08"  # magic and deflate: where a gzip member can begin
GZIP_HEADER: Final = 10  # a gzip member's fixed header (RFC 1952 §2.3), all of ours
SYNC_FLUSH: Final = b"\x00\x00\xff\xff"  # how a sync flush ends (RFC 1951 §3.2.4: empty stored)
MAX_DAMAGE_NOTED: Final = 1000  # damaged regions kept per read (the last grows past it)


def sniff(head: bytes) -> str:
    """``zstd``, ``gzip`` or ``none`` from a file's first bytes (never from its name)."""
    if head.startswith(seektable.ZSTD_MAGIC) or seektable.read_head(head) is not None:
        return "zstd"
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    return "none"


@attrs.frozen(eq=False)
class Start:
    """A point decoding can begin at: stored ``offset``, optional zlib state, bytes to skip."""

    offset: int
    zlib_state: Any = None  # a zlib Decompress copy taken mid-member, or None
    skip: int = 0  # decoded bytes to discard before the first wanted line

    def skipping(self, extra: int) -> Start:
        return attrs.evolve(self, skip=self.skip + extra)


class Decoded(NamedTuple):
    """One block of decoded bytes; ``restart``, when set, is a start right after them."""

    data: bytes
    restart: Start | None


# --------------------------------------------------------------------------- raw decoding


def decode_blocks(
    fh: BinaryIO, codec: str, start: Start, stats: LineStats, *, careful: bool = False
) -> Iterator[bytes]:
    """Decoded bytes from ``start`` to the end of the file (or of what decodes).
    ``careful``: never the zstd fast path (a file already known to be damaged, where
    libzstd and this decoder may part ways: it passes our skippable frames whatever
    size they claim)."""
    restarts = None if careful else False
    for block in decode_with_restarts(fh, codec, start, stats, restarts=restarts):
        yield block.data


def decode_with_restarts(
    fh: BinaryIO,
    codec: str,
    start: Start,
    stats: LineStats,
    *,
    restarts: bool | None = True,
    judge_end: bool = True,
    checkpoint_every: int = CHECKPOINT_EVERY,
) -> Iterator[Decoded]:
    """Like :func:`decode_blocks`, announcing the starts met on the way (for one scan);
    ``restarts=None``: announce none, and decode carefully. ``judge_end`` False: a reader
    that keeps no findings skips learning how a zstd file ends (:func:`_judge_zstd_end`)."""
    if codec == "zstd" and restarts is False:
        blocks = _zstd_fast(fh, start, stats, judge_end=judge_end)
    else:
        blocks = _careful(
            fh,
            codec,
            attrs.evolve(start, skip=0),
            stats,
            restarts=bool(restarts),
            checkpoint_every=checkpoint_every,
        )
    skip = start.skip
    for block in blocks:
        if skip:
            cut = min(skip, len(block.data))
            skip -= cut
            block = Decoded(block.data[cut:], block.restart)
        if block.data or block.restart:
            yield block


def _careful(
    fh: BinaryIO,
    codec: str,
    start: Start,
    stats: LineStats,
    *,
    restarts: bool,
    checkpoint_every: int = CHECKPOINT_EVERY,
) -> Iterator[Decoded]:
    """The :class:`StreamDecoder` pulling from a file."""
    fh.seek(start.offset)
    decoder = StreamDecoder(
        codec, start, stats, restarts=restarts, checkpoint_every=checkpoint_every
    )
    while True:
        block = decoder.read()
        if block is not None:
            yield block
            continue
        data = fh.read(READ_SIZE)
        if not data:
            decoder.finish()
            return
        decoder.feed(data)


def _zstd_fast(
    fh: BinaryIO, start: Start, stats: LineStats, *, judge_end: bool = True
) -> Iterator[Decoded]:
    """zstd at C speed (libzstd's streaming reader, bounded reads) for the common case: our
    chunks are flushed block by block, and walking thousands of tiny blocks in Python costs
    ten times the decoding. At the first decoder error — junk, zeros after the end — the
    careful decoder takes over from the same start, passes what was already produced, keeps
    what decodes up to the damage and goes on after it."""
    fh.seek(start.offset)
    dctx = zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW)
    reader = dctx.stream_reader(fh, read_size=READ_SIZE, read_across_frames=True, closefd=False)
    produced = 0
    while True:
        try:
            data = reader.read(OUT_SIZE)
        except zstandard.ZstdError:
            break
        if not data:  # the end (a frame cut short ends here too, with what it produced)
            if judge_end:
                _judge_zstd_end(fh, start, stats)
            return
        produced += len(data)
        yield Decoded(data, None)
    for block in _careful(fh, "zstd", attrs.evolve(start, skip=0), stats, restarts=False):
        cut = min(produced, len(block.data))
        produced -= cut
        if cut < len(block.data):
            yield Decoded(block.data[cut:], None)


def _judge_zstd_end(fh: BinaryIO, start: Start, stats: LineStats) -> None:
    """libzstd read to the end without an error but says nothing of how the last frame
    ended: walk the same bytes again by their headers alone (nothing decoded, O(blocks))
    and keep what :meth:`StreamDecoder.finish` makes of the end — cut short, or cut inside
    a block. Whatever else the walk notices is libzstd's to judge, and it judged it good."""
    walked = LineStats()
    walker = StreamDecoder("zstd", Start(start.offset), walked, restarts=False, decode=False)
    fh.seek(start.offset)
    while data := fh.read(READ_SIZE):
        walker.feed(data)
        while walker.read() is not None:
            pass
    walker.finish()
    stats.cut_short |= walked.cut_short
    stats.damage += [d for d in walked.damage if d.kind is DamageKind.CUT_INSIDE]


# --------------------------------------------------------------------------- damage


@attrs.define
class LineStats:
    """What decoding and line splitting noticed: oversized lines skipped, a torn tail,
    regions of stored bytes that did not decode (:class:`Damage` records of kind
    ``UNDECODABLE`` or ``ZEROS``, and ``CUT_INSIDE`` for an end inside a block), a
    compressed unit cut short at the end."""

    oversized: int = 0
    torn_tail: bool = False
    damage: list[Damage] = attrs.field(factory=list)
    cut_short: bool = False  # the last zstd frame / gzip member ends mid-way (crash, live)

    def note(self, damage: Damage) -> None:
        """Remember a damaged region; past the limit, the last one grows to cover it."""
        if len(self.damage) < MAX_DAMAGE_NOTED:
            self.damage.append(damage)
            return
        last = self.damage[-1]
        zeros = last.kind is DamageKind.ZEROS and damage.kind is DamageKind.ZEROS
        self.damage[-1] = Damage.region(last.offset, damage.end - last.offset, zeros=zeros)

    def records(self) -> list[Damage]:
        """Everything noticed, as damage records. A file cut inside a block is that region
        alone: the torn line it leaves is part of the bytes it lost, and it is no clean
        cut (docs/recording-format.md §9)."""
        found = list(self.damage)
        if self.oversized:
            found.append(Damage(DamageKind.OVERSIZED_LINE, self.oversized))
        cut = any(d.kind is DamageKind.CUT_INSIDE for d in self.damage)
        if self.torn_tail and not cut:
            found.append(Damage(DamageKind.TORN_TAIL))
        if self.cut_short and not cut:
            found.append(Damage(DamageKind.CUT_SHORT))
        return found

    def cut_inside(self, offset: int, length: int) -> None:
        """The stored bytes from ``offset`` to the end are an incomplete block: lost. Kept
        past the limit on regions (there is one end)."""
        self.damage.append(Damage(DamageKind.CUT_INSIDE, length, offset))


# --------------------------------------------------------------------------- the decoder


class StreamDecoder:
    """Stored bytes pushed in, decoded bytes pulled out in bounded pieces.

    The one decoder of the reader and the follower. ``feed`` takes stored bytes as they
    are read; ``read`` returns at most about ``limit`` decoded bytes (``None`` when it needs
    more input). Nothing is ever produced in one piece larger than the limit plus one zstd
    block (128 KiB): a zstd frame is walked by its block headers (RFC 8878 §3.1.1) and each
    complete block is decoded alone, a gzip member is inflated with ``max_length``, and a
    skippable frame is counted past, never buffered. Bytes that are not a frame, a member
    or a block (junk, zeros, a decoder error) become one :class:`Damage` region and the
    decoder resynchronises on the next zstd frame or skippable frame (gzip: member) that
    begins after them, keeping everything decoded before. A line cut by damage is ended
    with a newline so that it is skipped as one corrupt line, never glued to the next.
    """

    def __init__(
        self,
        codec: str,
        start: Start,
        stats: LineStats,
        *,
        restarts: bool,
        lost: bool = False,
        decode: bool = True,
        checkpoint_every: int = CHECKPOINT_EVERY,
    ) -> None:
        """``lost``: the bytes at ``start`` may begin mid-unit (a file truncated under a
        follower): decoding begins at the first unit found from ``start`` on. ``decode``
        False (zstd): walk the units by their headers only, producing nothing — to learn
        where bytes libzstd already decoded end (:func:`_judge_zstd_end`)."""
        self.codec = codec
        self.stats = stats
        self.offset = start.offset  # stored offset of the next byte not yet consumed
        self._buf = b""
        self._restarts = restarts
        self._lost_at: int | None = start.offset if lost else None  # searching from here
        self._search_from = start.offset  # stored offset where the search may find a unit
        self._lost_nonzero = False
        self._resumed_at: int | None = None  # where the last search resumed, until output
        self._skip = 0  # stored bytes of a skippable frame still to pass
        self._zstd: _ZstdFrame | None = None
        self._gzip: Any = start.zlib_state.copy() if start.zlib_state is not None else None
        self._since_checkpoint = 0
        self._checkpoint_every = checkpoint_every
        self._decode = decode
        # Where the gzip member's last sync flush ended (its header's end until one did;
        # a checkpoint decodes from where it was taken), and the last stored bytes of it
        # passed to zlib, for a flush split across reads.
        self._gzip_flushed = start.offset
        self._gzip_tail = b""
        self._gzip_zeros = True  # every byte passed since that flush is zero
        self._gzip_synced = start.zlib_state is None  # False: no sync flush in this member yet
        self._gzip_step_was: tuple[Any, int, bytes, int] | None = None  # state, at, bytes, used

    @property
    def in_unit(self) -> bool:
        """Inside a zstd frame or gzip member (or a skippable frame) that has not ended."""
        return self._zstd is not None or self._gzip is not None or self._skip > 0

    def feed(self, data: bytes) -> None:
        self._buf = self._buf + data if self._buf else data

    def read(self, limit: int = OUT_SIZE) -> Decoded | None:
        """Up to about ``limit`` decoded bytes, with the start found right after them when
        one was (restarts mode); None when the bytes fed so far are used up."""
        if self.codec == "none":
            if self._lost_at is not None:
                if not self._resync(at_end=False):
                    return None
                if self._restarts:  # decoded offsets no longer follow stored ones
                    return Decoded(b"", Start(self.offset))
            return self._plain(limit)
        step = self._zstd_step if self.codec == "zstd" else self._gzip_step
        out: list[bytes] = []
        size = 0
        while size < limit:
            if self._lost_at is not None and not self._resync(at_end=False):
                break
            produced = step(limit - size)
            if produced is None:
                break
            data, restart = produced
            if data:
                out.append(data)
                size += len(data)
                self._resumed_at = None
            if restart is not None:
                return Decoded(b"".join(out), restart)
        if not out:
            return None
        return Decoded(b"".join(out), None)

    def finish(self) -> None:
        """No more input: note what was left undecoded at the end. Bytes between units
        that cannot begin one are damage (zeros: a note). A unit that began and did not
        end is cut short (a crash, or still being written: nothing lost) where a flush of
        the writer ends — after a complete zstd block or a gzip sync flush, or inside a
        unit's header or a skippable frame — and cut inside a block anywhere else: the
        stored bytes after the last complete block are lost (docs/recording-format.md §9)."""
        if self._lost_at is None and not self.in_unit and self._buf:
            if self._begins_unit(self._buf):
                self._unit_head_cut()  # a unit's first bytes: written, then a crash
                return
            self._lose()
        if self._lost_at is not None:
            self._resync(at_end=True)  # what is left can no longer complete a unit
        elif self.in_unit:
            self._cut(self._last_complete())

    def _last_complete(self) -> int:
        """The stored offset where the last complete part of the open unit ends: a zstd
        block (or the frame header, before any), a gzip sync flush (or the member's
        header, before any); a skippable frame carries no frames, so its end. Zero bytes
        after it are a power cut's tail (as zeros after the end are): they lost nothing."""
        end = self.offset + len(self._buf)
        if self._zstd is not None:
            header = min(self._zstd.header, len(self._buf))
            return end if not self._buf[header:].strip(b"\0") else self.offset + header
        if self._gzip is not None:
            if self._gzip_zeros:
                return end
            return min(self._gzip_flushed if self._gzip_synced else self._gzip_output_end(), end)
        return end

    def _gzip_output_end(self) -> int:
        """A member never sync-flushed (another writer): its deflate blocks cannot be found
        without a bit-level walk, so the last decodable point is just past the stored byte
        that completed the last complete line, found by feeding the last step's bytes again
        one at a time from the state before it (the step's start if none completed one)."""
        if self._gzip_step_was is None:
            return self._gzip_flushed
        state, at, data, used = self._gzip_step_was
        dobj = state.copy()
        last = at
        for i in range(used):
            if b"\n" in dobj.decompress(data[i : i + 1]):
                last = at + i + 1
        return max(last, self._gzip_flushed)

    def _unit_head_cut(self) -> None:
        """The end holds the first bytes of a unit that never opened: a zstd frame whose
        header is there and whose first block is not (too short to open) is cut inside
        that block; anything shorter only began (cut short)."""
        header = _zstd_header_size(self._buf[:14]) if self.codec == "zstd" else 0
        is_frame = self._buf[:4] == seektable.ZSTD_MAGIC
        self._cut(self.offset + header if is_frame and header else self.offset + len(self._buf))

    def _cut(self, complete: int) -> None:
        """The file ends; everything up to ``complete`` decoded whole."""
        end = self.offset + len(self._buf)
        if complete < end:
            self.stats.cut_inside(complete, end - complete)
        else:
            self.stats.cut_short = True

    def _begins_unit(self, head: bytes) -> bool:
        """Whether ``head``, too short to judge, is how a unit of this codec begins."""
        if self.codec == "gzip":
            return GZIP_MEMBER.startswith(head[:3])
        if self.codec != "zstd":
            return False
        if seektable.ZSTD_MAGIC.startswith(head[:4]):
            return len(head) < 5 or bool(_zstd_header_size(head))
        # a skippable frame's head: magic 0x184D2A5? (little-endian: ?5 2A 4D 18), size
        return len(head) < 8 and head[0] & 0xF0 == 0x50 and b"\x2a\x4d\x18".startswith(head[1:4])

    # ----------------------------------------------------------------- plain

    def _plain(self, limit: int) -> Decoded | None:
        if not self._buf:
            return None
        data, self._buf = self._buf[:limit], self._buf[limit:]
        self.offset += len(data)
        return Decoded(data, None)

    # ----------------------------------------------------------------- damage

    def _lose(self) -> bytes:
        """The bytes at ``offset`` do not decode: search past them for the next unit. Damage
        right where the last search resumed, before anything decoded, widens that region
        instead of starting another."""
        self._zstd = None
        self._gzip = None
        self._skip = 0
        self._search_from = self.offset + 1
        last = self.stats.damage[-1] if self.stats.damage else None
        if self._resumed_at == self.offset and last and last.end == self.offset:
            self.stats.damage.pop()
            self._lost_at = last.offset
            self._lost_nonzero = last.kind is not DamageKind.ZEROS
            return b""
        self._lost_at = self.offset
        self._lost_nonzero = False
        # Always a newline (an empty line is skipped): the same bytes decode to the same
        # positions from any start, which is what a start's skip relies on.
        return b"\n"

    def _resync(self, *, at_end: bool) -> bool:
        """Drop bytes up to the next place decoding can begin; False when none is in sight
        yet. A candidate too close to the end of what arrived to be judged is waited for,
        so where decoding resumes never depends on how the reads happened to fall."""
        assert self._lost_at is not None
        begin = max(0, self._search_from - self.offset)
        found, sure = self._find_unit(self._buf, begin)
        if found >= 0 and not sure and at_end:
            found = -1  # too short to be the unit it begins like: damage to the end
        if found < 0:
            keep = 0 if at_end else min(len(self._buf), 7)  # a magic may straddle reads
            self._drop(len(self._buf) - keep)
            if at_end:
                self._note_lost()
            return False
        self._drop(found)
        if not sure:
            return False  # judge it when its header has arrived
        self._note_lost()
        self._resumed_at = self.offset
        return True

    def _drop(self, count: int) -> None:
        dropped = self._buf[:count]
        self._lost_nonzero |= bool(dropped.strip(b"\0"))
        self._buf = self._buf[count:]
        self.offset += count

    def _note_lost(self) -> None:
        assert self._lost_at is not None
        if self.offset > self._lost_at:
            length = self.offset - self._lost_at
            self.stats.note(Damage.region(self._lost_at, length, zeros=not self._lost_nonzero))
        self._lost_at = None

    def _find_unit(self, data: bytes, begin: int) -> tuple[int, bool]:
        """Where in ``data`` (from ``begin``) the next unit may begin — a line (plain), a
        gzip member, a zstd frame with a possible header or one of our skippable frames
        with a possible size — and whether enough bytes arrived to judge it; −1: nowhere."""
        if self.codec == "none":  # the next line: right after a newline
            at = data.find(b"\n", begin)
            return at + 1 if at >= 0 else -1, True
        if self.codec == "gzip":
            at = data.find(GZIP_MEMBER[:1], begin)
            while at >= 0 and len(data) - at >= len(GZIP_MEMBER):
                if data[at : at + len(GZIP_MEMBER)] == GZIP_MEMBER:
                    return at, True
                at = data.find(GZIP_MEMBER[:1], at + 1)
            return at, False
        finds = [_find(data, seektable.ZSTD_MAGIC, begin, _zstd_header_size, 5)]
        finds += [_find(data, m, begin, _our_skippable, 8) for m in _OUR_MAGICS]
        hits = [hit for hit in finds if hit[0] >= 0]
        return min(hits, default=(-1, True))

    # ----------------------------------------------------------------- zstd

    def _zstd_step(self, room: int) -> tuple[bytes, Start | None] | None:
        """One piece of work: pass a skippable frame, open a frame, or decode blocks."""
        if self._skip:
            passed = min(self._skip, len(self._buf))
            self._buf, self._skip = self._buf[passed:], self._skip - passed
            self.offset += passed
            return (b"", None) if passed else None
        frame = self._zstd
        if frame is None:
            return self._zstd_open()
        out: list[bytes] = []
        size = 0
        pos = 0
        buf = self._buf
        try:
            while size < room:
                need = frame.next_part(buf, pos)
                if need is None:
                    break  # the block (or checksum) has not fully arrived
                if need < 0:
                    raise zstandard.ZstdError("bad block header")
                part = buf[pos : pos + need]
                data = b"" if frame.dobj is None else frame.dobj.decompress(part)
                pos += need
                if data:
                    out.append(data)
                    size += len(data)
                if frame.done:
                    self._zstd = None
                    break
        except zstandard.ZstdError:
            self._buf, self.offset = buf[pos:], self.offset + pos
            out.append(self._lose())
            return b"".join(out), None
        self._buf, self.offset = buf[pos:], self.offset + pos
        if not pos:
            return None
        return b"".join(out), None

    def _zstd_open(self) -> tuple[bytes, Start | None] | None:
        buf = self._buf
        if len(buf) < 8:
            return None
        head = seektable.read_head(buf[:8])
        if head is not None:
            if head[0] in _OUR_MAGIC_NUMBERS and not _our_skippable(buf[:8]):
                return self._lose(), None  # ours, with a size ours never have
            self._skip = 8 + head[1]  # anyone's: passed by counting, never held
            return b"", None
        header = _zstd_header_size(buf[:14]) if buf[:4] == seektable.ZSTD_MAGIC else 0
        if not header:
            return self._lose(), None
        if len(buf) < header:
            return None
        checksum = bool(buf[4] & 0x04)
        dctx = zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW)
        self._zstd = _ZstdFrame(dctx.decompressobj() if self._decode else None, header, checksum)
        restart = Start(self.offset) if self._restarts else None
        return b"", restart

    # ----------------------------------------------------------------- gzip

    def _gzip_step(self, room: int) -> tuple[bytes, Start | None] | None:
        """Inflate some of the current member, or open the next; bounded by ``room``."""
        if not self._buf:
            return None
        dobj = self._gzip
        restart = None
        if dobj is None:
            if len(self._buf) < 3:
                return None
            if self._buf[:3] != GZIP_MEMBER:
                return self._lose(), None
            dobj = self._gzip = zlib.decompressobj(31)
            self._since_checkpoint = 0
            self._gzip_flushed, self._gzip_tail = self.offset + GZIP_HEADER, b""
            self._gzip_zeros = False  # the header's own bytes, until a flush
            self._gzip_synced = False
            if self._restarts:
                restart = Start(self.offset)
                return b"", restart
        pending = self._buf
        saved = dobj.copy()
        try:
            out = dobj.decompress(pending, room)
        except zlib.error:
            return self._inflate_to_damage(saved, room), None
        used = len(pending) - len(dobj.unconsumed_tail) - len(dobj.unused_data)
        self._track_flush(pending, used)
        if used:
            self._gzip_step_was = (saved, self.offset, pending, used)
        self.offset += used
        self._since_checkpoint += used
        self._buf = dobj.unconsumed_tail or dobj.unused_data
        if dobj.eof:
            self._gzip = None
        elif (
            self._restarts
            and self._since_checkpoint >= self._checkpoint_every
            and not dobj.unconsumed_tail
        ):
            restart = Start(self.offset, zlib_state=dobj.copy())
            self._since_checkpoint = 0
        if not out and not used and not dobj.eof:
            return None
        return out, restart

    def _inflate_to_damage(self, dobj: Any, room: int) -> bytes:
        """zlib drops what a failing call produced: feed the same bytes again one at a time
        from the state before it, keeping every byte that decodes before the damage — so
        the same bytes decode to the same positions wherever the reads happened to end."""
        self._gzip = dobj
        pending = self._buf
        out: list[bytes] = []
        size = consumed = 0
        while consumed < len(pending) and size < room and not dobj.eof:
            try:
                piece = dobj.decompress(pending[consumed : consumed + 1], room - size)
            except zlib.error:
                self._advance(consumed)
                return b"".join(out) + self._lose()
            out.append(piece)
            size += len(piece)
            consumed += 1 - len(dobj.unconsumed_tail)
            if dobj.unconsumed_tail:
                break
        self._advance(consumed)
        if dobj.eof:
            self._gzip = None
        elif not consumed and not size:
            return self._lose()  # no byte goes in and nothing comes out: stuck on damage
        return b"".join(out)

    def _track_flush(self, data: bytes, used: int) -> None:
        """Note where the last sync flush in the first ``used`` bytes of ``data`` (stored
        at :attr:`offset`, about to be passed) ends, one split across reads included."""
        found = data.rfind(SYNC_FLUSH, 0, used)
        since = 0  # where in ``data`` the bytes after the last flush begin
        if found >= 0:
            self._gzip_flushed = self.offset + found + len(SYNC_FLUSH)
            since, self._gzip_zeros = found + len(SYNC_FLUSH), True
            self._gzip_synced = True
        elif used:
            edge = (self._gzip_tail + data[: min(used, 3)]).rfind(SYNC_FLUSH)
            if edge >= 0:
                self._gzip_flushed = self.offset - len(self._gzip_tail) + edge + len(SYNC_FLUSH)
                since, self._gzip_zeros = edge + len(SYNC_FLUSH) - len(self._gzip_tail), True
                self._gzip_synced = True
        if since < used:
            self._gzip_zeros &= data.count(0, since, used) == used - since
        if used:
            self._gzip_tail = (self._gzip_tail + data[max(0, used - 3) : used])[-3:]

    def _advance(self, consumed: int) -> None:
        self._track_flush(self._buf, consumed)
        self._buf = self._buf[consumed:]
        self.offset += consumed
        self._since_checkpoint += consumed


@attrs.define
class _ZstdFrame:
    """Where we are in one zstd frame: its header, then blocks, then the checksum."""

    dobj: Any
    header: int  # bytes of the frame header still to hand over with the first block
    checksum: bool
    last_seen: bool = False
    done: bool = False

    def next_part(self, buf: bytes, pos: int) -> int | None:
        """Stored bytes of the next complete part at ``pos`` (the header rides with the
        first block); None until they have all arrived, −1 when the header is impossible."""
        if self.last_seen:  # only the checksum is left
            if len(buf) - pos < 4:
                return None
            self.done = True
            return 4
        lead = self.header
        if len(buf) - pos < lead + 3:
            return None
        (b0, b1, b2) = buf[pos + lead : pos + lead + 3]
        value = b0 | b1 << 8 | b2 << 16
        kind, size = (value >> 1) & 3, value >> 3
        if kind == 3 or size > BLOCK_MAX:
            return -1
        total = lead + 3 + (1 if kind == 1 else size)
        if len(buf) - pos < total:
            return None
        self.header = 0
        if value & 1:
            self.last_seen = True
            self.done = not self.checksum
        return total


_OUR_MAGIC_NUMBERS: Final = (seektable.MARKER_MAGIC, seektable.TABLE_MAGIC, seektable.TRAILER_MAGIC)
_OUR_MAGICS: Final = tuple(m.to_bytes(4, "little") for m in _OUR_MAGIC_NUMBERS)


def _find(
    data: bytes, magic: bytes, begin: int, plausible: Callable[[bytes], int], need: int
) -> tuple[int, bool]:
    """The first ``magic`` in ``data`` from ``begin`` whose next bytes are plausible, and
    whether its ``need`` bytes had all arrived (if not, it is returned unjudged)."""
    at = begin
    while (at := data.find(magic, at)) >= 0:
        if len(data) - at < need:
            return at, False
        if plausible(data[at : at + 14]):
            return at, True
        at += 1
    return -1, True


def _our_skippable(head: bytes) -> int:
    """Nonzero when ``head`` is one of our skippable frames with a size it may have."""
    parsed = seektable.read_head(head[:8])
    if parsed is None:
        return 0
    magic, size = parsed
    limit = {
        seektable.MARKER_MAGIC: seektable.MAX_MARKER_PAYLOAD,
        seektable.TABLE_MAGIC: seektable.MAX_TABLE_PAYLOAD,
        seektable.TRAILER_MAGIC: 8,
    }.get(magic, -1)
    return int(0 < size <= limit)


def _zstd_header_size(head: bytes) -> int:
    """Bytes of the zstd frame header at the start of ``head`` (magic included), or 0 when
    they cannot begin a frame (RFC 8878 §3.1.1.1: reserved bit set, too short)."""
    if len(head) < 5:
        return 0
    fhd = head[4]
    if fhd & 0x08:
        return 0
    single = bool(fhd & 0x20)
    fcs = (1 if single else 0, 2, 4, 8)[fhd >> 6]
    did = (0, 1, 2, 4)[fhd & 3]
    return 5 + (0 if single else 1) + did + fcs


# --------------------------------------------------------------------------- lines


class RawLine(NamedTuple):
    raw: bytes
    position: int  # decoded offset of the line's first byte, counted from the start
    restart: Start  # the last start at or before this line
    restart_position: int  # decoded offset of that start


def start_at(codec: str, restart: Start, restart_position: int, position: int) -> Start:
    """Where a line that begins at decoded ``position`` can be decoded from, given the last
    start at or before it (met at decoded ``restart_position``)."""
    if codec == "none":  # plain: decoded offsets are stored offsets
        return Start(restart.offset + position - restart_position)
    return restart.skipping(position - restart_position)


class LineSplitter:
    """Complete lines out of decoded pieces as they come: the one splitter of the scan and
    the follower. Each line (without ``\\n``, ``\\r`` stripped) comes with the decoded offset
    it begins at and the last start at or before it — a start may fall mid-line (a zlib
    checkpoint), so a line carries the start that was in effect when its first byte was
    decoded. A line over 16 MiB (counted before its ``\\r`` is stripped, as
    :func:`fast_lines` does) is dropped whole and never held past the cap; an empty line is
    no line. An unfinished last line is pending until :meth:`finish` calls it torn."""

    def __init__(self, stats: LineStats, first: Start) -> None:
        self.stats = stats
        self.at = 0  # decoded offset of the next byte
        self._current: tuple[Start, int] = (first, 0)  # the latest start, its decoded offset
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._pending_from: tuple[Start, int] = self._current  # in effect at its first byte
        self._pending_at = 0
        self._oversized = False  # inside a line over the cap: drop it up to its newline

    def push(self, data: bytes) -> list[RawLine]:
        """The lines that ``data`` completes."""
        lines: list[RawLine] = []
        begin = 0
        while (nl := data.find(b"\n", begin)) >= 0:
            if self._oversized:
                self._oversized = False
            elif self._pending:
                size = self._pending_size + nl - begin
                if size > MAX_LINE:
                    self.stats.oversized += 1
                else:
                    raw = b"".join([*self._pending, data[begin:nl]])
                    self._keep(lines, raw, self._pending_at, self._pending_from)
                self._pending, self._pending_size = [], 0
            elif nl - begin > MAX_LINE:
                self.stats.oversized += 1
            elif nl > begin:
                self._keep(lines, data[begin:nl], self.at + begin, self._current)
            begin = nl + 1
        if begin < len(data) and not self._oversized:
            if not self._pending:
                self._pending_at, self._pending_from = self.at + begin, self._current
            self._pending.append(data[begin:])
            self._pending_size += len(data) - begin
            if self._pending_size > MAX_LINE:
                self._pending, self._pending_size, self._oversized = [], 0, True
                self.stats.oversized += 1
        self.at += len(data)
        return lines

    @staticmethod
    def _keep(lines: list[RawLine], raw: bytes, at: int, origin: tuple[Start, int]) -> None:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if raw:
            lines.append(RawLine(raw, at, origin[0], origin[1]))

    def restart(self, start: Start) -> None:
        """Decoding can begin again right here (at :attr:`at`)."""
        self._current = (start, self.at)

    def finish(self) -> None:
        """The end of what will come: a line still pending is a torn tail."""
        if self._pending or self._oversized:
            self.stats.torn_tail = True


def split_lines(blocks: Iterator[Decoded], stats: LineStats, first: Start) -> Iterator[RawLine]:
    """Every complete line of ``blocks`` (decoded from ``first``), as :class:`LineSplitter`
    cuts them; a torn tail is noted at the end."""
    splitter = LineSplitter(stats, first)
    for data, restart in blocks:
        yield from splitter.push(data)
        if restart is not None:
            splitter.restart(restart)
    splitter.finish()


def fast_lines(blocks: Iterator[bytes], stats: LineStats) -> Iterator[bytes]:
    """Complete lines of decoded blocks, split in C (``bytes.split``): the seek path, which
    needs no positions. Same rules as :class:`LineSplitter`: 16 MiB cap, torn tail noted."""
    pending = b""
    skipping = False  # inside a line over the cap: drop it up to its newline
    for data in blocks:
        parts = data.split(b"\n")
        tail = parts.pop()
        if parts:
            first = pending + parts[0]
            parts[0] = b"" if skipping else first
            skipping = False
            pending = tail
        else:
            pending = b"" if skipping else pending + tail
        if len(pending) > MAX_LINE:
            pending, skipping = b"", True
            stats.oversized += 1
        for line in parts:
            if not line or len(line) > MAX_LINE:
                stats.oversized += len(line) > MAX_LINE
                continue
            yield line[:-1] if line[-1] == 13 else line
    if pending or skipping:
        stats.torn_tail = True


def iter_file_lines(path: os.PathLike[str] | str) -> Iterator[bytes]:
    """Every complete line of a whole stored file, decoded; the simple front-to-back read."""
    stats = LineStats()
    with open(path, "rb") as fh:
        codec = sniff(fh.read(8))
        start = Start(0)
        blocks = decode_with_restarts(fh, codec, start, stats, restarts=False, judge_end=False)
        for line in split_lines(blocks, stats, start):
            yield line.raw
