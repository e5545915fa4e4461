"""The replay driver against recordings that change under it: the core is told, so its
frame count is never stale, and the status shows the frame's own recorded time."""

from __future__ import annotations

import gzip
import re
from datetime import UTC
from pathlib import Path

import pytest

from allsmi.adapters import wire
from allsmi.adapters.recording import seektable
from allsmi.adapters.recording.lock import RecordingLock
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.adapters.recording.source import RecordingSource
from allsmi.app.replay_driver import ReplayDriver
from allsmi.domain import replay as core
from allsmi.domain.model import Frame, Header
from allsmi.domain.parse import format_offset
from allsmi.domain.screen import format_label, replay_status
from tests.adapters import recordings as rec
from tests.adapters.recordings import PacedIndex

T0 = rec.T0


def test_a_chunk_that_held_fewer_frames_than_its_table_said_is_told_to_the_core(
    tmp_path: Path,
) -> None:
    path = tmp_path / "d.ndjson.zst"
    rec.write_sink(path, 1000, Codec.ZSTD, chunk_frames=100)  # closed: opened by its footer
    data = bytearray(path.read_bytes())
    starts = [m.start() for m in re.finditer(re.escape(seektable.ZSTD_MAGIC), bytes(data))]
    fifth = starts[4]
    data[fifth + 200 : fifth + 240] = b"\xff" * 40  # the fifth chunk decodes only in part
    path.write_bytes(bytes(data))
    driver = ReplayDriver.open(path)
    assert driver.state.frame_count == 1000  # what the table says, before anyone looks
    driver.feed(core.KeyPressed("g"))
    for key in [*"00:07:00", "enter"]:  # into the damaged chunk
        driver.feed(core.KeyPressed(key))
    source = driver.source
    assert source.frame_count < 1000
    assert driver.state.frame_count == source.frame_count
    assert driver.state.duration_ms == source.duration_ms
    assert driver.state.cursor == source.index_at_or_before(driver.state.first_key_ms + 420_000)
    for _ in range(3):  # stepping on from there never runs past the end
        driver.feed(core.KeyPressed("]"))
    assert driver.shown_index < source.frame_count


def test_the_status_time_is_the_frames_own_time_where_the_clock_went_back(
    tmp_path: Path,
) -> None:
    path = tmp_path / "b.ndjson"
    sink = RecordingSink(SinkConfig(path=path, codec=Codec.NONE), Header(interval_ms=1000))
    for seq, t in enumerate([T0, T0 + 5000, T0 + 2000, T0 + 6000]):  # back 3 s at frame 2
        sink.append(wire.encode_line(Frame(t_ms=t, seq=seq)), seq, t)
    sink.close()
    driver = ReplayDriver.open(path)
    driver.feed(core.KeyPressed("]"))
    driver.feed(core.KeyPressed("]"))
    assert driver.shown_index == 2
    assert driver.state.cursor_t_ms == T0 + 2000 == driver.frame().t_ms  # shown as recorded
    assert driver.state.cursor_key_ms == T0 + 5000  # placed by its key
    assert driver.state.position_ms == 5000


def test_a_followed_file_truncated_under_the_driver_is_a_rebuild(tmp_path: Path) -> None:
    path = tmp_path / "t.ndjson.zst"
    rec.write_sink(path, 30, Codec.ZSTD, close=False, chunk_frames=10)
    driver = ReplayDriver.open(path, follow=True)
    assert driver.state.mode is core.Mode.LIVE and driver.state.frame_count == 30
    with open(path, "r+b") as fh:
        fh.truncate(0)
    assert driver.poll()
    source = driver.source
    assert source.frame_count == 10  # only the lines held in memory are left
    assert driver.state.frame_count == source.frame_count
    assert driver.state.mode is core.Mode.LIVE
    assert driver.shown_index == source.frame_count - 1  # the live edge, found again
    fresh = tmp_path / "fresh"
    rec.write_sink(fresh, 5, Codec.ZSTD, close=False, first_seq=100)
    with open(path, "ab") as fh:
        fh.write(fresh.read_bytes())
    assert driver.poll()
    assert driver.state.frame_count == source.frame_count
    assert driver.frame().seq == 104
    source.close()


def jittered(path: Path, offsets_ms: list[int]) -> ReplayDriver:
    """A recording whose frames sit a few ms past the second, as real recorders stamp them
    (first frame at 16:21:07.002 UTC), opened in UTC."""
    first = T0 + 4 * 3_600_000 + 21 * 60_000 + 7_002  # T0 is 12:00:00 UTC
    sink = RecordingSink(SinkConfig(path=path, codec=Codec.NONE), Header(interval_ms=1000))
    for seq, offset in enumerate(offsets_ms):
        t = first + offset
        sink.append(wire.encode_line(Frame(t_ms=t, seq=seq)), seq, t)
    sink.close()
    return ReplayDriver.open(path, tz=UTC)


JITTER = (0, 3, 1, 7, 2, 0, 9, 4)


