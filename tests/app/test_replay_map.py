"""The replay's map (allsmi.app.replay_map): where it comes from (stored summaries at once,
the background pass for the rest), that it ends as the summary of every frame, and that a
paused replay draws the history the live view drew at that instant. Real files written by
the real sink; the background pass is the real thread, polled until done."""

from __future__ import annotations

import gzip
import time
from datetime import UTC
from pathlib import Path

import attrs

from allsmi.adapters import wire
from allsmi.adapters.recording.eventscan import EventScan
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.adapters.recording.source import RecordingSource
from allsmi.app.replay_driver import ReplayDriver
from allsmi.app.replay_map import ReplayMap, open_events, open_map
from allsmi.app.tui import LiveModel, ReplayModel
from allsmi.domain.history import gpu_history_lines, panel_lines
from allsmi.domain.model import Cpu, Frame, Gpu, Header, Memory
from allsmi.domain.screen_rows import StyledLine
from allsmi.domain.summary import Summary

T0 = 1_776_513_600_000 + 3_000  # 3 s past a bucket boundary: buckets are cut mid-chunk
HOSTS = ("n1:9000", "n2:9000")
HEADER = Header(source="remote", interval_ms=1000, hosts=HOSTS)


def frame_at(i: int) -> Frame:
    """Two hosts of two GPUs; n2 idles from the 200th second, and errors at the 300th."""
    gpus = tuple(
        Gpu(f"{h}-{g}", "H100", "GPU", h, h, h, utilization=(5.0 if h == "n2" and i >= 200
            else 60.0 + (i * 7 + g) % 30), temperature=50 + i % 20, used_memory=10 + i,
            total_memory=1000, power_consumption=200.0 + i % 50, frequency=1400)
        for h in HOSTS for g in range(2)
    )  # fmt: skip
    cpus = tuple(Cpu(h, h, h, utilization=10.0 + i % 40) for h in HOSTS)
    memory = tuple(Memory(h, h, h, used_bytes=i, total_bytes=10_000) for h in HOSTS)
    errors = ("n2:9000: timeout",) if i == 300 else ()
    return Frame(t_ms=T0 + i * 1000, seq=i, gpus=gpus, cpus=cpus, memory=memory, errors=errors)


FRAMES = [frame_at(i) for i in range(450)]


def record(path: Path, codec: Codec, *, close: bool = True) -> Path:
    sink = RecordingSink(SinkConfig(path=path, codec=codec, chunk_max_frames=100), HEADER)
    for frame in FRAMES:
        sink.append(wire.encode_line(frame), frame.seq or 0, frame.t_ms, frame=frame)
    sink.flush()
    if close:
        sink.close()
    return path


def whole(frames: list[Frame]) -> Summary:
    return Summary.of(frames, expected_hosts=HOSTS, interval_ms=1000)


def built(replay_map: ReplayMap, timeout: float = 30.0) -> ReplayMap:
    deadline = time.monotonic() + timeout
    while replay_map.building and time.monotonic() < deadline:
        replay_map.poll()
        time.sleep(0.01)
    assert not replay_map.building
    return replay_map


def test_our_zstd_recording_has_its_whole_map_from_its_summaries_without_a_pass(
    tmp_path: Path,
) -> None:
    source = RecordingSource(record(tmp_path / "r.ndjson.zst", Codec.ZSTD))
    replay_map = open_map(source)  # returns at once: the summaries are read behind
    assert built(replay_map).summary == whole(FRAMES)
    assert not replay_map.scanned  # every chunk stored its summary: nothing was scanned


def test_a_crash_cut_zstd_file_reads_the_chunk_left_without_a_summary(tmp_path: Path) -> None:
    path = record(tmp_path / "cut.ndjson.zst", Codec.ZSTD, close=False)
    source = RecordingSource(path)
    assert source.segments[0].opened_by == "markers"
    replay_map = open_map(source)
    assert built(replay_map).summary == whole(FRAMES)
    assert not replay_map.scanned  # the last chunk, being written, was read from its frames


def test_a_gzip_recording_is_mapped_behind_and_ends_as_the_summary_of_its_frames(
    tmp_path: Path,
) -> None:
    plain = record(tmp_path / "r.ndjson", Codec.NONE)
    path = tmp_path / "one-member.ndjson.gz"
    path.write_bytes(gzip.compress(plain.read_bytes()))
    source = RecordingSource(path, background=True)
    replay_map = open_map(source)
    versions = replay_map.version
    assert built(replay_map).summary == whole(FRAMES)
    assert replay_map.scanned  # no stored summaries: the background pass read it
    assert replay_map.version > versions
    replay_map.close()
    source.close()


def text(lines: list[StyledLine]) -> list[str]:
    return ["".join(span.text for span in line) for line in lines]


def test_a_paused_replay_draws_the_history_the_live_view_drew_at_that_instant(
    tmp_path: Path,
) -> None:
    source = RecordingSource(record(tmp_path / "r.ndjson.zst", Codec.ZSTD))
    replay_map = built(open_map(source))
    live = LiveModel(label="LIVE", tz=UTC, expected_hosts=HOSTS)
    for at, frame in enumerate(FRAMES):
        live.show(frame)
        if at % 37 and at not in (205, 299, 300, 449):  # mid-bucket instants, and the ends
            continue
        shown, played = live.history(), replay_map.view(source, at)
        assert shown is not None and played.t_ms == shown.t_ms
        for host in (None, "n2:9000"):
            assert text(panel_lines(played, host, 140)) == text(panel_lines(shown, host, 140))
        gpus = [("n2:9000-0", "GPU0"), ("n2:9000-1", "GPU1")]
        assert gpu_history_lines(played, "n2:9000", gpus, 120) == gpu_history_lines(
            shown, "n2:9000", gpus, 120
        )


