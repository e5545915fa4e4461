"""Stored chunk summaries round-trip for every codec: the summaries a zstd file's sink stored,
merged, equal the summary of the frames written; gzip and plain files store none, and the
summary of the frames decoded from them equals it too; the events stored with them are
those the frames give (src/allsmi/adapters/recording/summaries.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import attrs
from hypothesis import given
from hypothesis import strategies as st

from allsmi.adapters import wire
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.adapters.recording.source import RecordingSource
from allsmi.adapters.recording.summaries import (
    new_summary,
    stored_events,
    stored_summaries,
    summary_of,
)
from allsmi.app.replay_map import stored_parts
from allsmi.domain.events import detect
from allsmi.domain.model import Frame, Header
from property_tests.strategies import frames as any_frames
from property_tests.strategies import headers

T0 = 1_776_513_600_000


@st.composite
def recordings(draw: st.DrawFn) -> list[Frame]:
    """Frames in time order (steps of 0 to 25 s: several per bucket, buckets skipped),
    numbered from 0."""
    raw = draw(st.lists(any_frames, min_size=1, max_size=30))
    steps = draw(st.lists(st.integers(0, 25_000), min_size=len(raw), max_size=len(raw)))
    out, t = [], T0
    for n, (frame, step) in enumerate(zip(raw, steps, strict=True)):
        t += step
        out.append(attrs.evolve(frame, t_ms=t, seq=n))
    return out


def record(path: Path, header: Header, frames: list[Frame], codec: Codec, chunk: int) -> None:
    sink = RecordingSink(
        SinkConfig(path=path, codec=codec, max_size=0, chunk_max_frames=chunk), header
    )
    for frame in frames:
        assert frame.seq is not None
        sink.append(wire.encode_line(frame), frame.seq, frame.t_ms, frame=frame)
        sink.flush()
    sink.close()


@given(recordings(), headers, st.integers(1, 7))
def test_stored_summaries_merged_are_the_summary_of_the_frames(
    frames: list[Frame], header: Header, chunk: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.ndjson.zst"
        record(path, header, frames, Codec.ZSTD, chunk)
        source = RecordingSource(path)
        segment = source.segments[0]
        assert segment.opened_by == "footer"
        stored = stored_summaries(path, segment, source.chunks)
        assert all(s is not None for s in stored)
        whole = new_summary(header)
        for part in stored:
            assert part is not None
            whole.merge(part)
        assert whole == summary_of(frames, header)


@given(recordings(), headers, st.integers(1, 7), st.sampled_from([Codec.GZIP, Codec.NONE]))
def test_a_file_without_stored_summaries_yields_the_same_summary_from_its_frames(
    frames: list[Frame], header: Header, chunk: int, codec: Codec
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.ndjson"
        record(path, header, frames, codec, chunk)
        source = RecordingSource(path)
        assert stored_summaries(path, source.segments[0], source.chunks) == [None] * len(
            source.chunks
        )
        decoded = [source.frame(i) for i in range(source.frame_count)]
        assert summary_of(decoded, header) == summary_of(frames, header)


@given(recordings(), headers, st.integers(1, 7))
def test_the_events_a_zstd_file_stored_are_those_detected_from_its_frames(
    frames: list[Frame], header: Header, chunk: int
) -> None:
    """The sink's detection (each chunk's events stored with its summary, the end's at
    close) gives exactly what detection over the frames written gives; a reader takes them
    without a frame."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.ndjson.zst"
        record(path, header, frames, Codec.ZSTD, chunk)
        source = RecordingSource(path)
        parts = stored_parts(source)
        assert parts is not None
        assert stored_events(parts) == detect(frames, header.hosts, header.interval_ms)
