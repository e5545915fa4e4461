"""The events behind the replay (allsmi.adapters.recording.eventscan): the thread finds what
``detect`` finds over the reader's frames, for every codec and a rotated set; a recording
that cannot be read is one clear error from poll; close stops it. Real files, the real
thread, polled until done (never a fixed sleep)."""

from __future__ import annotations

import time
from pathlib import Path

import attrs
import pytest

from allsmi.adapters import wire
from allsmi.adapters.recording.eventscan import EventScan
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.adapters.recording.source import RecordingSource
from allsmi.domain.errors import RecordingUnreadable
from allsmi.domain.events import detect
from allsmi.domain.model import Frame, Gpu, Header

T0 = 1_776_513_600_000
HOSTS = ("n1:9000", "n2:9000")
HEADER = Header(source="remote", interval_ms=1000, hosts=HOSTS)


def frame_at(i: int) -> Frame:
    """n2 goes idle from the 100th second to the 200th and fails from the 250th to 260th."""
    gpus = tuple(
        Gpu(f"{h}-0", "H100", "GPU", h, h, h, utilization=2.0 if h == "n2:9000" and
            100 <= i < 200 else 70.0, used_memory=500, total_memory=1000)
        for h in HOSTS if not (h == "n2:9000" and 250 <= i < 260)
    )  # fmt: skip
    errors = ("n2:9000: timeout",) if 250 <= i < 260 else ()
    return Frame(t_ms=T0 + i * 1000, seq=i, gpus=gpus, errors=errors)


FRAMES = [frame_at(i) for i in range(300)]


def record(path: Path, codec: Codec, max_size: int = 0) -> Path:
    config = SinkConfig(path=path, codec=codec, max_size=max_size, chunk_max_frames=50)
    sink = RecordingSink(config, HEADER)
    for frame in FRAMES:
        sink.append(wire.encode_line(frame), frame.seq or 0, frame.t_ms, frame=frame)
    sink.close()
    return path


def finished(scan: EventScan, timeout: float = 30.0) -> EventScan:
    deadline = time.monotonic() + timeout
    while not scan.done and time.monotonic() < deadline:
        scan.poll()
        time.sleep(0.01)
    assert scan.done
    return scan


@pytest.mark.parametrize(
    ("name", "codec", "max_size"),
    [("r.ndjson.zst", Codec.ZSTD, 0), ("r.ndjson.gz", Codec.GZIP, 0),
     ("r.ndjson", Codec.NONE, 0), ("set.ndjson.zst", Codec.ZSTD, 6000)],
    ids=["zstd", "gzip", "plain", "rotated"],
)  # fmt: skip
def test_the_thread_finds_what_detect_finds_over_the_readers_frames(
    tmp_path: Path, name: str, codec: Codec, max_size: int
) -> None:
    path = record(tmp_path / name, codec, max_size)
    source = RecordingSource(path)
    frames = [source.frame(i) for i in range(source.frame_count)]
    expected = detect(frames, HOSTS, 1000)
    found = finished(EventScan(path, expected_hosts=HOSTS, interval_ms=1000)).found
    assert found == expected
    kinds = {(e.kind, e.t_ms - T0) for e in found}
    assert ("util-drop", 100_000) in kinds and ("host-lost", 250_000) in kinds


def test_a_recording_that_cannot_be_read_is_one_clear_error(tmp_path: Path) -> None:
    scan = EventScan(tmp_path / "missing.ndjson.zst")
    deadline = time.monotonic() + 10
    with pytest.raises(RecordingUnreadable, match=r"missing\.ndjson\.zst"):
        while time.monotonic() < deadline:
            scan.poll()
            time.sleep(0.01)
    assert scan.done
    scan.close()


def test_close_stops_the_thread(tmp_path: Path) -> None:
    scan = EventScan(record(tmp_path / "r.ndjson.zst", Codec.ZSTD))
    scan.close()
    assert not scan._thread.is_alive()


def test_a_new_recorder_start_time_is_a_restart_and_a_rotation_is_none(tmp_path: Path) -> None:
    """Two runs on one path, the first rotated twice: one restart, stamped at the second
    run's start (the headers' started_ms: README "Events")."""
    path = tmp_path / "r.ndjson.zst"
    first_run = attrs.evolve(HEADER, started_ms=T0)
    config = SinkConfig(path, Codec.ZSTD, max_size=1500, max_files=50, chunk_max_frames=10)
    sink = RecordingSink(config, first_run)
    for frame in FRAMES[:150]:
        sink.append(wire.encode_line(frame), frame.seq or 0, frame.t_ms, frame=frame)
        sink.flush()
    sink.close()
    again = RecordingSink(config, attrs.evolve(HEADER, started_ms=T0 + 150_000))
    again.prepare_existing()
    for frame in FRAMES[150:]:
        again.append(wire.encode_line(frame), frame.seq or 0, frame.t_ms, frame=frame)
    again.close()
    assert len(list(tmp_path.iterdir())) > 3  # the first run rotated
    scan = finished(EventScan(path, expected_hosts=HOSTS, interval_ms=1000))
    restarts = [e for e in scan.found if e.kind == "restart"]
    assert [e.t_ms for e in restarts] == [T0 + 150_000]
    scan.close()