def test_a_map_that_cannot_be_finished_says_so_and_the_replay_goes_on(tmp_path: Path) -> None:
    plain = record(tmp_path / "r.ndjson", Codec.NONE)
    path = tmp_path / "gone.ndjson.gz"
    path.write_bytes(gzip.compress(plain.read_bytes()))
    source = RecordingSource(path)  # opened (and indexed) before the file goes
    source.frame(0)  # the frame on screen, read while the file was there
    path.unlink()  # the background pass cannot read it now
    replay_map = open_map(source)
    built(replay_map)  # ends: no exception reaches the screen's loop
    assert replay_map.problem is not None and replay_map.problem.startswith("map incomplete:")
    assert "gone.ndjson.gz" in replay_map.problem
    view = replay_map.view(source, 0)
    assert view.built_to_ms is not None  # the strip keeps marking what was never mapped


def test_a_stored_summary_that_contradicts_its_frames_is_dropped_when_its_chunk_is_read(
    tmp_path: Path,
) -> None:
    """A forger's file: the second chunk's summary is of other readings at the same times
    and counts, so it passes every check at open; reading that chunk for the screen shows
    the lie, and the map is built again from the frames."""
    path = tmp_path / "forged.ndjson.zst"
    config = SinkConfig(path=path, codec=Codec.ZSTD, chunk_max_frames=100)
    honest = RecordingSink(attrs.evolve(config, path=tmp_path / "honest.ndjson.zst"), HEADER)
    for frame in FRAMES:
        honest.append(wire.encode_line(frame), frame.seq or 0, frame.t_ms, frame=frame)
    honest.close()
    starts = [first for first, _ in RecordingSource(honest.config.path).chunk_starts()]
    second = range(starts[1], starts[2])  # where the sink cut the second chunk
    assert 150 in second
    forged = [frame_at(i) for i in range(450)]
    for i in second:  # the second chunk's summary: its GPUs at 1 % all along
        idle = tuple(attrs.evolve(g, utilization=1.0) for g in forged[i].gpus or ())
        forged[i] = attrs.evolve(forged[i], gpus=idle)
    sink = RecordingSink(config, HEADER)
    for frame, given in zip(FRAMES, forged, strict=True):
        sink.append(wire.encode_line(frame), frame.seq or 0, frame.t_ms, frame=given)
    sink.close()
    source = RecordingSource(path)
    replay_map = built(open_map(source))
    assert replay_map.summary == whole(forged)  # the lie, until its chunk is read
    replay_map.view(source, 50)  # a chunk that tells the truth: nothing changes
    assert replay_map.problem is None and replay_map.summary == whole(forged)
    replay_map.view(source, 150)  # the forged chunk, read for the screen
    assert replay_map.problem is not None and "disagrees with its frames" in replay_map.problem
    assert built(replay_map).summary == whole(FRAMES)
    replay_map.view(source, 150)  # checked once: the map stays the frames'
    assert replay_map.summary == whole(FRAMES)


def test_an_event_search_that_fails_says_so_and_the_replay_goes_on(tmp_path: Path) -> None:
    driver = ReplayDriver.open(record(tmp_path / "r.ndjson.zst", Codec.ZSTD))
    scan = EventScan(tmp_path / "gone.ndjson.zst")  # nothing there to search
    model = ReplayModel(driver=driver, tz=UTC, events=scan)
    deadline = time.monotonic() + 10
    while model.events is not None and time.monotonic() < deadline:
        model.poll_events()
        time.sleep(0.01)
    assert model.events is None and driver.state.stops_complete
    assert (driver.state.message or "").startswith("events: ")
    model.key("]")  # the replay goes on
    assert driver.state.cursor == 1
    scan.close()


def test_with_help_over_the_event_list_the_arrows_scroll_the_help(tmp_path: Path) -> None:
    """The list stays as it was under the help: ↓ scrolls what is shown (the help), and
    the selection is where it was when the help closes."""
    path = record(tmp_path / "r.ndjson.zst", Codec.ZSTD)
    driver = ReplayDriver.open(path)
    source = driver.source
    assert isinstance(source, RecordingSource)
    model = ReplayModel(driver=driver, tz=UTC, events=open_events(source))
    deadline = time.monotonic() + 10
    while not driver.state.stops_complete and time.monotonic() < deadline:
        model.poll_events()
        time.sleep(0.01)
    assert len(driver.state.events) >= 2
    model.lines(80, 24)
    model.key("e")
    model.key("h")
    listing = driver.state.listing
    assert listing is not None and model.view.help
    for key in ("down", "down", "pgdn"):
        model.key(key)
    assert driver.state.listing == listing and model.view.scroll > 0
    model.key("esc")  # closes the help, not the list
    assert not model.view.help and driver.state.listing == listing
    if model.events is not None:
        model.events.close()
