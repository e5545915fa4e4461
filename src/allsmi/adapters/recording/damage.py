"""What reading a recording found wrong with it, as typed records.

Every kind of damage the reader and the follower can meet is one :class:`DamageKind`; a
:class:`Damage` record says which, how much (lines, chunks or stored bytes, by kind) and,
for stored bytes, where they begin. ``allsmi verify`` counts the records by kind; the message
line shows :meth:`Damage.describe`. Nothing downstream ever reads the text back.

Records of a segment are kept by :class:`DamageLog`: counted kinds (lines, chunks) add up
into one record each, flags (a torn tail, a unit cut short, a damaged table) are kept once,
and byte regions are kept one by one, in file order.

A file that ends where the writer's flush ended (a complete block, a sync flush: what
``kill -9`` leaves) is *cut short*: nothing lost. One that ends inside a block is *cut inside
a block*: the stored bytes after the last complete block (zstd: the incomplete block, from
its header, or an incomplete checksum; gzip: everything after the member's last sync flush,
a block of our writer) are what is left of a block that never completed. Their region is
the record, one per segment (a file has one end); all zeros there are a power cut's tail,
not a cut (docs/recording-format.md §9).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from typing import Final

import attrs


class DamageKind(enum.Enum):
    UNDECODABLE = "undecodable"  # stored bytes that are no frame, member or block
    ZEROS = "zeros"  # zero bytes after the end (a power cut's tail): nothing lost
    CORRUPT_LINE = "corrupt line"  # a line that is not a recording line
    OVERSIZED_LINE = "oversized line"  # a line over 16 MiB, skipped whole
    TORN_TAIL = "torn tail"  # the last line has no newline
    CUT_SHORT = "cut short"  # the last zstd frame / gzip member ends mid-way (crash, live)
    CUT_INSIDE = "cut inside a block"  # the file ends inside a block: its stored bytes lost
    TABLE_DAMAGED = "table damaged"  # a seek table pointed at the wrong bytes: scanned
    SHORT_CHUNK = "short chunk"  # a chunk held fewer frames than its seek table said
    UNSTRUCTURED = "unstructured"  # a frame line that does not structure
    SUMMARY_MISMATCH = "summary mismatch"  # a stored chunk summary its frames contradict


# bytes, with offsets
REGIONS: Final = frozenset({DamageKind.UNDECODABLE, DamageKind.ZEROS, DamageKind.CUT_INSIDE})
FLAGS: Final = frozenset({DamageKind.TORN_TAIL, DamageKind.CUT_SHORT, DamageKind.TABLE_DAMAGED})


@attrs.frozen
class Damage:
    """One finding: its kind, how many (lines, chunks; stored bytes for a region) and where
    a region of stored bytes begins."""

    kind: DamageKind
    count: int = 1
    offset: int = 0  # where a region begins (regions only)

    @classmethod
    def region(cls, offset: int, length: int, *, zeros: bool) -> Damage:
        """Stored bytes that did not decode; all zeros is what a power cut leaves."""
        return cls(DamageKind.ZEROS if zeros else DamageKind.UNDECODABLE, length, offset)

    @property
    def end(self) -> int:
        """Where a region ends (its offset plus its length)."""
        return self.offset + self.count

    def describe(self, name: str) -> str:
        """The message line's words for it, in file ``name``."""
        match self.kind:
            case DamageKind.UNDECODABLE | DamageKind.ZEROS:
                what = "zero bytes" if self.kind is DamageKind.ZEROS else "undecodable bytes"
                return f"{name}: {self.count:,} {what} at offset {self.offset:,}"
            case DamageKind.CUT_INSIDE:
                return (
                    f"{name}: cut inside a compressed block at offset {self.offset:,}: the "
                    f"{self.count:,} stored byte(s) after the last decodable point lost"
                )
            case DamageKind.TORN_TAIL:
                return f"{name}: torn last line dropped"
            case DamageKind.OVERSIZED_LINE:
                return f"{name}: a line over 16 MiB skipped"
            case DamageKind.TABLE_DAMAGED:
                return f"{name}: seek table damaged; scanned"
            case _:
                return f"{name}: {self.count:,} {self.kind.value}(s)"


class DamageLog:
    """The damage records of one segment (see the module's rules on how they add up)."""

    def __init__(self) -> None:
        self._counts: dict[DamageKind, int] = {}  # counted kinds and flags
        self._regions: list[Damage] = []  # in file order

    def __iter__(self) -> Iterator[Damage]:
        yield from (Damage(kind, count) for kind, count in self._counts.items())
        yield from self._regions

    def __bool__(self) -> bool:
        return bool(self._counts or self._regions)

    def __repr__(self) -> str:
        return f"DamageLog({list(self)!r})"

    def count(self, kind: DamageKind) -> int:
        """Lines, chunks or bytes of ``kind``; 1 for a flag that is set."""
        if kind in REGIONS:
            return sum(d.count for d in self._regions if d.kind is kind)
        return self._counts.get(kind, 0)

    def regions(self) -> list[Damage]:
        return list(self._regions)

    def add(self, damage: Damage) -> bool:
        """Keep ``damage``; False when it was known already (the same region, a flag set)."""
        if damage.kind in REGIONS:
            if damage in self._regions:
                return False
            if damage.kind is DamageKind.CUT_INSIDE and self.count(DamageKind.CUT_INSIDE):
                return False  # a file has one end: the first read that reached it says where
            self._regions.append(damage)
            return True
        if damage.kind in FLAGS:
            if damage.kind in self._counts:
                return False
            self._counts[damage.kind] = 1
            return True
        self._counts[damage.kind] = self._counts.get(damage.kind, 0) + damage.count
        return True

    def forget(self, kinds: Iterable[DamageKind]) -> None:
        """Drop every record of ``kinds`` (a scan is about to see them all again)."""
        dropped = frozenset(kinds)
        self._counts = {k: n for k, n in self._counts.items() if k not in dropped}
        self._regions = [d for d in self._regions if d.kind not in dropped]
