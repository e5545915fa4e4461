"""The rotating compressed sink: chunks, index lines, markers, footer, rotation, file safety."""

from __future__ import annotations

import gzip
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest
import zstandard

from allsmi.adapters import wire
from allsmi.adapters.recording import seektable
from allsmi.adapters.recording.decoding import iter_file_lines as iter_lines
from allsmi.adapters.recording.recovery import last_seq_of_set
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig, codec_for
from allsmi.domain.errors import SinkFailed, UsageError
from allsmi.domain.model import Frame, Header, Memory
from allsmi.domain.parse import format_rfc3339_ms

from .sinkfiles import lines_of, walk_gzip, walk_zstd

T0 = 1_776_513_600_000


def frame_line(seq: int, pad: int = 0) -> bytes:
    mem = Memory(
        host_id="h",
        hostname="h",
        instance="h",
        used_bytes=seq * 4096 + pad,
        total_bytes=2**34,
        utilization=(seq % 100) / 1.5,
    )
    frame = Frame(t_ms=T0 + seq * 1000, seq=seq, memory=(mem,), errors=("x" * pad,) if pad else ())
    return wire.encode_line(frame)


def write(
    path: Path, n: int, kind: Codec, *, first: int = 0, pad: int = 0, **config: Any
) -> RecordingSink:
    sink = RecordingSink(SinkConfig(path=path, codec=kind, **config), Header(interval_ms=1000))
    for seq in range(first, first + n):
        sink.append(frame_line(seq, pad), seq, T0 + seq * 1000)
        sink.flush()
    sink.close()
    return sink


def data_seqs(path: Path) -> list[int]:
    out = []
    for raw in iter_lines(path):
        info = wire.slice_line(raw)
        if info is not None and info.kind == wire.KIND_DATA:
            assert info.seq is not None
            out.append(info.seq)
    return out


@pytest.mark.parametrize(
    ("name", "override", "expected"),
    [
        ("t.ndjson.zst", None, Codec.ZSTD),
        ("r.GZ", None, Codec.GZIP),
        ("t.ndjson", None, Codec.NONE),
        ("t", None, Codec.NONE),
        ("t.ndjson", "zstd", Codec.ZSTD),
        ("t.zst", "none", Codec.NONE),
    ],
)
def test_codec_comes_from_the_extension_unless_overridden(
    name: str, override: str | None, expected: Codec
) -> None:
    assert codec_for(Path(name), override) is expected


def test_unknown_compress_value_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="zstd, gzip or none"):
        codec_for(Path("x"), "lz4")


def test_zstd_recording_of_2500_frames_has_three_chunks_markers_and_footer(tmp_path: Path) -> None:
    path = tmp_path / "trace.ndjson.zst"
    write(path, 2500, Codec.ZSTD)
    units = walk_zstd(path)
    kinds = [u.kind for u in units]
    assert kinds == ["marker", "zstd", "marker", "zstd", "marker", "zstd", "table", "trailer"]
    markers = [orjson.loads(u.payload) for u in units if u.kind == "marker"]
    assert [m["seq"] for m in markers] == [0, 1000, 2000]
    marker_offsets = [u.offset for u in units if u.kind == "marker"]
    assert [m["prev"] for m in markers] == [-1, *marker_offsets[:-1]]
    table = seektable.decode_table(units[-2].payload)
    assert table is not None and table.last_seq == 2499 and table.last_t_ms == T0 + 2_499_000
    chunk_offsets = [u.offset for u in units if u.kind == "zstd"]
    assert [c.offset for c in table.chunks] == chunk_offsets
    assert [c.frames for c in table.chunks] == [1000, 1000, 500]
    assert seektable.decode_trailer(path.read_bytes()[-16:]) == units[-2].offset


def test_each_zstd_chunk_offset_alone_decodes_to_its_index_line_then_its_frames(
    tmp_path: Path,
) -> None:
    path = tmp_path / "trace.ndjson.zst"
    write(path, 2500, Codec.ZSTD)
    table = seektable.decode_table(next(u for u in walk_zstd(path) if u.kind == "table").payload)
    assert table is not None
    with open(path, "rb") as fh:
        for chunk in table.chunks:
            fh.seek(chunk.offset)
            reader = zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=False)
            text = b""
            while text.count(b"\n") < 4:
                text += reader.read(4096)
            lines = [orjson.loads(x) for x in text.split(b"\n")[:4]]
            if chunk.seq == 0:
                assert lines[0]["header"] is True and lines[0]["writer"] == "allsmi"
                lines = lines[1:]
            assert lines[0] == {
                "schema": 1,
                "index": True,
                "t": format_rfc3339_ms(chunk.t_ms),
                "seq": chunk.seq,
                "byte_offset": chunk.offset,
            }
            assert [ln["seq"] for ln in lines[1:3]] == [chunk.seq, chunk.seq + 1]


