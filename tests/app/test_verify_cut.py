"""A recording cut where a flush of the writer ended vs one cut inside a block.

Rules (docs/recording-format.md §9): the real sink flushes every frame (zstd: a complete
block; gzip: a sync flush), so ``kill -9`` leaves a file that ends on a flush: every flushed
frame is intact and ``verify`` notes it (exit 0). A file that ends anywhere inside a block
lost the stored bytes after the last complete block: ``verify`` counts them, says where
they begin and how many complete frames it kept, and calls it damage (exit 1); replay keeps
every complete frame and says the same on its message line. A plain file cut mid-line is a
torn last line. Each premise is checked with the real ``zstd``/``gzip`` tool: both cut files
fail ``-t``, and the tool decodes exactly the frames the reader keeps.
"""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from allsmi.adapters import wire
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.adapters.recording.source import RecordingSource
from allsmi.app.verify import Report, build_report, render
from allsmi.domain.model import Header

from ..adapters import recordings as rec
from ..adapters import sinkfiles

COMPRESSED = [Codec.ZSTD, Codec.GZIP]
TOOL = {Codec.ZSTD: "zstd", Codec.GZIP: "gzip"}
PREMATURE = {Codec.ZSTD: "premature end", Codec.GZIP: "unexpected end of file"}
N = 60
# Where the cut falls in the bytes of the flush after the last complete one.
INTO: dict[str, Callable[[int], int]] = {
    "its first byte": lambda size: 1,
    "its middle": lambda size: size // 2,
    "all but its last byte": lambda size: size - 1,
}


def recorded(path: Path, kind: Codec) -> tuple[bytes, list[int]]:
    """``N`` frames through the real sink, each flushed, in one chunk, never closed (what
    ``kill -9`` leaves): the stored bytes, and the file's size after each flush."""
    config = SinkConfig(path=path, codec=kind, chunk_max_frames=1000)
    sink = RecordingSink(config, Header(interval_ms=1000, hosts=("h",)))
    sizes = []
    for i, t in enumerate(rec.times(N)):
        sink.append(wire.encode_line(rec.make_frame(i, t, i)), i, t)
        sink.flush()
        sizes.append(path.stat().st_size)
    data = path.read_bytes()
    sink.close()  # after the bytes were taken: they stay unclosed
    return data, sizes


def cut_file(tmp_path: Path, kind: Codec, size: int | None = None) -> tuple[Path, list[int]]:
    """The unclosed recording, truncated to ``size`` bytes (``truncate``, as a user would)."""
    data, sizes = recorded(tmp_path / f"whole.{kind.value}", kind)
    path = tmp_path / f"cut.{kind.value}"
    path.write_bytes(data)
    if size is not None:
        os.truncate(path, size)
    return path, sizes


def tool_frames(path: Path, kind: Codec) -> int:
    """Complete data frames the real tool decodes from ``path``, after checking that its
    ``-t`` fails the file as cut short."""
    if kind is not Codec.NONE:
        test = subprocess.run([TOOL[kind], "-t", str(path)], capture_output=True, text=True)
        assert test.returncode != 0 and PREMATURE[kind] in test.stderr, test.stderr
    tool = [TOOL[kind], "-dc"] if kind is not Codec.NONE else ["cat"]
    out = subprocess.run([*tool, str(path)], capture_output=True, check=False).stdout
    complete = out[: out.rfind(b"\n") + 1]
    objs = [orjson.loads(line) for line in complete.splitlines()]
    return sum(1 for o in objs if "seq" in o and not o.get("index"))


def ids(source: RecordingSource) -> list[int]:
    return [(source.frame(i).memory or ())[0].used_bytes or 0 for i in range(source.frame_count)]


def rendered(report: Report) -> dict[str, str]:
    out = io.StringIO()
    render(report, out)
    rows = out.getvalue().splitlines()
    return {row[:12].rstrip(": "): row[12:] for row in rows[:-1]} | {"verdict": rows[-1]}


@pytest.mark.parametrize("kind", COMPRESSED)
@pytest.mark.parametrize("last", [0, 29, N - 1])
def test_a_recording_cut_where_a_flush_ended_is_not_closed_cleanly_and_every_frame_intact(
    tmp_path: Path, kind: Codec, last: int
) -> None:
    path, sizes = cut_file(tmp_path, kind)
    os.truncate(path, sizes[last])
    assert tool_frames(path, kind) == last + 1
    source = RecordingSource(path)
    assert ids(source) == list(range(last + 1))
    assert source.warnings == []
    report = build_report(source, deep=False)
    assert report.status == 0 and report.damage == []
    assert [note.rule.name for note in report.notes] == ["unclosed"]
    rows = rendered(report)
    assert rows["torn tail"] == "no" and rows["verdict"] == "OK"


@pytest.mark.parametrize("kind", COMPRESSED)
@pytest.mark.parametrize("last", [0, 29, N - 2])
@pytest.mark.parametrize("into", list(INTO))
def test_a_recording_cut_inside_a_block_lost_its_bytes_and_kept_every_complete_frame(
    tmp_path: Path, kind: Codec, last: int, into: str
) -> None:
    path, sizes = cut_file(tmp_path, kind)
    lost = INTO[into](sizes[last + 1] - sizes[last])
    os.truncate(path, sizes[last] + lost)
    kept = tool_frames(path, kind)  # gzip: a frame whose deflate block is whole decodes
    source = RecordingSource(path)
    assert ids(source) == list(range(kept))
    report = build_report(source, deep=False)
    assert report.status == 1 and report.frames == kept >= last + 1
    [cut] = [f for f in report.findings if f.rule.name == "cut"]
    assert cut.n == lost
    assert cut.where == f"{path.name} at {sizes[last]:,}, {kept} complete frame(s) kept"
    assert report.damage == [
        f"cut inside a compressed block: the {lost} stored byte(s) after the last decodable "
        f"point lost ({cut.where})"
    ]
    assert report.notes == []  # not "closed uncleanly, every frame intact": bytes were lost
    rows = rendered(report)
    assert rows["torn tail"] == f"yes: cut inside a compressed block, {lost} stored byte(s) lost"
    assert rows["verdict"] == "DAMAGED: " + report.damage[0]


