"""Bytes after the end, damage in the middle, lying seek tables, files that are not files:
the reader keeps every frame it can decode and ``verify`` says what it found, where."""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import orjson
import pytest
import zstandard

from allsmi.adapters import wire
from allsmi.adapters.recording import decoding, seektable, sink
from allsmi.adapters.recording.damage import Damage
from allsmi.adapters.recording.sink import Codec
from allsmi.adapters.recording.source import RecordingSource
from allsmi.app.verify import build_report
from allsmi.domain.errors import UsageError
from allsmi.domain.model import Header

from . import recordings as rec

COMPRESSED = [Codec.ZSTD, Codec.GZIP]


def with_tail(tmp_path: Path, n: int, kind: Codec, tail: bytes) -> tuple[Path, int]:
    path = tmp_path / f"t.ndjson.{kind.value}"
    rec.write_sink(path, n, kind)
    size = path.stat().st_size
    with open(path, "ab") as fh:
        fh.write(tail)
    return path, size


def ids(source: RecordingSource) -> list[int]:
    """Every frame's id, reading on while the count is exact only once each chunk is read."""
    found, i = [], 0
    while i < source.frame_count:
        found.append((source.frame(i).memory or ())[0].used_bytes or 0)
        i += 1
    return found


@pytest.mark.parametrize("kind", COMPRESSED)
@pytest.mark.parametrize(("n", "zeros"), [(50, 16), (3000, 4096)])
def test_zeros_after_the_end_lose_nothing_and_are_a_note(
    tmp_path: Path, kind: Codec, n: int, zeros: int
) -> None:
    path, size = with_tail(tmp_path, n, kind, b"\0" * zeros)
    source = RecordingSource(path)
    assert ids(source) == list(range(n))
    report = build_report(source, deep=False)
    assert report.status == 0 and not report.damage
    assert [note.text for note in report.notes] == [
        f"{zeros:,} zero byte(s) after the end (t.ndjson.{kind.value} at {size:,}): nothing lost"
    ]


def test_a_clean_zstd_file_with_zeros_after_it_still_opens_by_its_footer(tmp_path: Path) -> None:
    path, _ = with_tail(tmp_path, 3000, Codec.ZSTD, b"\0" * 4096)
    assert RecordingSource(path).segments[0].opened_by == "footer"


@pytest.mark.parametrize("kind", COMPRESSED)
def test_junk_after_the_end_keeps_every_frame_and_is_damage_at_its_offset(
    tmp_path: Path, kind: Codec
) -> None:
    junk = random.Random(7).randbytes(100).replace(b"\x1f\x8b", b"..").replace(b"\x28\xb5", b"..")
    path, size = with_tail(tmp_path, 50, kind, junk)
    source = RecordingSource(path)
    assert ids(source) == list(range(50))
    report = build_report(source, deep=False)
    assert report.status == 1
    assert report.damage == [f"100 undecodable byte(s) skipped (t.ndjson.{kind.value} at {size:,})"]


def test_damage_inside_a_zstd_chunk_loses_that_chunk_only(tmp_path: Path) -> None:
    path = tmp_path / "m.ndjson.zst"
    rec.write_sink(path, 1000, Codec.ZSTD, close=False, chunk_frames=100)  # markers, no footer
    data = bytearray(path.read_bytes())
    chunk_at = _offsets(bytes(data), seektable.ZSTD_MAGIC)[4]
    data[chunk_at + 40 : chunk_at + 80] = b"\xff" * 40  # the fifth chunk's blocks
    path.write_bytes(bytes(data))
    source = RecordingSource(path)
    kept = ids(source)
    assert set(kept) >= set(range(400)) | set(range(500, 1000))  # every other chunk
    report = build_report(source, deep=False)
    assert report.status == 1 and any("undecodable" in d for d in report.damage)


def _offsets(data: bytes, magic: bytes) -> list[int]:
    return [m.start() for m in re.finditer(re.escape(magic), data)]