def test_the_real_zstd_tool_decompresses_a_recording_to_ndjson(tmp_path: Path) -> None:
    path = tmp_path / "trace.ndjson.zst"
    write(path, 1200, Codec.ZSTD)
    subprocess.run(["zstd", "-q", "-t", str(path)], check=True)
    out = subprocess.run(["zstd", "-dc", str(path)], check=True, capture_output=True).stdout
    lines = [orjson.loads(x) for x in out.splitlines()]
    assert lines[0]["header"] is True
    data = [x for x in lines if "t" in x and "index" not in x]
    assert [x["seq"] for x in data] == list(range(1200))
    assert sum(1 for x in lines if x.get("index")) == 2


def test_gzip_recording_is_multi_member_with_an_index_line_per_member(tmp_path: Path) -> None:
    path = tmp_path / "run.gz"
    write(path, 2100, Codec.GZIP)
    members = walk_gzip(path)
    assert len(members) == 3
    for member in members:
        lines = [x for x in lines_of(member.payload) if not x.get("header")]
        assert lines[0]["index"] is True and lines[0]["byte_offset"] == member.offset
        assert lines[1]["seq"] == lines[0]["seq"]
    out = subprocess.run(["gzip", "-dc", str(path)], check=True, capture_output=True).stdout
    assert out == gzip.decompress(path.read_bytes())
    assert data_seqs(path) == list(range(2100))


def test_plain_index_offset_is_the_offset_of_the_index_line_itself(tmp_path: Path) -> None:
    path = tmp_path / "trace.ndjson"
    write(path, 1500, Codec.NONE)
    data = path.read_bytes()
    indexes = [x for x in lines_of(data) if x.get("index")]
    assert len(indexes) == 2
    for index in indexes:
        at = index["byte_offset"]
        assert isinstance(at, int)
        line = data[at : data.index(b"\n", at)]
        assert orjson.loads(line) == index
    assert lines_of(data)[0]["header"] is True


def test_large_frames_close_chunks_at_8_mib_of_uncompressed_lines(tmp_path: Path) -> None:
    path = tmp_path / "big.ndjson.zst"
    write(path, 20, Codec.ZSTD, pad=1_000_000)
    table = seektable.decode_table(next(u for u in walk_zstd(path) if u.kind == "table").payload)
    assert table is not None
    assert [c.frames for c in table.chunks] == [8, 8, 4]
    for unit in walk_zstd(path):
        if unit.kind == "zstd":
            assert len(unit.payload) <= 8 * 1024 * 1024


def test_rotation_keeps_at_most_max_files_named_by_the_table(tmp_path: Path) -> None:
    path = tmp_path / "trace.ndjson.zst"
    sink = write(path, 200, Codec.ZSTD, max_size=1024, max_files=3)
    names = sorted(os.listdir(tmp_path))
    assert len(names) == 3
    assert sink.stats.rotations >= 5
    numbered = sorted(n for n in names if n != "trace.ndjson.zst")
    last = sink.stats.segments - 1
    assert numbered == [f"trace.{last - 1:04d}.ndjson.zst", f"trace.{last:04d}.ndjson.zst"]
    for name in names:
        first = next(iter_lines(tmp_path / name))
        assert orjson.loads(first)["header"] is True
        subprocess.run(["zstd", "-q", "-t", str(tmp_path / name)], check=True)
    seqs = [s for n in [*numbered, "trace.ndjson.zst"] for s in data_seqs(tmp_path / n)]
    assert seqs == list(range(seqs[0], 200))  # the newest frames, none lost between files


@pytest.mark.parametrize(
    ("name", "rotated"),
    [("trace.ndjson", "trace.0001.ndjson"), ("run.gz", "run.0001.gz"), ("trace", "trace.0001")],
)
def test_rotated_names_follow_the_table(tmp_path: Path, name: str, rotated: str) -> None:
    path = tmp_path / name
    write(path, 30, codec_for(path, None), max_size=512, max_files=100)
    assert (tmp_path / rotated).exists()


def test_max_files_one_keeps_only_the_active_file(tmp_path: Path) -> None:
    path = tmp_path / "one.ndjson"
    write(path, 100, Codec.NONE, max_size=600, max_files=1)
    assert os.listdir(tmp_path) == ["one.ndjson"]
    assert data_seqs(path)[-1] == 99


