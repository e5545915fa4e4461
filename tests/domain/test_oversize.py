"""The recorder's oversize policy: what a frame over the line cap loses, step by step."""

from __future__ import annotations

from allsmi.domain.model import CoreUtilization, Cpu, Frame, GpuProcess, Memory
from allsmi.domain.oversize import oversize_fallbacks, unrecordable, without_heavy_parts

T0 = 1_776_513_600_000
CAP = 16 * 1024 * 1024


def _frame() -> Frame:
    cores = tuple(CoreUtilization(core_id=i, utilization=1.0) for i in range(4))
    cpu = Cpu(host_id="h", hostname="h", instance="h", utilization=3.0, per_core_utilization=cores)
    proc = GpuProcess(host_id="h", hostname="h", device_id=0, device_uuid="u", pid=1)
    mem = Memory(host_id="h", hostname="h", instance="h", total_bytes=1)
    return Frame(
        t_ms=T0,
        seq=9,
        source="remote",
        cpus=(cpu,),
        memory=(mem,),
        processes=(proc,),
        errors=("a",),
    )


def test_the_first_fallback_drops_processes_and_per_core_lists_and_says_so() -> None:
    frame = _frame()
    lighter = next(oversize_fallbacks(frame, CAP))
    assert lighter == without_heavy_parts(frame, CAP)
    assert lighter.processes is None and lighter.memory == frame.memory
    assert lighter.cpus is not None and lighter.cpus[0].per_core_utilization == ()
    assert lighter.cpus[0].utilization == 3.0
    assert lighter.errors == (
        "a",
        "recorder: frame over 16 MiB, dropped processes and per-core lists",
    )
    assert (lighter.t_ms, lighter.seq, lighter.source) == (T0, 9, "remote")


def test_a_frame_without_cpus_keeps_them_not_collected() -> None:
    frame = Frame(t_ms=T0, processes=())
    assert without_heavy_parts(frame, CAP).cpus is None


def test_the_last_fallback_is_an_errors_only_frame_saying_it_was_not_recorded() -> None:
    *_, last = oversize_fallbacks(_frame(), CAP)
    assert last == Frame(
        t_ms=T0,
        seq=9,
        source="remote",
        errors=("recorder: frame over 16 MiB even without processes; not recorded",),
    )


def test_each_fallback_is_lighter_than_the_one_before() -> None:
    frame = _frame()
    steps = [frame, *oversize_fallbacks(frame, CAP)]
    assert len(steps) == 3
    sizes = [len(repr(step)) - sum(map(len, step.errors)) for step in steps]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 3


def test_the_cap_is_named_in_the_notes() -> None:
    assert "over 1 MiB," in next(oversize_fallbacks(_frame(), 1 << 20)).errors[-1]


def test_an_unencodable_frame_leaves_its_errors_and_the_reason() -> None:
    assert unrecordable(_frame(), "int too big") == Frame(
        t_ms=T0,
        seq=9,
        source="remote",
        errors=("a", "recorder: frame not recordable (int too big)"),
    )