def test_a_seek_table_with_lying_frame_counts_is_refused_and_the_file_read_right(
    tmp_path: Path,
) -> None:
    path = tmp_path / "l.ndjson.zst"
    rec.write_sink(path, 280, Codec.ZSTD)
    data = path.read_bytes()
    table_at = seektable.decode_trailer(data[-16:])
    assert table_at is not None
    table = seektable.decode_table(data[table_at + 8 : -16])
    assert table is not None
    lying = [seektable.ChunkEntry(c.offset, c.seq, c.t_ms, 28_000_000_000) for c in table.chunks]
    forged = seektable.Table(tuple(lying), table.last_seq, table.last_t_ms)
    path.write_bytes(data[:table_at] + seektable.encode_table(forged) + data[-16:])
    source = RecordingSource(path)
    assert source.frame_count == 280
    assert ids(source) == list(range(280))
    assert build_report(source, deep=False).frames == 280


def test_a_table_whose_counts_disagree_with_its_seqs_is_not_a_table() -> None:
    chunks = (seektable.ChunkEntry(8, 0, 0, 100), seektable.ChunkEntry(900, 100, 0, 100))
    good = seektable.encode_table(seektable.Table(chunks, 199, 0))[8:]
    assert seektable.decode_table(good) is not None
    for frames, last_seq in ((101, 199), (100, 250), (seektable.MAX_CHUNK_FRAMES + 1, 1100)):
        bad = (chunks[0], seektable.ChunkEntry(900, 100, 0, frames))
        payload = seektable.encode_table(seektable.Table(bad, last_seq, 0))[8:]
        assert seektable.decode_table(payload) is None


def test_oversized_lines_are_counted_in_a_file_opened_by_its_footer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "o.ndjson.zst"
    monkeypatch.setattr(sink, "MAX_LINE_BYTES", 64 << 20)  # a writer that let them through
    big = sink.RecordingSink(sink.SinkConfig(path=path, codec=Codec.ZSTD), Header(interval_ms=1000))
    for seq in range(6):
        frame = rec.make_frame(seq, rec.T0 + seq * 1000, seq)
        line = wire.encode_line(frame)
        if seq in (2, 4):  # 17 MiB and 50 MiB of padding inside the JSON object
            pad = b',"pad":"' + b"x" * ((17 if seq == 2 else 50) << 20) + b'"}\n'
            line = line[:-2] + pad
        big.append(line, seq, rec.T0 + seq * 1000)
    big.close()
    source = RecordingSource(path)
    assert source.segments[0].opened_by == "footer"
    report = build_report(source, deep=False)
    assert report.count("oversized") == 2 and report.status == 1
    assert ids(source) == [0, 1, 3, 5]


def test_a_line_of_gigabytes_in_a_zstd_bomb_is_counted_oversized(tmp_path: Path) -> None:
    path = tmp_path / "b.ndjson.zst"
    cctx = zstandard.ZstdCompressor(level=1)
    obj = cctx.compressobj()
    first = wire.encode_line(rec.make_frame(0, rec.T0, 0))
    block = b"x" * (1 << 20)
    parts = [obj.compress(first), obj.compress(b'{"schema":1,"t":"')]
    parts += [obj.compress(block) for _ in range(1024)]  # a 1 GiB line
    parts += [obj.compress(b'"}\n' + wire.encode_line(rec.make_frame(1, rec.T0 + 1000, 1)))]
    path.write_bytes(b"".join([*parts, obj.flush()]))
    assert path.stat().st_size < 1 << 20
    source = RecordingSource(path)
    assert ids(source) == [0, 1]
    assert build_report(source, deep=False).count("oversized") == 1


def interleaved(path: Path) -> None:
    """What two recorders writing one plain file leave: seqs twice, time going back."""
    header = orjson.dumps({"schema": 1, "header": True, "writer": "allsmi", "format": "chunked-1"})
    lines = [header]
    for i in range(10):
        for seq, t in ((i, rec.T0 + i * 1000), (i, rec.T0 + i * 1000 - 500)):
            lines.append(wire.encode_line(rec.make_frame(i, t, seq)).rstrip(b"\n"))
    path.write_bytes(b"\n".join(lines) + b"\n")