def label(driver: ReplayDriver) -> str:
    """The position the status line shows."""
    return format_label(replay_status(driver.state, UTC).position_ms)


def type_keys(driver: ReplayDriver, *keys: str) -> None:
    for name in keys:
        driver.feed(core.KeyPressed(name))


def test_go_to_a_second_shows_the_frame_labelled_with_it_and_steps_read_on(
    tmp_path: Path,
) -> None:
    """The first-time user's report: ``g 00:00:25`` showed 00:00:25 on the frame of offset
    24.0 s, and ``]`` then showed 00:00:25 again."""
    driver = jittered(tmp_path / "j.ndjson", [i * 1000 + JITTER[i % 8] for i in range(60)])
    type_keys(driver, "g", *"00:00:25", "enter")
    assert driver.shown_index == 25 and label(driver) == "00:00:25"
    type_keys(driver, "]")
    assert driver.shown_index == 26 and label(driver) == "00:00:26"
    type_keys(driver, "[", "[")
    assert driver.shown_index == 24 and label(driver) == "00:00:24"
    # Every frame's label is its own second: stepping through reads 0, 1, 2, ...
    type_keys(driver, "g", "0", "enter")
    for second in range(1, 60):
        type_keys(driver, "]")
        assert label(driver) == format_offset(second * 1000)


def test_go_to_a_wall_clock_second_lands_on_the_frame_recorded_in_it(tmp_path: Path) -> None:
    driver = jittered(tmp_path / "w.ndjson", [i * 1000 + JITTER[i % 8] for i in range(60)])
    type_keys(driver, "g", *"@16:21:32", "enter")  # frame 25 was recorded at 16:21:32.00x
    assert driver.shown_index == 25
    assert replay_status(driver.state, UTC).recorded_at == "2026-04-18 16:21:32 UTC"


def test_a_second_without_a_frame_shows_the_last_frame_before_it(tmp_path: Path) -> None:
    offsets = [0, 1000, 2000, 3000, 63_000, 64_000]  # a minute without frames
    driver = jittered(tmp_path / "g.ndjson", offsets)
    type_keys(driver, "g", *"00:30", "enter")
    assert driver.shown_index == 3 and label(driver) == "00:00:03"
    type_keys(driver, *"kkk")  # 40, 50, 60 s: still in the gap, then past it
    assert driver.shown_index == 3
    type_keys(driver, "k")  # 70 s: after the gap, the last frame (64 s) is before it
    assert driver.shown_index == 5


def test_start_lands_like_g_and_space_on_the_last_frame_restarts(tmp_path: Path) -> None:
    path = tmp_path / "s.ndjson"
    driver = jittered(path, [i * 1000 + JITTER[i % 8] for i in range(30)])
    driver = ReplayDriver.open(path, start="00:00:25", tz=UTC)
    assert driver.shown_index == 25 and label(driver) == "00:00:25"
    driver = ReplayDriver.open(path, start="5:00:00", tz=UTC)
    assert driver.shown_index == 29 and driver.state.mode is core.Mode.PAUSED
    type_keys(driver, "space")  # one press: play from the first frame
    after = driver.state
    assert driver.shown_index == 0 and after.mode is core.Mode.PLAYING


def test_following_says_recording_ended_when_the_lock_is_released_and_follows_a_restart(
    tmp_path: Path,
) -> None:
    """The recorder's lock is the signal, not a footer (every rotation writes one): held →
    live; released, once every frame it wrote is read → "recording ended", live left; held
    again by a new recorder on the same path → live again."""
    path = tmp_path / "r.ndjson.zst"
    lock = RecordingLock.acquire(path)
    rec.write_sink(path, 20, Codec.ZSTD, close=False, chunk_frames=5)
    driver = ReplayDriver.open(path, follow=True)
    assert driver.state.mode is core.Mode.LIVE
    assert not driver.poll()  # still held, nothing new: nothing to tell
    lock.release()
    assert driver.poll()
    ended = driver.state
    assert ended.mode is core.Mode.END and ended.message == "recording ended"
    assert driver.shown_index == 19  # the last frame it wrote
    assert not driver.poll()  # said once
    with RecordingLock.acquire(path):
        rec.write_sink(tmp_path / "more", 5, Codec.ZSTD, close=False, first_seq=20)
        with open(path, "ab") as fh:
            fh.write((tmp_path / "more").read_bytes())
        assert driver.poll()
        assert driver.state.mode is core.Mode.LIVE and not driver.state.ended
        assert driver.frame().seq == 24  # the new recorder's frames, at the live edge
    driver.source.close()


def test_a_recording_whose_recorder_already_exited_opens_ended(tmp_path: Path) -> None:
    path = tmp_path / "done.ndjson.gz"
    with RecordingLock.acquire(path):
        rec.write_sink(path, 10, Codec.GZIP, close=False)
    driver = ReplayDriver.open(path, follow=True)  # kill -9 left no footer, only the lock
    assert driver.state.mode is core.Mode.END and driver.state.ended
    assert driver.state.message == "recording ended"
    driver.source.close()


