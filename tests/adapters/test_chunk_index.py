"""The chunk index of one segment — from its footer, its markers or one scan — and the
typed damage records reading it leaves on the segment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from allsmi.adapters.recording import index, seektable
from allsmi.adapters.recording.damage import Damage, DamageKind, DamageLog
from allsmi.adapters.recording.decoding import LineSplitter, LineStats, Start, sniff
from allsmi.adapters.recording.index import (
    Chunk,
    SchemaCheck,
    SegmentInfo,
    from_footer,
    from_markers,
    read_chunk,
    scan,
)
from allsmi.adapters.recording.sink import Codec
from allsmi.domain.errors import UnsupportedSchema

from . import recordings as rec


def segment_of(path: Path) -> SegmentInfo:
    with open(path, "rb") as fh:
        codec = sniff(fh.read(8))
    return SegmentInfo(path=path, codec=codec, size=os.path.getsize(path))


def scanned(path: Path, warnings: list[str] | None = None) -> tuple[SegmentInfo, list[Chunk]]:
    segment = segment_of(path)
    with open(path, "rb") as fh:
        chunks = scan(
            fh,
            segment,
            0,
            key_before=None,
            schema=SchemaCheck(),
            warnings=[] if warnings is None else warnings,
        )
    return segment, chunks


def test_a_closed_zstd_file_is_indexed_by_its_footer(tmp_path: Path) -> None:
    path = tmp_path / "f.ndjson.zst"
    truth = rec.write_sink(path, 250, Codec.ZSTD, chunk_frames=100)
    segment = segment_of(path)
    with open(path, "rb") as fh:
        chunks = from_footer(fh, segment, 0)
    assert chunks is not None and segment.opened_by == "footer"
    assert [c.count for c in chunks] == [100, 100, 50]
    assert [c.seq_first for c in chunks] == [0, 100, 200]
    assert [c.t_first for c in chunks] == [truth[0][0], truth[100][0], truth[200][0]]
    assert all(c.keys is None for c in chunks)  # nothing decoded to find them


def test_a_crash_cut_zstd_file_has_no_footer_but_a_marker_chain(tmp_path: Path) -> None:
    path = tmp_path / "m.ndjson.zst"
    rec.write_sink(path, 250, Codec.ZSTD, close=False, chunk_frames=100)
    segment = segment_of(path)
    with open(path, "rb") as fh:
        assert from_footer(fh, segment, 0) is None
        chunks = from_markers(fh, segment, 0)
    assert chunks is not None and segment.opened_by == "markers"
    assert [c.count for c in chunks] == [100, 100, None]  # the last is counted when read
    assert [c.seq_first for c in chunks] == [0, 100, 200]


def test_a_marker_chain_that_does_not_reach_the_start_is_no_index(tmp_path: Path) -> None:
    path = tmp_path / "m.ndjson.zst"
    rec.write_sink(path, 250, Codec.ZSTD, close=False, chunk_frames=100)
    path.write_bytes(b"junk before it" + path.read_bytes())  # a `cat` of something first
    segment = segment_of(path)
    with open(path, "rb") as fh:
        assert from_markers(fh, segment, 0) is None


def test_a_scan_chunks_the_frames_and_knows_every_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index, "CHUNK_FRAMES", 40)
    path = tmp_path / "p.ndjson"
    truth = rec.write_sink(path, 100, Codec.NONE, dup=3)
    segment, chunks = scanned(path)
    assert segment.opened_by == "scan" and segment.scans == 1
    assert [c.count for c in chunks] == [40, 40, 20]
    assert [t for c in chunks for t in c.times or ()] == [t for t, _ in truth]
    for c in chunks:  # each chunk decodes from its start (a plain file: a line's offset)
        lines, _ = read_chunk(segment, c, LineStats(), last=False, warnings=[])
        assert len(lines) == c.count


@pytest.mark.parametrize("kind", [Codec.GZIP, Codec.ZSTD])
def test_a_scan_of_a_compressed_file_starts_chunks_where_decoding_can_begin(
    tmp_path: Path, kind: Codec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index, "CHUNK_FRAMES", 30)
    path = tmp_path / f"c.ndjson.{kind.value}"
    rec.write_sink(path, 90, kind, chunk_frames=7)
    segment, chunks = scanned(path)
    assert [c.count for c in chunks] == [30, 30, 30]
    ids = []
    for c in chunks:
        lines, _ = read_chunk(segment, c, LineStats(), last=False, warnings=[])
        ids += [line.split(b'"used_bytes":')[1].split(b",")[0] for line in lines]
    assert ids == [str(i).encode() for i in range(90)]


def test_a_scan_records_corrupt_lines_and_a_torn_tail_as_typed_damage(tmp_path: Path) -> None:
    path = tmp_path / "d.ndjson"
    rec.write_sink(path, 20, Codec.NONE)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[5] = b"not a recording line\n"
    lines[9] = b'{"schema":1,"t":"garbage\n'
    path.write_bytes(b"".join(lines) + b'{"schema":1,"t":"2026')
    warnings: list[str] = []
    segment, chunks = scanned(path, warnings)
    assert segment.count(DamageKind.CORRUPT_LINE) == 2
    assert segment.count(DamageKind.TORN_TAIL) == 1
    assert sum(c.count or 0 for c in chunks) == 18
    assert warnings == ["d.ndjson: torn last line dropped"]


def test_the_first_line_with_a_schema_decides(tmp_path: Path) -> None:
    path = tmp_path / "s.ndjson"
    path.write_bytes(b"junk\n" + b'{"schema":3,"t":"2026-04-18T12:00:00.000Z"}\n')
    with pytest.raises(UnsupportedSchema):
        scanned(path)


def test_a_chunk_whose_index_line_is_not_what_the_table_said_is_table_damage(
    tmp_path: Path,
) -> None:
    path = tmp_path / "l.ndjson.zst"
    rec.write_sink(path, 300, Codec.ZSTD, chunk_frames=100)
    segment = segment_of(path)
    with open(path, "rb") as fh:
        chunks = from_footer(fh, segment, 0)
    assert chunks is not None
    lying = chunks[1]
    lying.seq_first = 7  # the bytes there say 100
    warnings: list[str] = []
    lines, _ = read_chunk(segment, lying, LineStats(), last=False, warnings=warnings)
    assert lines == [] and not lying.verified
    assert segment.count(DamageKind.TABLE_DAMAGED) == 1
    assert "seek table points at the wrong bytes" in warnings[0]
    good, times = read_chunk(segment, chunks[0], LineStats(), last=False, warnings=[])
    assert len(good) == len(times) == 100 and chunks[0].verified


# --------------------------------------------------------------------------- damage records


def test_counted_damage_adds_up_flags_are_kept_once_and_regions_one_by_one() -> None:
    log = DamageLog()
    assert log.add(Damage(DamageKind.CORRUPT_LINE))
    assert log.add(Damage(DamageKind.CORRUPT_LINE, 4))
    assert log.add(Damage(DamageKind.TORN_TAIL))
    assert not log.add(Damage(DamageKind.TORN_TAIL))
    assert log.add(Damage.region(100, 20, zeros=False))
    assert not log.add(Damage.region(100, 20, zeros=False))  # the same region, found again
    assert log.add(Damage.region(500, 8, zeros=True))
    assert log.count(DamageKind.CORRUPT_LINE) == 5 and log.count(DamageKind.TORN_TAIL) == 1
    assert log.count(DamageKind.UNDECODABLE) == 20 and log.count(DamageKind.ZEROS) == 8
    assert [d.offset for d in log.regions()] == [100, 500]
    log.forget([DamageKind.UNDECODABLE, DamageKind.TORN_TAIL])
    assert sorted(d.kind.value for d in log) == ["corrupt line", "zeros"]


def test_a_region_says_where_and_how_many_bytes() -> None:
    assert Damage.region(1234, 5678, zeros=False).describe("t.zst") == (
        "t.zst: 5,678 undecodable bytes at offset 1,234"
    )
    assert Damage.region(0, 16, zeros=True).describe("t.zst") == "t.zst: 16 zero bytes at offset 0"


# --------------------------------------------------------------------------- the splitter


def split(pieces: list[bytes], stats: LineStats) -> list[tuple[int, bytes]]:
    splitter = LineSplitter(stats, Start(0))
    out = [(line.position, line.raw) for piece in pieces for line in splitter.push(piece)]
    splitter.finish()
    return out


@pytest.mark.parametrize("size", [1, 2, 3, 5, 64])
def test_lines_are_the_same_however_the_pieces_fall(size: int) -> None:
    data = b'{"a":1}\r\n\n{"bb":22}\n' + b"x" * 100 + b"\n{}"
    whole_stats, piece_stats = LineStats(), LineStats()
    whole = split([data], whole_stats)
    pieces = split([data[i : i + size] for i in range(0, len(data), size)], piece_stats)
    assert whole == pieces == [(0, b'{"a":1}'), (10, b'{"bb":22}'), (20, b"x" * 100)]
    assert whole_stats.torn_tail and piece_stats.torn_tail  # `{}` never ended


def test_a_line_over_16_mib_is_dropped_whole_while_it_grows() -> None:
    from allsmi.adapters.recording.decoding import MAX_LINE

    stats = LineStats()
    splitter = LineSplitter(stats, Start(0))
    assert [line.raw for line in splitter.push(b"a\n" + b"y" * (MAX_LINE // 2))] == [b"a"]
    splitter.push(b"y" * (MAX_LINE // 2 + 1))  # over the cap: dropped, nothing held
    assert stats.oversized == 1
    tail = splitter.push(b"y" * 1000 + b"\nb\n")
    assert [line.raw for line in tail] == [b"b"] and stats.oversized == 1
    splitter.finish()
    assert not stats.torn_tail


def test_each_line_carries_the_start_in_effect_at_its_first_byte() -> None:
    first, later = Start(0), Start(999)
    splitter = LineSplitter(LineStats(), first)
    assert splitter.push(b"one\ntw") and splitter.at == 6
    splitter.restart(later)  # decoding can begin again here, in the middle of "two"
    lines = splitter.push(b"o\nthree\n")
    assert [(x.raw, x.restart, x.restart_position) for x in lines] == [
        (b"two", first, 0),
        (b"three", later, 6),
    ]


def test_a_skippable_frame_between_chunks_is_passed(tmp_path: Path) -> None:
    path = tmp_path / "k.ndjson.zst"
    rec.write_sink(path, 30, Codec.ZSTD, close=False, chunk_frames=10)
    data = path.read_bytes()
    assert data.count(seektable.MARKER_MAGIC.to_bytes(4, "little")) == 3
    segment, chunks = scanned(path)
    assert sum(c.count or 0 for c in chunks) == 30 and not segment.damage.regions()
    assert segment.count(DamageKind.CUT_SHORT) == 1  # still being written: no damage