def test_duplicate_seqs_and_time_going_back_within_a_run_are_damage(tmp_path: Path) -> None:
    path = tmp_path / "two.ndjson"
    interleaved(path)
    report = build_report(RecordingSource(path), deep=False)
    assert report.count("duplicate") == 10
    assert report.count("backwards") == 10
    assert report.status == 1


def test_a_concatenation_restarting_seq_and_time_is_a_note_not_damage(tmp_path: Path) -> None:
    path = tmp_path / "cat.ndjson"
    rec.concatenated(path, 40, back_in_time=True)
    report = build_report(RecordingSource(path), deep=False)
    assert report.count("duplicate") == 0 and report.count("backwards") == 0
    assert report.count("runs") == 2 and report.count("clock") == 1
    assert report.status == 0


def test_segments_overlapping_in_time_are_damage(tmp_path: Path) -> None:
    path = tmp_path / "set.ndjson"
    rec.write_sink(path, 60, Codec.NONE, max_size=2000)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) >= 3
    second = tmp_path / names[1]
    lines = second.read_bytes().splitlines(keepends=True)
    shifted = [line.replace(b'"t":"2026-04-18T12:00:', b'"t":"2026-04-18T11:59:') for line in lines]
    second.write_bytes(b"".join(shifted))
    report = build_report(RecordingSource(path), deep=False)
    assert report.count("overlap") >= 1 and report.status == 1


@pytest.mark.parametrize("make", ["fifo", "device"])
def test_what_is_not_a_regular_file_is_refused_before_any_read(tmp_path: Path, make: str) -> None:
    if make == "fifo":
        path = tmp_path / "pipe.ndjson"
        os.mkfifo(path)
        kind = "a FIFO"
    else:
        path = Path("/dev/zero")
        kind = "a character device"
    with pytest.raises(UsageError, match=f"^recording {path}: not a regular file \\({kind}\\)$"):
        RecordingSource(path)


def marker_offsets(data: bytes) -> list[int]:
    return _offsets(data, seektable.MARKER_MAGIC.to_bytes(4, "little"))


def test_a_marker_claiming_a_size_ours_never_have_is_damage_not_the_end(tmp_path: Path) -> None:
    path = tmp_path / "lie.ndjson.zst"
    rec.write_sink(path, 300, Codec.ZSTD, close=False, chunk_frames=50)
    data = bytearray(path.read_bytes())
    at = marker_offsets(bytes(data))[2]
    data[at + 4 : at + 8] = (0x7FFFFFFF).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    source = RecordingSource(path)
    assert ids(source) == list(range(300))  # the chunk after the bad marker decodes too
    report = build_report(source, deep=False)
    assert report.status == 1
    assert report.damage == [f"62 undecodable byte(s) skipped (lie.ndjson.zst at {at:,})"]


@pytest.mark.parametrize("piece", [2, 4, 6, 8, 12])
def test_where_decoding_resumes_never_depends_on_how_the_reads_fell(piece: int) -> None:
    path_bytes = bytearray()  # a forged marker of ours, its size cut off by the reads
    good = _sink_bytes(300)
    at = marker_offsets(good)[2]
    junk = b"\x01junk\x02" * 10 + seektable.MARKER_MAGIC.to_bytes(4, "little")
    forged = good[:at] + junk + (0xFFFFFFF0).to_bytes(4, "little") + b"J" * 20 + good[at:]
    path_bytes += forged
    whole = _decode_in_pieces(bytes(path_bytes), [len(path_bytes)])
    cut = at + len(junk) + piece
    split = _decode_in_pieces(bytes(path_bytes), [cut, len(path_bytes) - cut])
    assert split == whole
    assert whole[1] == [Damage.region(at, len(junk) + 4 + 20, zeros=False)]


