"""The recorder's composition root, in-process, on a simulated clock (no sleeping)."""

from __future__ import annotations

import functools
import itertools
from pathlib import Path

import anyio
import attrs
import pytest

from allsmi.adapters import wire
from allsmi.adapters.recording.decoding import iter_file_lines as iter_lines
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.app.clock import SimClock
from allsmi.app.record import RecordPlan, RecordResult, fit_line, record_loop
from allsmi.domain.model import CoreUtilization, Cpu, Frame, GpuProcess, Header, Memory

T0 = 1_776_513_600_000


@attrs.define
class FakeSource:
    """A frame source whose collection takes ``cost_ms`` of simulated time."""

    clock: SimClock
    cost_ms: int = 0
    slow_cycles: dict[int, int] = attrs.field(factory=dict)  # cycle → extra ms
    fail_all: bool = False
    calls: int = 0
    in_flight: int = 0
    max_in_flight: int = 0

    async def collect(self, t_ms: int) -> Frame:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.clock.advance(self.cost_ms + self.slow_cycles.get(self.calls, 0))
        self.calls += 1
        await anyio.lowlevel.checkpoint()
        self.in_flight -= 1
        if self.fail_all:
            return Frame(t_ms=t_ms, errors=("nvidia: GPU is lost", "psutil: timed out after 5s"))
        mem = Memory(host_id="h", hostname="h", instance="h", used_bytes=self.calls)
        return Frame(t_ms=t_ms, memory=(mem,))

    async def start(self) -> None:
        return None

    def hosts(self) -> tuple[str, ...]:
        return ("h",)

    async def aclose(self) -> None:
        return None


def record(
    tmp_path: Path,
    source: FakeSource,
    clock: SimClock,
    *,
    interval_ms: int = 1000,
    duration_ms: int = 3_600_000,
    first_seq: int = 0,
) -> tuple[RecordResult, list[Frame]]:
    path = tmp_path / "t.ndjson.zst"
    sink = RecordingSink(SinkConfig(path=path, codec=Codec.ZSTD), Header())
    plan = RecordPlan(interval_ms, duration_ms, "local", ("h",))
    result = anyio.run(
        functools.partial(record_loop, first_seq=first_seq), source, sink, clock, plan
    )
    frames = [wire.decode_line(raw, n) for n, raw in enumerate(iter_lines(path), 1)]
    return result, [f for f in frames if isinstance(f, Frame)]


def test_an_hour_at_one_second_has_no_drift(tmp_path: Path) -> None:
    clock = SimClock(T0)
    result, frames = record(tmp_path, FakeSource(clock, cost_ms=37), clock)
    assert result.frames == 3600 and len(frames) == 3600
    assert [f.t_ms for f in frames] == [T0 + k * 1000 for k in range(3600)]
    assert [f.seq for f in frames] == list(range(3600))


def test_a_missed_deadline_is_skipped_and_noted_not_burst(tmp_path: Path) -> None:
    clock = SimClock(T0)
    source = FakeSource(clock, cost_ms=10, slow_cycles={5: 2500})
    result, frames = record(tmp_path, source, clock, duration_ms=20_000)
    times = [f.t_ms - T0 for f in frames]
    assert times[:7] == [0, 1000, 2000, 3000, 4000, 5000, 8000]
    assert all(b - a >= 1000 for a, b in itertools.pairwise(times))
    assert result.skipped_deadlines == 2
    assert any("skipped 2 deadline" in e for e in frames[6].errors)
    assert not frames[7].errors


def test_frame_time_never_decreases_when_the_wall_clock_steps_back(tmp_path: Path) -> None:
    clock = SimClock(T0)

    class SteppingSource(FakeSource):
        async def collect(self, t_ms: int) -> Frame:
            if self.calls == 3:
                self.clock.step_wall(-60_000)
            return await super().collect(t_ms)

    _, frames = record(tmp_path, SteppingSource(clock), clock, duration_ms=10_000)
    times = [f.t_ms for f in frames]
    assert times == sorted(times)
    assert times[4] == times[3]  # clamped, not 60 s in the past


def test_never_two_collections_in_flight(tmp_path: Path) -> None:
    clock = SimClock(T0)
    source = FakeSource(clock, cost_ms=1500)  # slower than the interval
    record(tmp_path, source, clock, duration_ms=30_000)
    assert source.max_in_flight == 1


