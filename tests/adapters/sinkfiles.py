"""Test helpers that take a stored recording apart unit by unit, independently of the reader."""

from __future__ import annotations

import zlib
from pathlib import Path

import attrs
import orjson
import zstandard

from allsmi.adapters.recording import seektable


@attrs.frozen
class Unit:
    offset: int
    kind: str  # "marker" | "table" | "trailer" | "zstd" | "gzip"
    payload: bytes  # decoded content (JSON for skippables, lines for data)


def walk_zstd(path: Path) -> list[Unit]:
    """Every frame of a zstd file in order: skippable frames parsed, zstd frames decoded."""
    data = path.read_bytes()
    units, at = [], 0
    kinds = {
        seektable.MARKER_MAGIC: "marker",
        seektable.TABLE_MAGIC: "table",
        seektable.TRAILER_MAGIC: "trailer",
    }
    while at < len(data):
        head = seektable.read_head(data[at : at + 8])
        if head is not None:
            magic, size = head
            units.append(Unit(at, kinds[magic], data[at + 8 : at + 8 + size]))
            at += 8 + size
            continue
        assert data[at : at + 4] == seektable.ZSTD_MAGIC, f"garbage at {at}"
        dobj = zstandard.ZstdDecompressor().decompressobj()
        out = dobj.decompress(data[at:])
        units.append(Unit(at, "zstd", out))
        at = len(data) - len(dobj.unused_data)
    return units


def walk_gzip(path: Path) -> list[Unit]:
    """Every gzip member of a file in order, decoded."""
    data = path.read_bytes()
    units, at = [], 0
    while at < len(data):
        dobj = zlib.decompressobj(31)
        out = dobj.decompress(data[at:])
        units.append(Unit(at, "gzip", out))
        at = len(data) - len(dobj.unused_data)
    return units


def lines_of(payload: bytes) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in payload.splitlines()]
