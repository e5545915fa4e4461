"""Retention by age (``record --max-age``): the recorder's loop on a simulated clock, across
rotation and restart, and the sink's rules for segments it did not write itself."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import anyio
import pytest

from allsmi.adapters.recording import sink as sink_module
from allsmi.adapters.recording.retention import segment_end_ms
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.adapters.recording.source import RecordingSource
from allsmi.app.clock import SimClock
from allsmi.app.record import RecordPlan, record_loop
from allsmi.domain.errors import UsageError
from allsmi.domain.model import Header
from allsmi.domain.segments import numbered_segments

from .test_record_loop import FakeSource

T0 = 1_776_513_600_000
MINUTE = 60_000
HOUR = 60 * MINUTE
EXT = {Codec.ZSTD: ".ndjson.zst", Codec.GZIP: ".ndjson.gz", Codec.NONE: ".ndjson"}


def run(
    path: Path,
    clock: SimClock,
    *,
    duration_ms: int,
    max_age_ms: int = HOUR,
    max_files: int = 7,
    codec: Codec = Codec.ZSTD,
    max_size: int = 0,
) -> RecordingSink:
    config = SinkConfig(
        path=path, codec=codec, max_size=max_size, max_files=max_files, max_age_ms=max_age_ms
    )
    sink = RecordingSink(config, Header(interval_ms=10_000, started_ms=clock.wall_ms()))
    sink.prepare_existing()  # as `record` does: a restart rotates the old active file aside
    plan = RecordPlan(10_000, duration_ms, "local", ("h",))
    anyio.run(functools.partial(record_loop, first_seq=0), FakeSource(clock), sink, clock, plan)
    return sink


def numbered(path: Path) -> list[str]:
    return [name for _, name in numbered_segments(path.name, os.listdir(path.parent))]


def times(path: Path) -> list[int]:
    with RecordingSource(path) as source:
        return [source.time_at(i) for i in range(source.frame_count)]


@pytest.mark.parametrize("codec", list(Codec))
def test_five_hours_keep_the_last_hour_in_rotated_files_and_the_active_one(
    tmp_path: Path, codec: Codec
) -> None:
    path = tmp_path / f"r{EXT[codec]}"
    clock = SimClock(T0)
    sink = run(path, clock, duration_ms=5 * HOUR, codec=codec)
    last = T0 + 5 * HOUR - 10_000
    kept = times(path)
    assert kept[-1] == last and path.exists()  # the active file is never deleted
    # at least the last hour is kept, and at most one segment's span (10 min) more
    assert last - HOUR - 10 * MINUTE <= kept[0] <= last - HOUR
    assert kept == list(range(kept[0], last + 1, 10_000))  # nothing inside it lost
    for name in numbered(path):  # each rotated file spans at most 60 min / (7 - 1)
        seg = times(tmp_path / name)
        assert seg[-1] - seg[0] < 10 * MINUTE
        assert seg[-1] >= last - HOUR  # none older than the age is left
    assert sink.stats.rotations >= 29  # 5 h of 10-min segments


def test_a_restart_a_day_later_deletes_the_first_runs_files_at_its_first_frame(
    tmp_path: Path,
) -> None:
    path = tmp_path / "r.ndjson.zst"
    clock = SimClock(T0)
    run(path, clock, duration_ms=HOUR)
    first_run = set(os.listdir(tmp_path))
    clock.advance(24 * HOUR)  # the machine was off for a day
    run(path, clock, duration_ms=10_000)  # one frame
    assert times(path) == [T0 + 25 * HOUR]
    assert numbered(path) == []  # the first run's files, its last active one included
    assert not first_run - {"r.ndjson.zst", "r.ndjson.zst.lock"} & set(os.listdir(tmp_path))


def test_a_restart_within_the_age_keeps_the_first_runs_frames(tmp_path: Path) -> None:
    path = tmp_path / "r.ndjson.zst"
    clock = SimClock(T0)
    run(path, clock, duration_ms=30 * MINUTE)
    clock.advance(5 * MINUTE)
    run(path, clock, duration_ms=30 * MINUTE)
    kept = times(path)
    assert kept[0] == T0  # 65 min: the first frames are within an hour of the newest
    assert len(kept) == 2 * 180


def test_without_an_age_nothing_is_deleted_by_age(tmp_path: Path) -> None:
    path = tmp_path / "r.ndjson.zst"
    clock = SimClock(T0)
    sink = run(path, clock, duration_ms=5 * HOUR, max_age_ms=0)
    assert times(path)[0] == T0 and sink.stats.rotations == 0


def test_max_files_still_bounds_the_set_under_an_age(tmp_path: Path) -> None:
    path = tmp_path / "r.ndjson.zst"
    clock = SimClock(T0)
    run(path, clock, duration_ms=5 * HOUR, max_size=1024)  # size rotates far more often
    assert len(numbered(path)) == 6  # max_files 7, the active one included
    assert times(path)[-1] - times(path)[0] < HOUR  # the count bit first: under the age


@pytest.mark.parametrize("codec", list(Codec))
def test_a_segment_from_an_earlier_run_is_judged_by_its_last_frame(
    tmp_path: Path, codec: Codec
) -> None:
    path = tmp_path / f"r{EXT[codec]}"
    clock = SimClock(T0)
    run(path, clock, duration_ms=20 * MINUTE, max_age_ms=0)
    path.rename(tmp_path / f"r.0001{EXT[codec]}")
    assert segment_end_ms(tmp_path / f"r.0001{EXT[codec]}") == T0 + 20 * MINUTE - 10_000
    os.utime(tmp_path / f"r.0001{EXT[codec]}", (0, 0))  # its mtime must not be what counts
    clock.advance(HOUR - 10_000)  # the next frame comes exactly an hour after its last
    run(path, clock, duration_ms=10_000)
    assert numbered(path) == [f"r.0001{EXT[codec]}"]  # not older than the age: kept
    run(path, clock, duration_ms=10_000)  # 10 s later
    assert f"r.0001{EXT[codec]}" not in numbered(path)  # now older: deleted


def test_a_segment_without_a_readable_end_is_judged_by_its_modification_time(
    tmp_path: Path,
) -> None:
    cut = tmp_path / "r.0001.ndjson.zst"
    cut.write_bytes(b"\x28\xb5\x2f\xfd" + b"\0" * 64)  # a zstd file cut before any footer
    os.utime(cut, ns=(T0 * 1_000_000, T0 * 1_000_000))
    assert segment_end_ms(cut) == T0
    path = tmp_path / "r.ndjson.zst"
    clock = SimClock(T0 + HOUR)  # exactly an hour after it was last written: kept
    run(path, clock, duration_ms=10_000)
    assert cut.exists()
    clock.advance(10_000)
    run(path, clock, duration_ms=10_000)
    assert not cut.exists()


def test_each_segments_end_is_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "r.ndjson.zst"
    clock = SimClock(T0)
    run(path, clock, duration_ms=HOUR, max_age_ms=0, max_size=1024)  # many old segments
    reads: list[Path] = []

    def counted(p: Path) -> int | None:
        reads.append(p)
        return segment_end_ms(p)

    monkeypatch.setattr(sink_module, "segment_end_ms", counted)
    run(path, clock, duration_ms=2 * HOUR)
    assert reads and len(reads) == len(set(reads))


def test_an_age_with_one_file_is_refused(tmp_path: Path) -> None:
    config = SinkConfig(tmp_path / "r.ndjson.zst", Codec.ZSTD, max_files=1, max_age_ms=HOUR)
    with pytest.raises(UsageError, match="--max-age needs --max-files of at least 2"):
        RecordingSink(config, Header())


def test_a_fifo_named_like_a_segment_is_never_waited_on_nor_deleted_by_age(
    tmp_path: Path,
) -> None:
    fifo, old = tmp_path / "r.0001.ndjson.zst", tmp_path / "r.0005.ndjson.zst"
    os.mkfifo(fifo)
    old.write_bytes(b"\x28\xb5\x2f\xfd" + b"\0" * 64)
    os.utime(old, ns=(0, 0))  # 1970: far older than the age
    assert segment_end_ms(fifo) is None  # returns at once: nobody writes into that FIFO
    sink = run(tmp_path / "r.ndjson.zst", SimClock(T0), duration_ms=30 * MINUTE)
    assert fifo.exists() and not old.exists()
    assert sink.stats.frames == 180 and sink.stats.rotations == 2  # recorded on past it


def test_a_segment_that_will_not_go_is_said_once_and_recording_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stuck = tmp_path / "r.0001.ndjson.zst"
    stuck.write_bytes(b"\x28\xb5\x2f\xfd" + b"\0" * 64)
    os.utime(stuck, ns=(0, 0))  # 1970: far older than the age
    real_unlink = Path.unlink

    def refuse(self: Path, missing_ok: bool = False) -> None:
        if self.name == stuck.name:
            raise PermissionError(1, "Operation not permitted")
        real_unlink(self, missing_ok)

    monkeypatch.setattr(Path, "unlink", refuse)
    clock = SimClock(T0)
    sink = run(tmp_path / "r.ndjson.zst", clock, duration_ms=50 * MINUTE)  # under max-files
    assert stuck.exists() and sink.stats.notes == [
        f"cannot delete {stuck} (older than --max-age): Operation not permitted"
    ]
    assert times(tmp_path / "r.ndjson.zst")[-1] == T0 + 50 * MINUTE - 10_000  # recorded on


def test_a_segment_dated_in_the_future_shields_no_older_one(tmp_path: Path) -> None:
    future, old = tmp_path / "r.0001.ndjson.zst", tmp_path / "r.0002.ndjson.zst"
    for seg, at in ((future, T0 + 365 * 24 * HOUR), (old, T0 - 2 * HOUR)):
        seg.write_bytes(b"\x28\xb5\x2f\xfd" + b"\0" * 64)  # no footer: judged by mtime
        os.utime(seg, ns=(at * 1_000_000, at * 1_000_000))
    run(tmp_path / "r.ndjson.zst", SimClock(T0), duration_ms=10_000)
    assert future.exists() and not old.exists()
