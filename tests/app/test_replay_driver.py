"""The replay driver against recordings that change under it: the core is told, so its
frame count is never stale, and the status shows the frame's own recorded time."""

from __future__ import annotations

import re
from pathlib import Path

from allsmi.adapters import wire
from allsmi.adapters.recording import seektable
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.app.replay_driver import ReplayDriver
from allsmi.domain import replay as core
from allsmi.domain.model import Frame, Header
from tests.adapters import recordings as rec

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
