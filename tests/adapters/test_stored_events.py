"""Events stored with the summaries (docs/recording-format.md §7.10): the recorder's sink
detects events as it writes and stores each chunk's with its summary; a reader takes them
without reading a frame when every chunk of a closed recording carries them, and detects
them from the frames otherwise. Real files written by the real sink."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import attrs
import pytest

from allsmi.adapters import wire
from allsmi.adapters.recording import eventscan, summaries
from allsmi.adapters.recording.eventscan import EventScan
from allsmi.adapters.recording.index import Chunk, SegmentInfo
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.adapters.recording.source import RecordingSource
from allsmi.adapters.recording.summaries import read_events, stored_events
from allsmi.app.events import events_of
from allsmi.app.replay_map import stored_parts
from allsmi.domain.events import Event, detect
from allsmi.domain.model import Frame, Header

from .test_eventscan import HOSTS, T0
from .test_eventscan import frame_at as eventscan_frame_at

HEADER = Header(source="remote", interval_ms=1000, hosts=HOSTS, started_ms=T0)


def frame_at(i: int) -> Frame:
    """test_eventscan's frames (n2 idles from the 100th second to the 200th, fails from the
    250th to the 260th), and frames stop for 40 s at the 280th: a gap only the end of the
    recording confirms."""
    frame = eventscan_frame_at(i)
    return attrs.evolve(frame, t_ms=frame.t_ms + 40_000) if i >= 280 else frame


FRAMES = [frame_at(i) for i in range(300)]
EXPECTED = detect(FRAMES, HOSTS, 1000)


def record(
    path: Path, *, close: bool = True, bare: int | None = None, **config: object
) -> RecordingSink:
    """FRAMES through the real sink, in 50-frame chunks; frame ``bare`` given without its
    structure."""
    sink = RecordingSink(SinkConfig(path, Codec.ZSTD, chunk_max_frames=50, **config), HEADER)  # type: ignore[arg-type]
    for frame in FRAMES:
        given = None if frame.seq == bare else frame
        sink.append(wire.encode_line(frame), frame.seq or 0, frame.t_ms, frame=given)
        sink.flush()
    if close:
        sink.close()
    return sink


def stored_of(path: Path) -> list[Event] | None:
    parts = stored_parts(RecordingSource(path))
    assert parts is not None
    return stored_events(parts)


def scan_of(path: Path, parts: Sequence[tuple[SegmentInfo, list[Chunk]]] | None) -> EventScan:
    """The replay's search, given what it would take stored."""

    def stored() -> list[Event] | None:
        return None if parts is None else stored_events(parts)

    return EventScan(path, expected_hosts=HOSTS, interval_ms=1000, stored=stored)


def found_by(scan: EventScan) -> list[Event]:
    deadline = time.monotonic() + 30
    while not scan.done and time.monotonic() < deadline:
        scan.poll()
        time.sleep(0.01)
    assert scan.done
    scan.close()
    return scan.found


def test_the_events_stored_are_those_the_frames_give(tmp_path: Path) -> None:
    """Every kind here (util-drop and back, host-lost and back, errors, the gap only the
    close confirms) stored by the recorder equals detection over the frames."""
    path = tmp_path / "r.ndjson.zst"
    record(path)
    assert {e.kind for e in EXPECTED} >= {"util-drop", "host-lost", "errors", "gap"}
    assert stored_of(path) == EXPECTED


def test_the_replay_takes_them_without_reading_a_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r.ndjson.zst"
    record(path)
    parts = stored_parts(RecordingSource(path))

    def no_frames(*_: object) -> Iterator[bytes]:
        raise AssertionError("the frames were read")

    monkeypatch.setattr(eventscan, "segment_lines", no_frames)
    scan = EventScan(
        path, expected_hosts=HOSTS, interval_ms=1000, stored=lambda: stored_events(parts or [])
    )
    assert found_by(scan) == EXPECTED


def test_a_rotated_set_is_one_run_and_a_restart_sends_the_set_to_its_frames(
    tmp_path: Path,
) -> None:
    """Rotation keeps the run (one detector across files: what is stored is what the frames
    give); a second run on the same path makes the stored events no answer (a scan's one
    detection across runs sees the downtime), so the frames decide, restart included, and
    ``allsmi events`` finds what the replay finds."""
    path = tmp_path / "set.ndjson.zst"
    record(path, max_size=3000, max_files=100)
    assert len(list(tmp_path.iterdir())) > 2
    assert stored_of(path) == EXPECTED
    again = RecordingSink(
        SinkConfig(path, Codec.ZSTD, max_size=3000, max_files=100),
        attrs.evolve(HEADER, started_ms=T0 + 400_000),
    )
    again.prepare_existing()
    later = attrs.evolve(FRAMES[0], t_ms=T0 + 400_000, seq=300)
    again.append(wire.encode_line(later), 300, later.t_ms, frame=later)
    again.close()
    assert stored_of(path) is None
    found = found_by(scan_of(path, stored_parts(RecordingSource(path))))
    assert [e.t_ms for e in found if e.kind == "restart"] == [T0 + 400_000]
    assert events_of(RecordingSource(path)) == found


