"""The seekable file source: seek and neighbour correctness on every kind of recording."""

from __future__ import annotations

import bisect
import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from allsmi.adapters.recording.sink import Codec
from allsmi.adapters.recording.source import RecordingSource, discover
from allsmi.domain.errors import RecordingUnreadable, UnsupportedSchema

from . import recordings as rec

Build = Callable[[Path], tuple[Path, rec.Truth]]


def _at(name: str, fn: Callable[[Path], rec.Truth]) -> Build:
    def build(tmp: Path) -> tuple[Path, rec.Truth]:
        path = tmp / name
        return path, fn(path)

    return build


VARIANTS: dict[str, Build] = {
    "zstd-footer": _at("a.ndjson.zst", lambda p: rec.write_sink(p, 2500, Codec.ZSTD)),
    "zstd-crash-markers": _at("a.ndjson.zst", lambda p: rec.crash_cut(p, 2500, Codec.ZSTD)),
    "zstd-crash-torn": _at("a.ndjson.zst", lambda p: rec.crash_cut(p, 700, Codec.ZSTD, 0.5)),
    "zstd-no-markers": _at("a.ndjson.zst", lambda p: rec.recompressed_without_markers(p, 1500)),
    "gzip": _at("a.gz", lambda p: rec.write_sink(p, 2500, Codec.GZIP)),
    "gzip-crash-torn": _at("a.gz", lambda p: rec.crash_cut(p, 700, Codec.GZIP, 0.5)),
    "plain": _at("a.ndjson", lambda p: rec.write_sink(p, 2500, Codec.NONE)),
    "plain-crash-torn": _at("a.ndjson", lambda p: rec.crash_cut(p, 700, Codec.NONE, 0.1)),
    "duplicate-times": _at("a.ndjson.zst", lambda p: rec.write_sink(p, 900, Codec.ZSTD, dup=3)),
    "headerless": _at("a.ndjson", lambda p: rec.headerless(p, 1200)),
    "jq-filtered": _at("a.ndjson", lambda p: rec.jq_filtered(p, 1200)),
    "concatenated": _at("a.ndjson.zst", lambda p: rec.concatenated(p, 600)),
    "concatenated-backwards": _at(
        "a.ndjson.zst", lambda p: rec.concatenated(p, 300, back_in_time=True)
    ),
    "all-smi-zstd-as-ndjson": _at("a.ndjson", lambda p: rec.all_smi_file(p, 2100)),
    "all-smi-plain": _at("a.ndjson", lambda p: rec.all_smi_file(p, 1200, compress=False)),
    "rotated-set": _at(
        "r.ndjson.zst", lambda p: rec.write_sink(p, 1500, Codec.ZSTD, max_size=4000)
    ),
}


def expected_index(truth: rec.Truth, target: int) -> int:
    keys, key = [], None
    for t, _ in truth:
        key = t if key is None else max(key, t)
        keys.append(key)
    return max(0, bisect.bisect_right(keys, target) - 1)


def check(source: RecordingSource, truth: rec.Truth, seed: int = 1) -> None:
    assert source.frame_count == len(truth)
    rng = random.Random(seed)
    indexes = [0, len(truth) - 1, *rng.sample(range(len(truth)), min(60, len(truth)))]
    for i in indexes:
        frame = source.frame(i)
        assert frame.memory is not None
        assert (frame.t_ms, frame.memory[0].used_bytes) == truth[i]
        assert source.time_at(i) == truth[i][0]
    lo, hi = truth[0][0] - 5000, max(t for t, _ in truth) + 5000
    for target in [lo, hi, *(rng.randrange(lo, hi) for _ in range(80)), *(t for t, _ in truth[:5])]:
        assert source.index_at_or_before(target) == expected_index(truth, target), target


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_seek_and_frames_match_what_was_written(tmp_path: Path, variant: str) -> None:
    path, truth = VARIANTS[variant](tmp_path)
    check(RecordingSource(path), truth)


@pytest.mark.parametrize("variant", ["zstd-footer", "gzip", "plain", "rotated-set"])
def test_stepping_through_every_frame_in_order_matches(tmp_path: Path, variant: str) -> None:
    path, truth = VARIANTS[variant](tmp_path)
    source = RecordingSource(path, cache_bytes=64 * 1024)  # tiny cache: evictions happen
    ids = []
    for i in range(source.frame_count):
        mem = source.frame(i).memory
        assert mem is not None
        ids.append(mem[0].used_bytes)
    assert ids == [ident for _, ident in truth]
    back = [source.frame(i).memory for i in reversed(range(source.frame_count))]
    assert [m[0].used_bytes for m in back if m] == [ident for _, ident in reversed(truth)]


