"""Local collection in-process: :class:`LocalSource` over the real NVML reader with a fake
``pynvml`` module (tests/adapters/test_nvml_fake_module.py), the real psutil host reader, and
the simulated clock; then the frame through the live view and through the recorder.

What is proved: a cycle fills the sections asked for and no others; a GPU query that fails
reads as ``N/A`` on that GPU alone; a lost GPU or a driver that will not open is an ``errors``
entry while the rest of the frame still comes; the chassis power is the sum of the GPUs'
power where the chassis has no reading of its own; times come from the injected clocks.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import UTC
from pathlib import Path

import anyio
import psutil
import pynvml
import pytest

from allsmi.adapters import wire
from allsmi.adapters.machine.host import HostReader
from allsmi.adapters.machine.nvml import NvmlReader
from allsmi.adapters.machine.processes import ProcessEnricher
from allsmi.adapters.recording.decoding import iter_file_lines
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.app.clock import SimClock
from allsmi.app.local import LocalSource, build_local_source, local_hostname
from allsmi.app.record import RecordPlan, record_loop
from allsmi.app.tui import LiveModel
from allsmi.domain.model import Chassis, Cpu, Frame, Gpu, GpuProcess, Header, Memory, Storage
from allsmi.domain.parse import format_elapsed

from ..adapters.test_host import core_percents, cpu_script, weighted_percent
from ..adapters.test_nvml_fake_module import FakeNvml, ProcessInfo

HOST = "node-7"
T0 = 1_776_513_600_000  # 2026-04-18T12:00:00Z
SECTIONS = ("gpu", "process", "cpu", "memory", "chassis", "storage")
NOT_SUPPORTED: int = pynvml.NVML_ERROR_NOT_SUPPORTED
GPU_IS_LOST: int = pynvml.NVML_ERROR_GPU_IS_LOST
DRIVER_NOT_LOADED: int = pynvml.NVML_ERROR_DRIVER_NOT_LOADED


class Rack(FakeNvml):
    """GPUs drawing ``watts[i]`` each; ``no_temperature`` GPUs fail their temperature query,
    ``no_power`` GPUs their power query (NOT_SUPPORTED, as a passive board answers)."""

    def __init__(
        self,
        watts: tuple[float, ...] = (100.0, 125.5),
        *,
        no_temperature: frozenset[int] = frozenset(),
        no_power: frozenset[int] = frozenset(),
        **kw: object,
    ) -> None:
        super().__init__(count=len(watts), **kw)  # type: ignore[arg-type]
        self.watts = watts
        self.no_temperature = no_temperature
        self.no_power = no_power

    def nvmlDeviceGetTemperature(self, handle: object, sensor: int) -> int:
        self._enter("nvmlDeviceGetTemperature", handle)
        if handle in self.no_temperature:
            raise pynvml.NVMLError(NOT_SUPPORTED)
        return 41

    def nvmlDeviceGetPowerUsage(self, handle: object) -> int:
        self._enter("nvmlDeviceGetPowerUsage", handle)
        if handle in self.no_power:
            raise pynvml.NVMLError(NOT_SUPPORTED)
        assert isinstance(handle, int)
        return round(self.watts[handle] * 1000)  # mW


class QuietHost(HostReader):
    """The real host reader, but a chassis without sensors or DMI: its rows are the same on
    every machine, and its power is only what the GPUs give it."""

    def __init__(self, own_power_w: float | None = None) -> None:
        super().__init__(HOST, HOST)
        self.own_power_w = own_power_w

    def read_chassis(self) -> tuple[Chassis, ...]:
        power = self.own_power_w
        return (Chassis(host_id=HOST, hostname=HOST, instance=HOST, total_power_watts=power),)


def source(
    include: tuple[str, ...],
    nvml: FakeNvml | None = None,
    *,
    host: HostReader | None = None,
    wall_clock_s: Callable[[], float] = lambda: T0 / 1000,
) -> LocalSource:
    return LocalSource(
        include,
        hostname=HOST,
        nvml=NvmlReader(nvml if nvml is not None else Rack(), host_id=HOST, hostname=HOST),
        host=host if host is not None else QuietHost(),
        enricher=ProcessEnricher(HOST, HOST),
        wall_clock_s=wall_clock_s,
    )


def collect(local: LocalSource, t_ms: int = T0, cycles: int = 1) -> list[Frame]:
    async def main() -> list[Frame]:
        await local.start()
        try:
            return [await local.collect(t_ms + k * 1000) for k in range(cycles)]
        finally:
            await local.aclose()

    return anyio.run(main)


def screen(frame: Frame) -> list[str]:
    model = LiveModel(label=f"LIVE {HOST}", tz=UTC)
    model.show(frame)
    return ["".join(span.text for span in line) for line in model.lines(120, 30)]


def present(frame: Frame) -> set[str]:
    return {name for name in SECTIONS if getattr(frame, _FIELD[name]) is not None}


_FIELD = {
    "gpu": "gpus",
    "process": "processes",
    "cpu": "cpus",
    "memory": "memory",
    "chassis": "chassis",
    "storage": "storage",
}


@pytest.mark.parametrize(
    "include",
    [
        ("gpu",),
        ("process",),
        ("memory", "storage"),
        ("cpu", "chassis"),
        ("gpu", "memory", "chassis"),
        SECTIONS,
    ],
    ids="+".join,
)
def test_a_cycle_fills_the_included_sections_and_no_others(include: tuple[str, ...]) -> None:
    nvml = Rack()

    (frame,) = collect(source(include, nvml))

    assert present(frame) == set(include)
    assert frame.errors == ()
    assert frame.t_ms == T0 and frame.source == "local"
    # the driver is opened only for the sections that need it
    assert ("nvmlInit" in nvml.calls) == bool({"gpu", "process"} & set(include))


def test_every_row_carries_the_host_it_was_read_on() -> None:
    nvml = Rack(graphics=(ProcessInfo(pid=os.getpid(), usedGpuMemory=1 << 30),))

    (frame,) = collect(source(SECTIONS, nvml))

    rows: list[Gpu | GpuProcess | Cpu | Memory | Chassis | Storage] = [
        *(frame.gpus or ()),
        *(frame.processes or ()),
        *(frame.cpus or ()),
        *(frame.memory or ()),
        *(frame.chassis or ()),
        *(frame.storage or ()),
    ]
    assert {type(row).__name__ for row in rows} >= {"Gpu", "GpuProcess", "Cpu", "Memory"}
    assert {(row.host_id, row.hostname) for row in rows} == {(HOST, HOST)}


def test_a_gpu_whose_query_fails_shows_na_and_the_other_gpu_its_reading() -> None:
    (frame,) = collect(source(("gpu",), Rack(no_temperature=frozenset({1}))))

    assert frame.gpus is not None
    assert [gpu.temperature for gpu in frame.gpus] == [41, None]  # None, never an invented 0
    assert frame.errors == ()  # one query not available is not an error of the cycle
    gpu0, gpu1 = (
        next(line for line in screen(frame) if line.startswith(f"GPU {i}")) for i in (0, 1)
    )
    assert re.search(r"Temp:\s+41°C", gpu0)
    assert re.search(r"Temp:\s+N/A", gpu1)


def test_a_lost_gpu_is_an_error_and_the_others_are_still_read() -> None:
    nvml = Rack((100.0, 125.5, 151.0), lost=frozenset({1}))

    (frame,) = collect(source(("gpu", "chassis"), nvml))

    assert frame.gpus is not None
    assert [gpu.detail["index"] for gpu in frame.gpus] == ["0", "2"]
    assert frame.errors == ("nvidia: GPU 1: GPU is lost",)
    assert frame.chassis is not None
    assert frame.chassis[0].total_power_watts == 251.0  # the GPUs that were read
    lines = screen(frame)
    assert any("nvidia: GPU 1: GPU is lost" in line for line in lines)
    assert sum(line.startswith("GPU ") and " @ " in line for line in lines) == 2


def test_a_driver_that_will_not_open_costs_the_gpu_section_only() -> None:
    nvml = Rack(init_error=DRIVER_NOT_LOADED)

    frames = collect(source(("gpu", "process", "memory"), nvml), cycles=2)

    for frame in frames:  # said on every cycle, not only the first
        assert present(frame) == {"memory"}
        assert frame.errors == ("nvidia: Driver Not Loaded",)
    assert nvml.calls["nvmlInit"] == 1  # not retried in each cycle


def test_chassis_power_is_the_sum_of_the_gpus_power() -> None:
    (frame,) = collect(source(("gpu", "chassis"), Rack((100.0, 125.5, 151.25))))

    assert frame.chassis is not None
    assert frame.chassis[0].total_power_watts == 376.75


def test_gpus_without_a_power_reading_are_left_out_of_the_sum() -> None:
    (frame,) = collect(source(("gpu", "chassis"), Rack((100.0, 125.5), no_power=frozenset({0}))))

    assert frame.chassis is not None
    assert frame.chassis[0].total_power_watts == 125.5


def test_no_gpu_power_at_all_leaves_the_chassis_power_unknown_not_zero() -> None:
    nvml = Rack((100.0, 125.5), no_power=frozenset({0, 1}))

    (frame,) = collect(source(("gpu", "chassis"), nvml))

    assert frame.chassis is not None
    assert frame.chassis[0].total_power_watts is None


def test_a_chassis_power_of_its_own_is_kept() -> None:
    (frame,) = collect(source(("gpu", "chassis"), Rack(), host=QuietHost(own_power_w=900.0)))

    assert frame.chassis is not None
    assert frame.chassis[0].total_power_watts == 900.0


def test_process_rows_are_enriched_on_the_injected_wall_clock() -> None:
    me = psutil.Process()
    started_s = me.create_time()
    nvml = Rack(graphics=(ProcessInfo(pid=me.pid, usedGpuMemory=1 << 30),))

    (frame,) = collect(source(("process",), nvml, wall_clock_s=lambda: started_s + 3725))

    assert frame.processes is not None
    assert [(p.pid, p.device_id, p.used_memory) for p in frame.processes] == [
        (me.pid, 0, 1 << 30),
        (me.pid, 1, 1 << 30),
    ]
    assert {p.start_time for p in frame.processes} == {format_elapsed(3725)} == {"01:02:05"}
    assert {p.process_name for p in frame.processes} == {me.name()}


def test_the_recorder_collects_from_the_local_readers_on_its_clock(tmp_path: Path) -> None:
    clock = SimClock(T0)
    path = tmp_path / "local.ndjson.zst"
    sink = RecordingSink(SinkConfig(path=path, codec=Codec.ZSTD), Header(hosts=(HOST,)))
    local = source(("gpu", "chassis"), Rack(no_temperature=frozenset({0})))
    plan = RecordPlan(interval_ms=1000, duration_ms=5000, source="local", hosts=(HOST,))

    async def main() -> None:
        await local.start()
        try:
            await record_loop(local, sink, clock, plan)
        finally:
            await local.aclose()

    anyio.run(main)

    lines = list(iter_file_lines(path))
    frames = [
        f
        for f in (wire.decode_line(raw, n) for n, raw in enumerate(lines, 1))
        if isinstance(f, Frame)
    ]
    assert [f.t_ms for f in frames] == [T0 + k * 1000 for k in range(5)]
    assert [f.seq for f in frames] == list(range(5))
    for frame in frames:
        assert frame.gpus is not None and frame.chassis is not None
        assert [gpu.temperature for gpu in frame.gpus] == [None, 41]  # null in the file
        assert frame.chassis[0].total_power_watts == 225.5


def test_build_local_source_wires_this_machines_readers_under_its_hostname() -> None:
    local = build_local_source(("cpu", "memory", "storage"))

    (frame,) = collect(local)

    hostname = local_hostname()
    assert local.hosts() == (hostname,)
    assert present(frame) == {"cpu", "memory", "storage"}
    assert frame.cpus and frame.memory
    rows: list[Cpu | Memory | Storage] = [*frame.cpus, *frame.memory, *(frame.storage or ())]
    assert {(row.host_id, row.hostname) for row in rows} == {(hostname, hostname)}
    assert frame.errors == ()


def test_each_cycle_s_cpu_figures_come_from_the_previous_sample_to_this_one() -> None:
    cpus = psutil.cpu_count() or 1  # the real /proc/cpuinfo names this many processors
    first, second = [(0.2, 0.05)] * cpus, [(0.0, 0.25)] * (cpus - 1) + [(0.25, 0.0)]
    script = cpu_script(cpus, first, second)
    host = HostReader(HOST, HOST, cpu_times=script)

    frames = collect(source(("cpu",), host=host), cycles=2)

    assert script.calls == 3  # one sample at start (the priming window opens), one a cycle
    for frame, window in zip(frames, (first, second), strict=True):
        assert frame.cpus is not None
        (cpu,) = frame.cpus
        assert cpu.utilization == weighted_percent(window)
        assert [c.utilization for c in cpu.per_core_utilization] == core_percents(window)