def test_eviction_counts_segments_that_existed_before(tmp_path: Path) -> None:
    path = tmp_path / "t.ndjson"
    for n in (1, 2, 3, 4):
        (tmp_path / f"t.{n:04d}.ndjson").write_bytes(b"")
    write(path, 10, Codec.NONE, max_size=300, max_files=3)
    names = sorted(os.listdir(tmp_path))
    assert len(names) == 3 and "t.0001.ndjson" not in names


def test_restart_rotates_the_old_file_and_continues_seq(tmp_path: Path) -> None:
    path = tmp_path / "trace.ndjson.zst"
    write(path, 50, Codec.ZSTD)
    resume = last_seq_of_set(path) + 1
    assert resume == 50
    sink = RecordingSink(SinkConfig(path=path, codec=Codec.ZSTD), Header())
    sink.prepare_existing()
    for seq in range(resume, resume + 5):
        sink.append(frame_line(seq), seq, T0 + seq * 1000)
    sink.close()
    assert data_seqs(tmp_path / "trace.0001.ndjson.zst") == list(range(50))
    assert data_seqs(path) == list(range(50, 55))


def test_files_are_created_private(tmp_path: Path) -> None:
    path = tmp_path / "p.ndjson.zst"
    write(path, 3, Codec.ZSTD)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_symlink_at_the_output_path_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / "t.ndjson").symlink_to(victim)
    with pytest.raises(SinkFailed, match="symlink"):
        write(tmp_path / "t.ndjson", 3, Codec.NONE)
    assert victim.read_text() == "keep"


def test_a_symlink_among_rotated_segments_is_never_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / "t.0001.ndjson").symlink_to(victim)
    write(tmp_path / "t.ndjson", 50, Codec.NONE, max_size=300, max_files=3)
    assert victim.read_text() == "keep"
    assert not (tmp_path / "t.0001.ndjson").is_symlink()  # evicted as the oldest: the link


def test_a_line_over_16_mib_is_refused_by_the_sink(tmp_path: Path) -> None:
    sink = RecordingSink(SinkConfig(path=tmp_path / "x", codec=Codec.NONE), Header())
    with pytest.raises(SinkFailed, match="16 MiB"):
        sink.append(b"x" * (16 * 1024 * 1024 + 1), 0, T0)


def test_unfinished_zstd_chunk_is_readable_up_to_the_last_flush(tmp_path: Path) -> None:
    path = tmp_path / "live.ndjson.zst"
    sink = RecordingSink(SinkConfig(path=path, codec=Codec.ZSTD), Header())
    for seq in range(10):
        sink.append(frame_line(seq), seq, T0 + seq * 1000)
        sink.flush()
    sink.append(frame_line(10), 10, T0 + 10_000)  # appended, not yet flushed
    assert data_seqs(path) == list(range(10))  # the file as a crash would leave it
    sink.close()
    assert data_seqs(path) == list(range(11))


def test_a_deleted_directory_stops_the_sink_at_the_next_flush(tmp_path: Path) -> None:
    path = tmp_path / "gone" / "t.ndjson.zst"
    path.parent.mkdir()
    sink = RecordingSink(SinkConfig(path=path, codec=Codec.ZSTD, max_size=0), Header())
    sink.append(frame_line(0), 0, T0)
    sink.flush()
    shutil.rmtree(path.parent)
    sink.append(frame_line(1), 1, T0 + 1000)
    with pytest.raises(SinkFailed) as failed:
        sink.flush()
    assert (
        str(failed.value) == f"{path}: the file was deleted while recording (its directory is gone)"
    )
    sink.close()


def test_a_deleted_file_stops_the_sink_at_the_next_flush(tmp_path: Path) -> None:
    path = tmp_path / "t.ndjson"
    sink = RecordingSink(SinkConfig(path=path, codec=Codec.NONE), Header())
    sink.append(frame_line(0), 0, T0)
    sink.flush()
    path.unlink()
    with pytest.raises(SinkFailed, match=r"^\S+t\.ndjson: the file was deleted while recording$"):
        sink.flush()
    sink.close()


def test_a_file_moved_away_stops_the_sink_at_the_next_flush(tmp_path: Path) -> None:
    path = tmp_path / "t.ndjson.gz"
    sink = RecordingSink(SinkConfig(path=path, codec=Codec.GZIP), Header())
    sink.append(frame_line(0), 0, T0)
    sink.flush()
    path.rename(tmp_path / "elsewhere.gz")
    path.write_bytes(b"")  # something else now answers to the name
    with pytest.raises(SinkFailed, match="moved or replaced while recording"):
        sink.flush()
    sink.close()
    assert data_seqs(tmp_path / "elsewhere.gz") == [0]