def test_footer_opens_without_scanning(tmp_path: Path) -> None:
    path, truth = VARIANTS["zstd-footer"](tmp_path)
    source = RecordingSource(path)
    assert [s.opened_by for s in source.segments] == ["footer"]
    assert source.duration_ms == truth[-1][0] - truth[0][0]
    loaded = [c for c in source.chunks if c.keys is not None]
    assert len(loaded) <= 2  # the first and nothing else needed to know the duration


def test_crash_cut_zstd_opens_by_the_marker_chain(tmp_path: Path) -> None:
    path, _ = VARIANTS["zstd-crash-markers"](tmp_path)
    source = RecordingSource(path)
    assert [s.opened_by for s in source.segments] == ["markers"]
    assert len(source.chunks) == 25


def test_rotated_set_chains_segments_oldest_first(tmp_path: Path) -> None:
    path, truth = VARIANTS["rotated-set"](tmp_path)
    files = discover(path)
    assert len(files) > 3 and files[-1] == path
    source = RecordingSource(path)
    assert len(source.segments) == len(files)
    check(source, truth)


def test_rotated_set_with_the_active_file_missing_reads_the_numbered_ones(tmp_path: Path) -> None:
    path, truth = VARIANTS["rotated-set"](tmp_path)
    active = RecordingSource(path).segments[-1]
    kept = len(truth) - sum(
        c.count or 0
        for c in RecordingSource(path).chunks[-999:]
        if c.segment == len(RecordingSource(path).segments) - 1
    )
    os.unlink(active.path)
    source = RecordingSource(path)
    assert source.frame_count == kept
    check(source, truth[:kept])


def test_a_numbered_segment_given_directly_is_read_alone(tmp_path: Path) -> None:
    VARIANTS["rotated-set"](tmp_path)
    one = tmp_path / "r.0002.ndjson.zst"
    source = RecordingSource(one)
    assert [s.path for s in source.segments] == [one]
    assert 0 < source.frame_count < 1500


def test_torn_tail_is_dropped_with_a_warning(tmp_path: Path) -> None:
    path, truth = VARIANTS["plain-crash-torn"](tmp_path)
    whole = len(path.read_bytes().splitlines())  # the cut left a partial last line
    assert not path.read_bytes().endswith(b"\n") and whole > len(truth)
    source = RecordingSource(path)
    assert source.frame_count == len(truth)
    assert any("torn" in w for w in source.warnings)


def test_corrupt_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "c.ndjson"
    truth = rec.write_sink(path, 300, Codec.NONE)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[50] = b'{"schema":1,"t":"garbage\n'
    lines[120] = b"\x00\xff not json\n"
    path.write_bytes(b"".join(lines))
    source = RecordingSource(path)
    assert source.skipped_lines == 2
    lost = {orig for orig in (48, 118)}  # data lines 50 and 120 follow header+index lines
    check(source, [x for i, x in enumerate(truth) if i not in lost])


def test_schema_two_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.ndjson"
    path.write_bytes(b'{"schema":2,"header":true}\n{"schema":2,"t":"2026-04-18T12:00:00.000Z"}\n')
    with pytest.raises(UnsupportedSchema, match="unsupported schema version 2"):
        RecordingSource(path)


def test_a_later_schema_two_line_counts_as_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "s.ndjson"
    truth = rec.write_sink(path, 20, Codec.NONE)
    with open(path, "ab") as fh:
        fh.write(b'{"schema":2,"t":"2026-04-18T13:00:00.000Z"}\n')
    source = RecordingSource(path)
    assert source.frame_count == len(truth) and source.skipped_lines == 1