def test_duration_bounds_the_number_of_frames(tmp_path: Path) -> None:
    clock = SimClock(T0)
    result, frames = record(
        tmp_path, FakeSource(clock), clock, interval_ms=3000, duration_ms=30_000
    )
    assert result.frames == 10 and len(frames) == 10


def test_seq_continues_from_first_seq(tmp_path: Path) -> None:
    clock = SimClock(T0)
    _, frames = record(tmp_path, FakeSource(clock), clock, duration_ms=5000, first_seq=42)
    assert [f.seq for f in frames] == [42, 43, 44, 45, 46]


def test_a_cycle_where_everything_failed_writes_an_errors_only_frame(tmp_path: Path) -> None:
    clock = SimClock(T0)
    _, frames = record(tmp_path, FakeSource(clock, fail_all=True), clock, duration_ms=2000)
    assert len(frames) == 2
    for frame in frames:
        assert frame.gpus is None and frame.cpus is None and frame.memory is None
        assert frame.errors == ("nvidia: GPU is lost", "psutil: timed out after 5s")


def test_stop_event_ends_the_recording_with_a_footer(tmp_path: Path) -> None:
    clock = SimClock(T0)
    stop = anyio.Event()

    class StoppingSource(FakeSource):
        async def collect(self, t_ms: int) -> Frame:
            if self.calls == 4:
                stop.set()  # a signal arrives while the fifth frame is being collected
            return await super().collect(t_ms)

    path = tmp_path / "t.ndjson.zst"
    sink = RecordingSink(SinkConfig(path=path, codec=Codec.ZSTD), Header())
    plan = RecordPlan(1000, 0, "local", ("h",))

    async def main() -> RecordResult:
        return await record_loop(StoppingSource(clock), sink, clock, plan, stop=stop)

    result = anyio.run(main)
    assert result.frames == 5  # the frame in progress completes
    from allsmi.adapters.recording import seektable

    assert seektable.decode_trailer(path.read_bytes()[-16:]) is not None


def test_sub_second_intervals_flush_within_a_second(tmp_path: Path) -> None:
    clock = SimClock(T0)
    path = tmp_path / "t.ndjson"
    flushes: list[int] = []

    class CountingSink(RecordingSink):
        def flush(self) -> None:
            flushes.append(clock.monotonic_ms())
            super().flush()

    sink = CountingSink(SinkConfig(path=path, codec=Codec.NONE), Header())
    plan = RecordPlan(100, 10_000, "local", ("h",))
    anyio.run(record_loop, FakeSource(clock), sink, clock, plan)
    assert 9 <= len(flushes) <= 60  # batched: far fewer than the 100 frames
    gaps = [b - a for a, b in itertools.pairwise([0, *flushes])]
    assert max(gaps) <= 1000


def _heavy_frame() -> Frame:
    # per-core rows alone past the cap: cutting the processes is not enough (the fallback)
    cores = tuple(CoreUtilization(core_id=i, utilization=1.0) for i in range(400_000))
    cpu = Cpu(host_id="h", hostname="h", instance="h", per_core_utilization=cores)
    procs = tuple(
        GpuProcess(
            host_id="h", hostname="h", device_id=0, device_uuid="u", pid=i, command="x" * 100
        )
        for i in range(30_000)
    )
    return Frame(t_ms=T0, seq=1, cpus=(cpu,), processes=procs)


def test_an_oversized_frame_drops_its_heaviest_sections_and_says_so() -> None:
    line = fit_line(_heavy_frame())
    assert len(line) <= 16 * 1024 * 1024
    frame = wire.decode_line(line, 1)
    assert isinstance(frame, Frame)
    assert frame.processes is None and frame.cpus is not None
    assert frame.cpus[0].per_core_utilization == ()
    assert any("over 16 MiB" in e for e in frame.errors)


@pytest.mark.parametrize("interval_ms", [100, 250, 1000, 3000])
def test_frames_keep_the_fixed_rate_at_any_interval(tmp_path: Path, interval_ms: int) -> None:
    clock = SimClock(T0)
    _, frames = record(
        tmp_path,
        FakeSource(clock, cost_ms=7),
        clock,
        interval_ms=interval_ms,
        duration_ms=interval_ms * 50,
    )
    assert [f.t_ms - T0 for f in frames] == [k * interval_ms for k in range(50)]
