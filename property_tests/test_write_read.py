"""Write → read through every codec, chunk size and rotation: the same frames, in order."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from allsmi.adapters import wire
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.adapters.recording.source import RecordingSource
from allsmi.domain.model import Frame, Header, Memory

T0 = 1_776_513_600_000


@st.composite
def recordings(draw: st.DrawFn) -> list[Frame]:
    gaps = draw(
        st.lists(st.sampled_from([0, 0, 1, 250, 1000, 3000, 3_600_000]), min_size=1, max_size=250)
    )
    frames, t = [], T0
    for seq, gap in enumerate(gaps):
        t += gap
        mem = Memory(
            host_id="h",
            hostname="h",
            instance="h",
            used_bytes=seq,
            utilization=draw(st.floats(0, 100)),
        )
        frames.append(Frame(t_ms=t, seq=seq, memory=(mem,), errors=("e",) * (seq % 3 == 0)))
    return frames


@given(
    frames=recordings(),
    kind=st.sampled_from(list(Codec)),
    chunk_frames=st.integers(1, 60),
    max_size=st.sampled_from([0, 700, 3000]),
    close=st.booleans(),
)
def test_what_the_sink_writes_the_source_reads_back_in_order(
    frames: list[Frame], kind: Codec, chunk_frames: int, max_size: int, close: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.ndjson"
        config = SinkConfig(
            path=path,
            codec=kind,
            max_size=max_size,
            max_files=10_000,
            chunk_max_frames=chunk_frames,
        )
        sink = RecordingSink(config, Header())
        for frame in frames:
            assert frame.seq is not None
            sink.append(wire.encode_line(frame), frame.seq, frame.t_ms)
            sink.flush()
        if close:
            sink.close()
        source = RecordingSource(path)
        assert [source.frame(i) for i in range(source.frame_count)] == frames
        if not close:
            sink.close()