@pytest.mark.parametrize("content", [b"", b"\n\n", b"not a recording\n"])
def test_a_recording_without_frames_is_unreadable(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "e.ndjson"
    path.write_bytes(content)
    with pytest.raises(RecordingUnreadable, match="no frames in"):
        RecordingSource(path)


def test_a_missing_recording_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(RecordingUnreadable, match="no such recording"):
        RecordingSource(tmp_path / "nope.ndjson.zst")


def test_a_footer_pointing_at_the_wrong_bytes_falls_back_to_markers(tmp_path: Path) -> None:
    path = tmp_path / "f.ndjson.zst"
    truth = rec.write_sink(path, 1000, Codec.ZSTD)
    data = bytearray(path.read_bytes())
    data[-8:] = (12345).to_bytes(8, "little")  # the trailer now points into a chunk
    path.write_bytes(bytes(data))
    source = RecordingSource(path)
    assert source.segments[0].opened_by == "markers"
    check(source, truth)


def test_a_forged_chunk_entry_is_detected_when_reached_and_the_segment_rescanned(
    tmp_path: Path,
) -> None:
    from allsmi.adapters.recording import seektable

    path = tmp_path / "g.ndjson.zst"
    truth = rec.write_sink(path, 1000, Codec.ZSTD)
    data = path.read_bytes()
    table_at = seektable.decode_trailer(data[-16:])
    assert table_at is not None
    table = seektable.decode_table(data[table_at + 8 : -16])
    assert table is not None
    chunks = list(table.chunks)
    b, c = chunks[4], chunks[5]
    # lies about seq, with counts that still add up (counts that do not are refused at once)
    chunks[4] = seektable.ChunkEntry(b.offset, b.seq, b.t_ms, b.frames + 7)
    chunks[5] = seektable.ChunkEntry(c.offset, c.seq + 7, c.t_ms, c.frames - 7)
    forged = seektable.Table(tuple(chunks), table.last_seq, table.last_t_ms)
    path.write_bytes(data[:table_at] + seektable.encode_table(forged) + data[-16:])
    source = RecordingSource(path)
    assert source.segments[0].opened_by == "footer"
    check(source, truth)
    assert any("seek table" in w for w in source.warnings)
    assert source.segments[0].opened_by == "scan"


def test_a_single_member_gzip_seeks_from_zlib_checkpoints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gzip

    from allsmi.adapters.recording import decoding

    monkeypatch.setattr(decoding, "CHECKPOINT_EVERY", 2048)  # 1-16 MiB in real files
    monkeypatch.setattr(decoding, "CHECKPOINT_MIN", 2048)
    monkeypatch.setattr(decoding, "READ_SIZE", 1024)
    plain = tmp_path / "p.ndjson"
    truth = rec.all_smi_file(plain, 3000, compress=False)
    path = tmp_path / "one-member.gz"
    path.write_bytes(gzip.compress(plain.read_bytes(), mtime=0))
    source = RecordingSource(path)
    assert any(c.start.zlib_state is not None for c in source.chunks)
    check(source, truth)


def test_a_name_with_a_number_in_it_is_still_read_as_a_set(tmp_path: Path) -> None:
    path = tmp_path / "run.2026.ndjson"
    truth = rec.write_sink(path, 60, Codec.NONE, max_size=800)
    assert (tmp_path / "run.0001.2026.ndjson").exists()
    check(RecordingSource(path), truth)


def test_a_segment_evicted_under_the_reader_is_one_clear_error(tmp_path: Path) -> None:
    path, _ = VARIANTS["rotated-set"](tmp_path)
    source = RecordingSource(path, cache_bytes=1)
    source.segments[0].path.unlink()
    with pytest.raises(RecordingUnreadable, match=r"is gone .*--follow"):
        for i in range(source.frame_count):
            source.frame(i)


def test_a_line_just_over_16_mib_is_skipped_alike_by_scan_and_seek(tmp_path: Path) -> None:
    path = tmp_path / "long.ndjson"
    truth = rec.write_sink(path, 10, Codec.NONE)
    lines = path.read_bytes().splitlines(keepends=True)
    long = b'{"schema":1,"t":"2026-04-18T12:00:05.500Z","seq":77,"errors":["'
    long += b"x" * ((16 << 20) + 100 - len(long) - 4) + b'"]}\n'
    path.write_bytes(b"".join(lines[:8]) + long + b"".join(lines[8:]))
    source = RecordingSource(path)
    assert source.skipped_lines == 1
    check(source, truth)


def test_gzip_checkpoints_are_spaced_to_about_a_thousand_a_segment_within_bounds() -> None:
    from allsmi.adapters.recording.decoding import checkpoint_spacing

    mib = 1024 * 1024
    assert checkpoint_spacing(72 * mib) == mib  # a 72 MB member: decoded from ≤ 1 MiB back
    assert checkpoint_spacing(4 * 1024 * mib) == 4 * 1024 * mib // 1000  # ~1000 of them
    assert checkpoint_spacing(100 * 1024 * mib) == 16 * mib  # never sparser than 16 MiB
    assert checkpoint_spacing(10) == mib