@pytest.mark.parametrize("kind", COMPRESSED)
def test_replay_of_a_recording_cut_inside_a_block_shows_every_complete_frame_and_says_so(
    tmp_path: Path, kind: Codec
) -> None:
    path, sizes = cut_file(tmp_path, kind)
    lost = (sizes[31] - sizes[30]) // 2
    os.truncate(path, sizes[30] + lost)
    source = RecordingSource(path)
    assert ids(source) == list(range(31))
    assert source.frame(source.frame_count - 1).t_ms == rec.times(N)[30]
    assert source.warnings == [
        f"{path.name}: cut inside a compressed block at offset {sizes[30]:,}: the {lost} "
        "stored byte(s) after the last decodable point lost"
    ]


@pytest.mark.parametrize("kind", [*COMPRESSED, Codec.NONE])
def test_every_codec_tells_a_cut_at_a_flush_from_a_cut_inside_the_next(
    tmp_path: Path, kind: Codec
) -> None:
    path, sizes = cut_file(tmp_path, kind)
    inside = (sizes[21] - sizes[20]) // 2
    whole = path.read_bytes()
    results = {}
    for name, size in (("flush", sizes[20]), ("inside", sizes[20] + inside)):
        path.write_bytes(whole[:size])
        report = build_report(RecordingSource(path), deep=False)
        results[name] = (report.status, report.frames, rendered(report)["torn tail"][:3])
    assert results == {"flush": (0, 21, "no"), "inside": (1, 21, "yes")}


def test_a_plain_recording_cut_mid_line_is_a_torn_last_line(tmp_path: Path) -> None:
    path, sizes = cut_file(tmp_path, Codec.NONE)
    os.truncate(path, sizes[20] + 7)
    report = build_report(RecordingSource(path), deep=False)
    assert report.damage == ["torn last line"] and report.frames == 21 == tool_frames(
        path, Codec.NONE
    )


@pytest.mark.parametrize("kind", COMPRESSED)
@pytest.mark.parametrize("zeros", [1, 2, 3, 4, 16])
def test_zero_bytes_after_the_last_flush_are_a_power_cut_not_a_cut_inside_a_block(
    tmp_path: Path, kind: Codec, zeros: int
) -> None:
    path, sizes = cut_file(tmp_path, kind)
    os.truncate(path, sizes[40])
    with open(path, "ab") as fh:
        fh.write(b"\0" * zeros)
    report = build_report(RecordingSource(path), deep=False)
    assert report.status == 0 and report.frames == 41
    assert report.count("cut") == 0


def test_a_zstd_frame_cut_inside_its_checksum_lost_those_bytes_and_no_frame(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.ndjson.zst"
    rec.write_sink(path, 50, Codec.ZSTD)  # closed: one frame, its checksum, the footer
    frame_end = next(u.offset for u in sinkfiles.walk_zstd(path) if u.kind == "table")
    os.truncate(path, frame_end - 2)
    assert tool_frames(path, Codec.ZSTD) == 50
    report = build_report(RecordingSource(path), deep=False)
    assert report.frames == 50 and report.status == 1
    [cut] = [f for f in report.findings if f.rule.name == "cut"]
    assert (cut.n, cut.where) == (
        2,
        f"{path.name} at {frame_end - 4:,}, 50 complete frame(s) kept",
    )


def test_a_foreign_zstd_file_cut_inside_a_block_is_one_cut_not_also_a_torn_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "f.ndjson.zst"
    rec.recompressed_without_markers(path, 2000)  # the zstd tool: 128 KiB blocks, not lines
    os.truncate(path, path.stat().st_size // 2)
    kept = tool_frames(path, Codec.ZSTD)
    source = RecordingSource(path)
    assert ids(source) == list(range(kept))
    report = build_report(source, deep=False)
    assert report.frames == kept and report.status == 1
    assert [f.rule.name for f in report.findings] == ["cut"]
    assert [w for w in source.warnings if "torn" in w] == []


def test_a_foreign_gzip_file_cut_mid_member_counts_the_bytes_after_its_last_full_line(
    tmp_path: Path,
) -> None:
    """A member never sync-flushed (the gzip tool): the last decodable point is the byte that
    completes the last complete line — the tool, too, needs every byte up to it, and none
    after it, to decode every frame kept."""
    plain = tmp_path / "f.ndjson"
    rec.write_sink(plain, 3000, Codec.NONE)
    path = tmp_path / "f.gz"
    path.write_bytes(subprocess.run(["gzip", "-c", str(plain)], capture_output=True).stdout)
    os.truncate(path, path.stat().st_size * 2 // 3)
    kept = tool_frames(path, Codec.GZIP)
    report = build_report(RecordingSource(path), deep=False)
    assert report.frames == kept and report.status == 1 and report.notes == []
    [cut] = report.findings
    point = path.stat().st_size - cut.n
    assert cut.where == f"{path.name} at {point:,}, {kept:,} complete frame(s) kept"
    whole = path.read_bytes()
    path.write_bytes(whole[:point])
    assert tool_frames(path, Codec.GZIP) == kept
    path.write_bytes(whole[: point - 1])
    assert tool_frames(path, Codec.GZIP) == kept - 1