def test_allsmi_events_and_the_replay_see_a_restart_inside_a_concatenated_file(
    tmp_path: Path,
) -> None:
    second = attrs.evolve(HEADER, started_ms=T0 + 100_000)
    lines = [wire.encode_line(HEADER), *(wire.encode_line(f) for f in FRAMES[:20])]
    lines += [wire.encode_line(second)]
    lines += [wire.encode_line(attrs.evolve(f, t_ms=f.t_ms + 100_000)) for f in FRAMES[:20]]
    path = tmp_path / "cat.ndjson"
    path.write_bytes(b"".join(lines))
    replay = found_by(scan_of(path, None))
    assert [e.t_ms for e in replay if e.kind == "restart"] == [T0 + 100_000]
    assert events_of(RecordingSource(path)) == replay


@pytest.mark.parametrize(
    "how",
    [
        "crash-cut",  # no footer: the last chunk's summary cannot be found
        "bare-frame",  # a frame given without its structure: its chunk stores no events
        "detection-off",  # a writer that stores none
    ],
)
def test_without_every_chunks_events_the_frames_decide(tmp_path: Path, how: str) -> None:
    path = tmp_path / "r.ndjson.zst"
    if how == "crash-cut":
        record(path, close=False)
    elif how == "bare-frame":
        record(path, bare=120)
    else:
        record(path, events=False)
    assert stored_of(path) is None
    parts = stored_parts(RecordingSource(path))
    scan = EventScan(
        path, expected_hosts=HOSTS, interval_ms=1000, stored=lambda: stored_events(parts or [])
    )
    found = found_by(scan)
    frames = [RecordingSource(path).frame(i) for i in range(len(FRAMES))]
    assert found == detect(frames, HOSTS, 1000)


@pytest.mark.parametrize(
    "block",
    [
        b"not json",
        b'{"t": 1}',
        b'[[1776513600000, null, null, "evil", "x"]]',  # a kind that is none of ours
        b'[[1776513600000, null, null, "gap", 5]]',  # a message that is no text
        b'[[1776513600000, 7, null, "gap", "x"]]',  # a host that is no text
        b'[[9776513600000, null, null, "gap", "x"]]',  # after its chunk's last frame
        b'[[-5, null, null, "gap", "x"]]',  # before 1970
        b'[[1776513600000, null, null, "gap"]]',
    ],
    ids=["not-json", "not-a-list", "kind", "message", "host", "future", "past", "short"],
)
def test_a_forged_events_block_is_refused_with_its_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: bytes
) -> None:
    real = summaries.encode_events
    calls: list[None] = []

    def forged(events: Sequence[Event]) -> bytes:
        calls.append(None)
        return block if len(calls) == 2 else real(events)

    monkeypatch.setattr(summaries, "encode_events", forged)
    path = tmp_path / "forged.ndjson.zst"
    record(path)
    source = RecordingSource(path)
    segment = source.segments[0]
    chunks = list(source.chunks)
    events = read_events(segment, chunks)
    assert [e is None for e in events] == [False, True, False, False, False, False]
    stored = summaries.read_stored(path, segment, chunks)
    assert stored[1].summary is None and stored[1].problem is not None
    assert "\n" not in stored[1].problem
    assert stored_of(path) is None  # the frames decide


def test_the_ends_events_survive_a_segment_found_full_at_the_last_flush(tmp_path: Path) -> None:
    """The last flush finds the segment full: it stays open for the run's end, so the gap
    only the close confirms is stored with the last chunk (and the set stays whole)."""
    size = record(tmp_path / "probe.ndjson.zst", close=False)._offset
    path = tmp_path / "r.ndjson.zst"
    sink = record(path, close=False, max_size=size - 1, max_files=100)
    assert sink._full and sink._fd is not None  # full, not yet closed
    sink.close()
    assert stored_of(path) == EXPECTED
    assert {e.kind for e in EXPECTED if e.t_ms >= FRAMES[279].t_ms} == {"gap"}