def test_a_recording_without_a_lock_file_stays_live(tmp_path: Path) -> None:
    """No lock file (another tool's recording, a copy): nothing says it ended."""
    path = tmp_path / "theirs.ndjson"
    rec.write_sink(path, 10, Codec.NONE, close=False)
    driver = ReplayDriver.open(path, follow=True)
    assert not driver.poll()
    assert driver.state.mode is core.Mode.LIVE and not driver.state.ended
    driver.source.close()


# --------------------------------------------------------------------------- background index


def indexed_gzip(path: Path, n: int = 20_000) -> Path:
    """``n`` frames a second apart, gzip: no seek table, so replay indexes it behind."""
    header = wire.encode_line(Header(interval_ms=1000, hosts=("h",)))
    frames = b"".join(wire.encode_line(rec.make_frame(i, T0 + i * 1000, i)) for i in range(n))
    path.write_bytes(gzip.compress(header + frames, compresslevel=1))
    return path


def index_all(driver: ReplayDriver, pace: PacedIndex) -> None:
    pace.go.set()
    while driver.state.indexing is not None:
        driver.poll()


def test_a_replay_indexed_behind_shows_the_percent_and_the_estimate_and_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pace = PacedIndex(monkeypatch)
    driver = ReplayDriver.open(indexed_gzip(tmp_path / "i.ndjson.gz"), background=True, tz=UTC)
    source = driver.source
    assert isinstance(source, RecordingSource)
    assert source.indexing is not None
    assert driver.state.indexing == int(source.indexing * 100) < 100
    driver.poll()  # the core hears of the estimate with the first progress it sees
    pace.go.set()
    while driver.state.frames_estimate is None and driver.state.indexing is not None:
        driver.poll()
    if driver.state.indexing is not None:
        assert driver.state.frames_estimate is not None
        assert driver.state.frames_estimate >= driver.state.frame_count
    type_keys(driver, "]", "]", "[")
    assert driver.shown_index == 1
    assert driver.frame().t_ms == T0 + 1000
    index_all(driver, pace)
    assert driver.state.frame_count == 20_000 and driver.state.frames_estimate is None
    driver.close()


def test_steps_work_while_the_index_is_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pace = PacedIndex(monkeypatch)
    driver = ReplayDriver.open(indexed_gzip(tmp_path / "s.ndjson.gz"), background=True, tz=UTC)
    assert driver.state.indexing is not None
    type_keys(driver, "]", "]", "]", "[")
    assert driver.shown_index == 2 and driver.frame().seq == 2
    assert driver.state.indexing is not None  # still held: nothing waited for it
    index_all(driver, pace)
    driver.close()


def test_go_to_a_second_not_indexed_yet_waits_and_lands_where_the_exact_reader_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = indexed_gzip(tmp_path / "g.ndjson.gz")
    exact = ReplayDriver.open(path, tz=UTC)
    type_keys(exact, "g", *"04:00:00", "enter")
    pace = PacedIndex(monkeypatch)
    driver = ReplayDriver.open(path, background=True, tz=UTC)
    assert driver.state.duration_ms < 4 * 3_600_000  # the index holds less than that yet
    type_keys(driver, "g", *"04:00:00", "enter")
    assert driver.state.waiting is not None
    assert driver.state.message is not None and driver.state.message.startswith("indexing —")
    index_all(driver, pace)
    assert driver.state.waiting is None
    assert driver.shown_index == exact.shown_index == 14_400
    assert driver.frame() == exact.frame()
    driver.close()


def test_esc_cancels_a_seek_waiting_for_the_index_and_the_replay_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pace = PacedIndex(monkeypatch)
    driver = ReplayDriver.open(indexed_gzip(tmp_path / "e.ndjson.gz"), background=True, tz=UTC)
    shown = driver.shown_index
    type_keys(driver, "g", *"04:00:00", "enter")
    assert driver.state.waiting is not None
    type_keys(driver, "esc")
    assert driver.state.waiting is None and not driver.quit
    index_all(driver, pace)
    assert driver.shown_index == shown  # the cancelled seek never landed
    driver.close()


def test_playing_to_the_end_of_what_is_indexed_plays_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pace = PacedIndex(monkeypatch)
    driver = ReplayDriver.open(indexed_gzip(tmp_path / "p.ndjson.gz"), background=True, tz=UTC)
    indexed = driver.state.frame_count
    type_keys(driver, "space")
    assert driver.state.mode is core.Mode.PLAYING
    driver.feed(core.TickElapsed(dt_ms=driver.state.duration_ms + 60_000))
    assert driver.state.mode is core.Mode.PLAYING
    # While indexing, the duration runs to the newest chunk's first frame (that chunk is not
    # decoded for it): playing waits there.
    assert isinstance(driver.source, RecordingSource)
    newest = driver.source.timeline.chunks[-1]
    assert driver.shown_index == newest.first_index < indexed
    index_all(driver, pace)
    driver.feed(core.TickElapsed(dt_ms=1000))
    assert driver.state.mode is core.Mode.PLAYING and driver.shown_index > newest.first_index
    driver.close()