def _sink_bytes(n: int) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.ndjson.zst"
        rec.write_sink(path, n, Codec.ZSTD, close=False, chunk_frames=50)
        return path.read_bytes()


def _decode_in_pieces(data: bytes, sizes: list[int]) -> tuple[bytes, list[Damage]]:
    stats = decoding.LineStats()
    decoder = decoding.StreamDecoder("zstd", decoding.Start(0), stats, restarts=False)
    out, at = [], 0
    for size in sizes:
        decoder.feed(data[at : at + size])
        at += size
        while (block := decoder.read()) is not None:
            out.append(block.data)
    decoder.finish()
    return b"".join(out), stats.damage


def test_a_table_that_leaves_chunks_out_is_not_believed(tmp_path: Path) -> None:
    path = tmp_path / "short.ndjson.zst"
    rec.write_sink(path, 300, Codec.ZSTD, chunk_frames=50)
    data = path.read_bytes()
    table_at = seektable.decode_trailer(data[-16:])
    assert table_at is not None
    table = seektable.decode_table(data[table_at + 8 : -16])
    assert table is not None
    first = table.chunks[:3]
    forged = seektable.Table(first, first[-1].seq + first[-1].frames - 1, table.last_t_ms)
    path.write_bytes(data[:table_at] + seektable.encode_table(forged) + data[-16:])
    source = RecordingSource(path)
    assert ids(source) == list(range(300))
    assert build_report(source, deep=False).count("table") == 1


@pytest.mark.parametrize("extra", [0, 4, 6])  # nothing, part of a frame header, all of it
def test_a_crash_right_after_a_marker_is_not_closed_cleanly_not_damage(
    tmp_path: Path, extra: int
) -> None:
    data = _sink_bytes(300)
    at = marker_offsets(data)[5]
    head = seektable.read_head(data[at : at + 8])
    assert head is not None
    path = tmp_path / "cut.ndjson.zst"
    path.write_bytes(data[: at + 8 + head[1] + extra])  # its marker, then part of its frame
    source = RecordingSource(path)
    assert source.segments[0].opened_by == "markers"
    report = build_report(source, deep=False)
    assert report.frames == 250 and report.status == 0
    assert [note.rule.name for note in report.notes] == ["unclosed"]


@pytest.mark.parametrize("into_block", [1, 2, 24])
def test_a_cut_inside_a_chunks_first_block_lost_those_bytes_and_is_damage(
    tmp_path: Path, into_block: int
) -> None:
    """The marker, frame header and first block reach the file in one write: a file that
    ends inside that block was cut (docs/recording-format.md §9), not left by a crash."""
    data = _sink_bytes(300)
    at = marker_offsets(data)[5]
    head = seektable.read_head(data[at : at + 8])
    assert head is not None
    block_at = at + 8 + head[1] + decoding._zstd_header_size(data[at + 8 + head[1] :][:14])
    path = tmp_path / "cut.ndjson.zst"
    path.write_bytes(data[: block_at + into_block])
    source = RecordingSource(path)
    assert ids(source) == list(range(250))
    report = build_report(source, deep=False)
    assert report.status == 1 and report.notes == []
    [cut] = [f for f in report.findings if f.rule.name == "cut"]
    assert (cut.n, cut.where) == (
        into_block,
        f"cut.ndjson.zst at {block_at:,}, 250 complete frame(s) kept",
    )


def test_a_line_whose_seconds_are_impossible_costs_that_line_only(tmp_path: Path) -> None:
    path = tmp_path / "s.ndjson"
    rec.write_sink(path, 30, Codec.NONE)
    path.write_bytes(path.read_bytes().replace(b"12:00:05.000Z", b"12:00:80.000Z", 1))
    source = RecordingSource(path)
    assert ids(source) == [i for i in range(30) if i != 5]
    assert build_report(source, deep=False).count("corrupt") == 1
