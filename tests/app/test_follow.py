"""Following a recording while the real recorder writes it (simulated source and clock)."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from allsmi.adapters import wire
from allsmi.adapters.recording import follow, seektable
from allsmi.adapters.recording.damage import DamageKind
from allsmi.adapters.recording.follow import FollowingSource
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.adapters.recording.source import RecordingSource
from allsmi.app.clock import SimClock
from allsmi.app.record import RecordPlan, record_loop
from allsmi.app.replay_driver import ReplayDriver
from allsmi.domain import replay as core
from allsmi.domain.model import Frame, Header, Memory
from tests.adapters import recordings as rec

T0 = 1_776_513_600_000


@attrs.define
class Follower:
    path: Path
    source: FollowingSource | None = None
    seen: list[int] = attrs.field(factory=list)
    next_index: int = 0
    rotations: int = 0
    dropped: int = 0
    peak_cache: int = 0

    def poll(self) -> None:
        if self.source is None:
            if not self.path.exists():
                return
            self.source = FollowingSource(self.path, cache_bytes=256 * 1024)
        else:
            update = self.source.poll()
            self.rotations += update.rotated
            self.dropped += update.dropped
            self.next_index = max(0, self.next_index - update.dropped)
        for i in range(self.next_index, self.source.frame_count):
            memory = self.source.frame(i).memory
            assert memory is not None
            self.seen.append(memory[0].used_bytes or 0)
        self.next_index = self.source.frame_count
        self.peak_cache = max(self.peak_cache, self.source.reader.cache.size)


@attrs.define
class WatchedSource:
    """A simulated source that lets the follower poll between collections."""

    follower: Follower
    calls: int = 0

    async def start(self) -> None:
        return None

    async def collect(self, t_ms: int) -> Frame:
        if self.calls % 3 == 0:
            self.follower.poll()
        mem = Memory(
            host_id="h",
            hostname="h",
            instance="h",
            used_bytes=self.calls,
            utilization=float(self.calls % 97),
        )
        self.calls += 1
        return Frame(t_ms=t_ms, memory=(mem,), errors=("x" * (self.calls % 50),))

    def hosts(self) -> tuple[str, ...]:
        return ("h",)

    async def aclose(self) -> None:
        return None


@pytest.mark.parametrize("kind", [Codec.ZSTD, Codec.GZIP, Codec.NONE])
def test_a_follower_sees_every_frame_once_across_rotations_and_eviction(
    tmp_path: Path, kind: Codec
) -> None:
    path = tmp_path / "live.ndjson"
    follower = Follower(path)
    config = SinkConfig(
        path=path,
        codec=kind,
        max_size=6000 if kind is Codec.NONE else 2500,
        max_files=3,
        chunk_max_frames=40,
    )
    sink = RecordingSink(config, Header(interval_ms=100))
    plan = RecordPlan(100, 600 * 100, "local", ("h",))
    anyio.run(record_loop, WatchedSource(follower), sink, SimClock(T0), plan)
    follower.poll()
    assert follower.seen == list(range(600))  # in order, none lost, none doubled
    assert follower.rotations >= 2 and follower.dropped > 0
    assert follower.source is not None
    assert follower.source.frame_count < 600  # the evicted start left the timeline
    assert follower.peak_cache <= 256 * 1024 + 64 * 1024
    follower.source.close()


def test_an_incomplete_last_line_is_pending_not_damage(tmp_path: Path) -> None:
    path = tmp_path / "p.ndjson"
    sink = RecordingSink(SinkConfig(path=path, codec=Codec.NONE), Header())
    for seq in range(3):
        mem = Memory(host_id="h", hostname="h", instance="h", used_bytes=seq)
        from allsmi.adapters import wire

        sink.append(wire.encode_line(Frame(t_ms=T0 + seq, seq=seq, memory=(mem,))), seq, T0 + seq)
    sink.flush()
    follower = FollowingSource(path)
    line = wire.encode_line(Frame(t_ms=T0 + 9, seq=3))
    with open(path, "ab") as fh:
        fh.write(line[:10])
    assert follower.poll().added == 0 and not follower.warnings
    with open(path, "ab") as fh:
        fh.write(line[10:])
    assert follower.poll().added == 1 and follower.frame_count == 4
    follower.close()
    sink.close()


def test_replay_follow_opens_live_and_keeps_up(tmp_path: Path) -> None:
    path = tmp_path / "f.ndjson.zst"
    sink = RecordingSink(SinkConfig(path=path, codec=Codec.ZSTD), Header(interval_ms=1000))
    from allsmi.adapters import wire

    def write(seq: int) -> None:
        sink.append(wire.encode_line(Frame(t_ms=T0 + seq * 1000, seq=seq)), seq, T0 + seq * 1000)
        sink.flush()

    for seq in range(5):
        write(seq)
    driver = ReplayDriver.open(path, follow=True)
    assert driver.state.mode is core.Mode.LIVE and driver.shown_index == 4
    write(5)
    assert driver.poll()
    assert driver.shown_index == 5 and driver.state.mode is core.Mode.LIVE
    driver.feed(core.KeyPressed("j"))
    assert driver.state.mode.value == "paused"
    write(6)
    driver.poll()
    assert driver.shown_index < 6 and driver.state.frame_count == 7
    driver.feed(core.KeyPressed("G"))
    assert driver.state.mode is core.Mode.LIVE and driver.shown_index == 6
    driver.source.close()
    sink.close()


def _big_frame(seq: int) -> bytes:
    from allsmi.adapters import wire

    mem = Memory(host_id="h", hostname="h", instance="h", used_bytes=seq)
    noise = f"{seq:08d}" * 40_000  # ~320 KB a line, barely compressible in plain files
    return wire.encode_line(Frame(t_ms=T0 + seq * 1000, seq=seq, memory=(mem,), errors=(noise,)))


def test_a_backlog_over_4_mib_at_rotation_is_drained_not_lost(tmp_path: Path) -> None:
    path = tmp_path / "big.ndjson"
    sink = RecordingSink(
        SinkConfig(path=path, codec=Codec.NONE, max_size=20 << 20, max_files=10), Header()
    )
    sink.append(_big_frame(0), 0, T0)
    sink.flush()
    follower = FollowingSource(path)
    for seq in range(1, 75):  # ~24 MB: a rotation with far more than 4 MiB unread
        sink.append(_big_frame(seq), seq, T0 + seq * 1000)
        sink.flush()
    sink.close()
    for _ in range(20):
        follower.poll()
    ids = [(follower.frame(i).memory or ())[0].used_bytes for i in range(follower.frame_count)]
    assert ids == list(range(75))
    follower.close()


def test_following_with_max_files_1_never_doubles_or_crashes(tmp_path: Path) -> None:
    from allsmi.adapters import wire

    path = tmp_path / "one.ndjson"
    sink = RecordingSink(
        SinkConfig(path=path, codec=Codec.NONE, max_size=600, max_files=1), Header()
    )
    sink.append(wire.encode_line(Frame(t_ms=T0, seq=0)), 0, T0)
    sink.flush()
    follower = FollowingSource(path)
    seen: list[int] = []
    for seq in range(1, 40):
        sink.append(wire.encode_line(Frame(t_ms=T0 + seq, seq=seq)), seq, T0 + seq)
        sink.flush()
        follower.poll()
        seen.extend(follower.frame(i).seq or 0 for i in range(follower.frame_count))
        assert follower.frame(follower.frame_count - 1).seq == seq  # always the newest
    assert len(set(seen)) == 40  # every frame was seen at some point
    follower.close()
    sink.close()


def test_an_empty_active_file_beside_rotated_segments_is_followed(tmp_path: Path) -> None:
    from allsmi.adapters import wire

    path = tmp_path / "e.ndjson"
    sink = RecordingSink(SinkConfig(path=path, codec=Codec.NONE, max_size=300), Header())
    for seq in range(6):
        sink.append(wire.encode_line(Frame(t_ms=T0 + seq, seq=seq)), seq, T0 + seq)
        sink.flush()
    sink.close()
    path.write_bytes(b"")  # what a full disk leaves right after a rotation
    follower = FollowingSource(path)
    assert follower.frame_count > 0
    with open(path, "ab") as fh:
        fh.write(wire.encode_line(Header()) + wire.encode_line(Frame(t_ms=T0 + 99, seq=99)))
    follower.poll()
    assert follower.frame(follower.frame_count - 1).seq == 99
    follower.close()


def frame_ids(source: RecordingSource | FollowingSource) -> list[int]:
    """Every frame's id (memory used_bytes), read while the count holds."""
    found, i = [], 0
    while i < source.frame_count:
        memory = source.frame(i).memory
        found.append(memory[0].used_bytes or 0 if memory else -1)
        i += 1
    return found


