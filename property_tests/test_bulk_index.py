"""The bulk index (background=True) finds what the exact scan finds: for random recordings
of every codec without a seek table — varied line lengths, chunk sizes, concatenated runs
(clocks that go back), CRLF, empty and corrupt lines, a torn last line, zero bytes after the
end, rotated sets — every frame's line, time and seek key, the frame count, the duration, the
header, the runs and the damage are the exact scan's once every chunk was read, in any order
(docs/recording-format.md §7.7; docs/architecture.md §3.1).
"""

from __future__ import annotations

import gzip
import random
import tempfile
from contextlib import ExitStack
from pathlib import Path
from unittest import mock

import attrs
import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st
from tests.adapters import recordings as rec

from allsmi.adapters import wire
from allsmi.adapters.recording import bulk, index
from allsmi.adapters.recording.sink import Codec
from allsmi.adapters.recording.source import RecordingSource
from allsmi.domain.errors import RecordingUnreadable
from allsmi.domain.model import Header

HEADER = wire.encode_line(Header(interval_ms=1000, hosts=("h",))).rstrip(b"\n")
JUNK = [b"", b"garbage", b"{not json", b'{"schema":1,"t":"nope"}', b"\xff\xfe", b'{"schema":1}']


@st.composite
def run_lines(draw: st.DrawFn, first_id: int) -> list[bytes]:
    """One recording's lines: maybe a header, frames (a few long), junk in between."""
    n = draw(st.integers(min_value=0, max_value=120))
    t0 = rec.T0 + draw(st.sampled_from([-3_600_000, 0, 10_000_000]))
    step = draw(st.sampled_from([0, 1, 1000]))
    long_at = draw(st.sets(st.integers(0, max(0, n - 1)), max_size=2))
    lines = [HEADER] if draw(st.booleans()) else []
    for i in range(n):
        frame = rec.make_frame(first_id + i, t0 + i * step, i)
        if i in long_at:
            pad = draw(st.sampled_from([1, 5_000, 100_000]))
            frame = attrs.evolve(frame, errors=("x" * pad,))
        lines.append(wire.encode_line(frame).rstrip(b"\n"))
    for _ in range(draw(st.integers(0, 3))):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(JUNK)))
    return lines


@st.composite
def recordings(draw: st.DrawFn) -> tuple[str, bytes]:
    codec = draw(st.sampled_from(["gzip", "none", "zstd"]))
    runs = draw(st.integers(1, 3))
    lines = [x for r in range(runs) for x in draw(run_lines(r * 1000))]
    eol = b"\r\n" if draw(st.booleans()) else b"\n"
    raw = b"".join(x + eol for x in lines)
    if draw(st.booleans()):
        raw += b'{"schema":1,"t":"2026-04-18T12:00:00.0'  # a torn last line
    if codec == "gzip":
        raw = gzip.compress(raw)
    elif codec == "zstd":
        raw = zstandard.ZstdCompressor().compress(raw)
    if codec != "none" and draw(st.booleans()):
        raw += b"\0" * draw(st.integers(1, 5000))  # a power cut's tail
    return codec, raw


def damage(source: RecordingSource) -> list[list[str]]:
    return [sorted(map(repr, s.damage)) for s in source.segments]


def assert_same(path: Path, order: random.Random) -> None:
    """Open ``path`` exactly and in the background; read the background one in a random
    order, then in order, and compare everything."""
    try:
        exact = RecordingSource(path)
    except RecordingUnreadable:
        with pytest.raises(RecordingUnreadable):
            RecordingSource(path, background=True)
        return
    with RecordingSource(path, background=True) as background:
        while background.indexing is not None:
            background.poll_index()
        indexes = list(range(background.frame_count))
        order.shuffle(indexes)
        for i in indexes:
            if i < background.frame_count:  # reading corrects counts: it may shrink
                background.raw(i)
        i = 0
        while i < background.frame_count:
            background.raw(i)
            i += 1
        assert background.frame_count == exact.frame_count
        for i in range(exact.frame_count):
            assert background.raw(i) == exact.raw(i), i
            assert background.time_at(i) == exact.time_at(i), i
            assert background.key_at(i) == exact.key_at(i), i
        assert background.duration_ms == exact.duration_ms
        assert background.header == exact.header
        assert [(s.runs, s.run_starts) for s in background.segments] == [
            (s.runs, s.run_starts) for s in exact.segments
        ]
        assert background.skipped_lines == exact.skipped_lines
        assert damage(background) == damage(exact)


@given(
    recording=recordings(),
    chunk_frames=st.sampled_from([1, 7, 50, 1000]),
    min_span=st.sampled_from([1, 300, 4096]),
    seed=st.integers(0, 2**32),
)
def test_the_bulk_index_finds_what_the_exact_scan_finds(
    recording: tuple[str, bytes], chunk_frames: int, min_span: int, seed: int
) -> None:
    codec, raw = recording
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as patches:
        patches.enter_context(mock.patch.object(bulk, "CHUNK_FRAMES", chunk_frames))
        patches.enter_context(mock.patch.object(bulk, "MIN_SPAN", min_span))
        patches.enter_context(mock.patch.object(index, "CHUNK_FRAMES", chunk_frames))
        path = Path(tmp) / f"r.ndjson{'.gz' if codec == 'gzip' else ''}"
        path.write_bytes(raw)
        assert_same(path, random.Random(seed))


@given(
    n=st.integers(1, 400),
    max_size=st.sampled_from([3_000, 10_000, 40_000]),
    chunk_frames=st.sampled_from([10, 100]),
    seed=st.integers(0, 2**32),
)
def test_a_rotated_gzip_set_is_indexed_segment_by_segment_as_exactly(
    n: int, max_size: int, chunk_frames: int, seed: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp, mock.patch.object(bulk, "MIN_SPAN", 300):
        path = Path(tmp) / "set.ndjson.gz"
        rec.write_sink(path, n, Codec.GZIP, max_size=max_size, max_files=50)
        assert_same(path, random.Random(seed))


@given(
    kinds=st.lists(st.sampled_from(["zstd", "gzip", "none", "allsmi"]), min_size=2, max_size=4),
    n=st.integers(1, 150),
    seed=st.integers(0, 2**32),
)
def test_a_set_of_mixed_codecs_is_indexed_as_exactly(kinds: list[str], n: int, seed: int) -> None:
    """Segments of each codec, named as rotation names them (docs/recording-format.md §8.1):
    a zstd segment with a footer after a bulk-indexed one, and the other way round."""
    with tempfile.TemporaryDirectory() as tmp, mock.patch.object(bulk, "MIN_SPAN", 300):
        active = Path(tmp) / "mix.ndjson"
        for number, kind in enumerate(kinds, start=1):
            target = active if number == len(kinds) else Path(tmp) / f"mix.{number:04d}.ndjson"
            made = Path(tmp) / "made"
            if kind == "allsmi":
                rec.all_smi_file(made, n)
            else:
                rec.write_sink(made, n, Codec(kind), chunk_frames=30)
            made.rename(target)
        assert_same(active, random.Random(seed))