@pytest.mark.parametrize("kind", [Codec.ZSTD, Codec.GZIP, Codec.NONE])
def test_several_rotations_between_two_polls_leave_no_segment_out(
    tmp_path: Path, kind: Codec
) -> None:
    path = tmp_path / f"r.ndjson.{kind.value}"
    config = SinkConfig(path=path, codec=kind, max_size=3000, max_files=1000, chunk_max_frames=10)
    sink = RecordingSink(config, Header(interval_ms=1000, hosts=("h",)))
    follower: FollowingSource | None = None
    for i in range(400):
        sink.append(wire.encode_line(rec.make_frame(i, T0 + i * 1000, i)), i, T0 + i * 1000)
        sink.flush()
        if i == 20:
            follower = FollowingSource(path, cache_bytes=1)
        elif follower is not None and i % 97 == 0:  # several rotations come in between
            follower.poll()
    sink.close()
    assert follower is not None
    follower.poll()
    assert frame_ids(follower) == list(range(400))
    follower.close()


@pytest.mark.parametrize("kind", [Codec.ZSTD, Codec.GZIP])
def test_lines_spanning_frame_boundaries_are_followed_as_the_reader_reads_them(
    tmp_path: Path, kind: Codec
) -> None:
    import gzip

    import zstandard

    plain = tmp_path / "p.ndjson"
    rec.write_sink(plain, 600, Codec.NONE, chunk_frames=10)
    raw = plain.read_bytes()
    cuts = [0, *(at + 10 for at in _all(raw, b'{"schema":1,"index":true')), len(raw)]
    pack = zstandard.ZstdCompressor().compress if kind is Codec.ZSTD else gzip.compress
    data = b"".join(pack(raw[a:b]) for a, b in itertools.pairwise(cuts) if b > a)
    path = tmp_path / f"f.ndjson.{kind.value}"
    path.write_bytes(data[: len(data) // 10])
    follower = FollowingSource(path, cache_bytes=1)
    for at in range(len(data) // 10, len(data), 777):
        with open(path, "ab") as fh:
            fh.write(data[at : at + 777])
        follower.poll()
    assert frame_ids(follower) == list(range(600))  # chunks re-read from their starts
    follower.close()


def _all(data: bytes, needle: bytes) -> list[int]:
    found, at = [], data.find(needle, 1)
    while at > 0:
        found.append(at)
        at = data.find(needle, at + 1)
    return found


@pytest.mark.parametrize("kind", [Codec.ZSTD, Codec.GZIP])
def test_an_empty_active_file_is_followed_in_the_codec_it_gets(tmp_path: Path, kind: Codec) -> None:
    rec.write_sink(tmp_path / f"a.0001.ndjson.{kind.value}", 50, kind)
    path = tmp_path / f"a.ndjson.{kind.value}"
    path.write_bytes(b"")  # created by a rotation, nothing flushed yet
    follower = FollowingSource(path)
    later = tmp_path / "later"
    rec.write_sink(later, 40, kind, close=False, first_seq=50)
    path.write_bytes(later.read_bytes())
    follower.poll()
    assert follower.frame_count == 90
    assert follower.segments[-1].count(DamageKind.CORRUPT_LINE) == 0
    follower.close()


@pytest.mark.parametrize("kind", [Codec.ZSTD, Codec.GZIP, Codec.NONE])
def test_a_file_truncated_to_nothing_and_recorded_anew_is_followed(
    tmp_path: Path, kind: Codec
) -> None:
    path = tmp_path / f"t.ndjson.{kind.value}"
    rec.write_sink(path, 30, kind, close=False, chunk_frames=10)
    follower = FollowingSource(path)
    assert follower.frame_count == 30
    fresh = tmp_path / "fresh"
    rec.write_sink(fresh, 20, kind, close=False, chunk_frames=10)
    with open(path, "r+b") as fh:
        fh.truncate(0)
    assert follower.poll().rebuilt
    assert any("was truncated to 0 bytes" in w for w in follower.warnings)
    with open(path, "ab") as fh:
        fh.write(fresh.read_bytes())
    follower.poll()
    assert frame_ids(follower)[-20:] == list(range(20))  # the new recording, every frame
    assert not follower.segments[-1].damage.regions()  # its first unit is no damage
    follower.close()


def test_growth_while_the_follower_attaches_is_chunked_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source_file = tmp_path / "s.ndjson.zst"
    rec.write_sink(source_file, 3000, Codec.ZSTD, close=False, chunk_frames=50)
    data = source_file.read_bytes()
    first, second = len(data) // 10, len(data) * 9 // 10
    path = tmp_path / "a.ndjson.zst"
    path.write_bytes(data[:first])

    def opened_then_grown(at: Path, **kw: Any) -> RecordingSource:
        reader = RecordingSource(at, **kw)
        with open(path, "ab") as fh:  # the recorder writes on while the reader opens
            fh.write(data[first:second])
        return reader

    monkeypatch.setattr(follow, "RecordingSource", opened_then_grown)
    follower = FollowingSource(path, cache_bytes=1)
    monkeypatch.undo()
    # What attaching read is in the timeline at once, numbered (the driver asks for the
    # last key before any poll: it used to spin here, the new chunks not yet numbered).
    assert follower.frame_count > 3000 * 8 // 10
    assert frame_ids(follower) == list(range(follower.frame_count))
    with open(path, "ab") as fh:
        fh.write(data[second:])
    follower.poll()
    assert max(c.count or 0 for c in follower.chunks) <= 50
    assert frame_ids(follower) == list(range(3000))
    follower.close()


def test_following_from_a_cut_right_after_a_marker_reads_every_frame(tmp_path: Path) -> None:
    whole = tmp_path / "w.ndjson.zst"
    rec.write_sink(whole, 100, Codec.ZSTD, chunk_frames=25)
    data = whole.read_bytes()
    marker = seektable.MARKER_MAGIC.to_bytes(4, "little")
    at = data.find(marker, data.find(marker) + 1)  # the second chunk's marker
    head = seektable.read_head(data[at : at + 8])
    assert head is not None
    path = tmp_path / "f.ndjson.zst"
    path.write_bytes(data[: at + 8 + head[1] + 20])  # its frame only begun
    follower = FollowingSource(path, cache_bytes=1 << 20)
    with open(path, "ab") as fh:
        fh.write(data[at + 8 + head[1] + 20 :])
    follower.poll()
    assert frame_ids(follower) == list(range(100))
    follower.close()


def _second_chunk_broken(path: Path, frames: int) -> tuple[bytes, list[int]]:
    """An unclosed zstd recording of ``frames`` frames in chunks of 10 whose second chunk no
    longer decodes (its marker still promises it), and the offsets of every marker."""
    rec.write_sink(path, frames, Codec.ZSTD, close=False, chunk_frames=10)
    data = bytearray(path.read_bytes())
    marker = re.escape(seektable.MARKER_MAGIC.to_bytes(4, "little"))
    marks = [m.start() for m in re.finditer(marker, bytes(data))]
    second = bytes(data).find(seektable.ZSTD_MAGIC, marks[1])
    data[second + 30 : second + 70] = b"\xff" * 40
    return bytes(data), marks


def test_attaching_to_a_chunk_whose_marker_lied_follows_the_rescanned_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "m.ndjson.zst"
    data, marks = _second_chunk_broken(path, 30)
    head = seektable.read_head(data[marks[2] : marks[2] + 8])
    assert head is not None
    cut = marks[2] + 8 + head[1] + 10  # the third chunk only begun: its marker is the last
    path.write_bytes(data[:cut])
    follower = FollowingSource(path)  # the tail goes to the second chunk: a rescan
    assert follower.segments[0].opened_by == "scan"
    kept = frame_ids(follower)
    with open(path, "ab") as fh:
        fh.write(data[cut:])
    follower.poll()
    assert frame_ids(follower) == [*kept, *range(20, 30)]  # nothing twice, nothing lost
    follower.close()


def test_a_rescan_between_polls_puts_the_tail_back_and_is_told_as_a_rebuild(
    tmp_path: Path,
) -> None:
    data, marks = _second_chunk_broken(tmp_path / "w.ndjson.zst", 60)
    path = tmp_path / "f.ndjson.zst"
    path.write_bytes(data[: marks[4]])  # four chunks: opened by their markers
    follower = FollowingSource(path)
    assert follower.segments[0].opened_by == "markers" and follower.frame_count == 40
    with open(path, "ab") as fh:
        fh.write(data[marks[4] : marks[5]])  # written, not polled for yet
    kept = frame_ids(follower)  # reading the second chunk finds the lie: a rescan ...
    assert follower.segments[0].opened_by == "scan"
    assert kept[-10:] == list(range(40, 50))  # ... of the whole file as it is now
    with open(path, "ab") as fh:
        fh.write(data[marks[5] :])
    update = follower.poll()
    assert update.rebuilt
    assert frame_ids(follower) == [*kept, *range(50, 60)]  # nothing twice, nothing lost
    follower.close()


def _rotating_sink(path: Path, kind: Codec, keep: int) -> RecordingSink:
    """A sink whose every flush closes the segment (rotated at the next append), one frame
    per chunk (each append writes the frame before it)."""
    config = SinkConfig(path=path, codec=kind, max_size=1, max_files=keep, chunk_max_frames=1)
    return RecordingSink(config, Header(interval_ms=1000, hosts=("h",)))


def _append(sink: RecordingSink, *idents: int) -> None:
    for i in idents:
        sink.append(wire.encode_line(rec.make_frame(i, T0 + i * 1000, i)), i, T0 + i * 1000)


@pytest.mark.parametrize("kind", [Codec.ZSTD, Codec.GZIP, Codec.NONE])
def test_a_segment_rotated_after_the_followed_one_evicted_is_still_read(
    tmp_path: Path, kind: Codec
) -> None:
    path = tmp_path / f"b.ndjson.{kind.value}"
    sink = _rotating_sink(path, kind, keep=2)
    _append(sink, 0, 1)
    sink.flush()
    follower = FollowingSource(path, cache_bytes=1)
    assert frame_ids(follower) == [0, 1]
    _append(sink, 2, 3)  # the followed file is renamed .0001; 2 and 3 go to the next one
    sink.flush()
    _append(sink, 4)  # which is renamed .0002, and .0001 evicted: all before the next poll
    sink.flush()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"b.0002.ndjson.{kind.value}",
        path.name,
    ]
    update = follower.poll()
    assert update.dropped == 2 and update.added == 3
    assert frame_ids(follower) == [2, 3, 4]  # .0002 is still there: none of it left out
    follower.close()
    sink.close()


@pytest.mark.parametrize("kind", [Codec.ZSTD, Codec.GZIP, Codec.NONE])
def test_the_followed_file_evicted_before_the_new_one_has_bytes_leaves_at_once(
    tmp_path: Path, kind: Codec
) -> None:
    path = tmp_path / f"a.ndjson.{kind.value}"
    sink = _rotating_sink(path, kind, keep=1)
    _append(sink, 0, 1)  # frame 0 written, frame 1 pending
    follower = FollowingSource(path, cache_bytes=1)
    assert frame_ids(follower) == [0]
    _append(sink, 2)
    sink.flush()
    _append(sink, 3)  # rotated and evicted (--max-files 1); 3 is not in the new file yet
    assert path.stat().st_size == 0
    update = follower.poll()
    # Its file is gone: what was read of it leaves the timeline now (its path names the new
    # active file, which must never be read for it), and 1 and 2 were evicted unread.
    assert update.dropped == 1 and follower.frame_count == 0
    sink.flush()
    update = follower.poll()
    assert update.rotated and update.dropped == 0
    assert frame_ids(follower) == [3]
    follower.close()
    sink.close()


@pytest.mark.parametrize("keep", [2, 3])
@pytest.mark.parametrize("kind", [Codec.ZSTD, Codec.NONE])
def test_an_empty_active_file_rotated_before_a_poll_saw_a_byte_is_read_whole(
    tmp_path: Path, kind: Codec, keep: int
) -> None:
    path = tmp_path / f"c.ndjson.{kind.value}"
    sink = _rotating_sink(path, kind, keep=keep)
    _append(sink, 0, 1)
    sink.flush()
    _append(sink, 2)  # rotated: the new active file has no bytes yet (2 is pending)
    follower = FollowingSource(path, cache_bytes=1)
    assert frame_ids(follower) == [0, 1]
    sink.flush()  # 2 is written to the file the follower waits on ...
    _append(sink, 3)  # ... which is rotated (.0002) before the follower polls again
    sink.flush()
    update = follower.poll()
    assert update.rotated
    survivors = [0, 1, 2, 3] if keep == 3 else [2, 3]  # keep 2: .0001 is evicted
    assert frame_ids(follower) == survivors  # 2 is in .0002, still there: not left out
    follower.close()
    sink.close()
