"""The node simulator: determinism, all-smi's clamps, incidents, sections, scale, the codec."""

from __future__ import annotations

from itertools import pairwise
from statistics import fmean

import attrs
import pytest

from allsmi.adapters import wire
from allsmi.adapters.simulation.simulator import (
    ClusterSimulator,
    ClusterSpec,
    Incident,
    gpu_memory_from_name,
)
from allsmi.domain.model import SECTIONS, Chassis, Cpu, Frame, Gpu, Memory, Storage

T0 = 1_776_513_600_000  # 2026-04-18T12:00:00.000Z
STEP = 3000  # ms, all-smi's mock cadence
SMALL = ClusterSpec(nodes=3, gpus_per_node=4, cores_per_node=8, seed=7)


def _run(sim: ClusterSimulator, steps: int, include: tuple[str, ...] = SECTIONS) -> list[Frame]:
    frames = []
    for k in range(steps):
        sim.advance(STEP)
        frames.append(sim.frame(T0 + k * STEP, include))
    return frames


def _gpus_of(frame: Frame, host_id: str) -> list[Gpu]:
    return [g for g in frame.gpus or () if g.host_id == host_id]


# -- determinism


def test_same_seed_and_same_advances_give_equal_frames() -> None:
    assert _run(ClusterSimulator(SMALL), 30) == _run(ClusterSimulator(SMALL), 30)


def test_a_different_seed_gives_different_frames_and_uuids() -> None:
    one = _run(ClusterSimulator(SMALL), 5)
    other = _run(ClusterSimulator(attrs.evolve(SMALL, seed=8)), 5)
    assert one != other
    uuids_one = {g.uuid for g in one[0].gpus or ()}
    uuids_other = {g.uuid for g in other[0].gpus or ()}
    assert not uuids_one & uuids_other


def test_reading_draws_nothing_so_extra_reads_do_not_change_the_walk() -> None:
    quiet, busy = ClusterSimulator(SMALL), ClusterSimulator(SMALL)
    for k in range(10):
        quiet.advance(STEP)
        busy.advance(STEP)
        for _ in range(3):
            busy.frame(T0 + k * STEP, SECTIONS)
            busy.node_frame_parts(1, T0 + k * STEP)
    assert quiet.frame(T0, SECTIONS) == busy.frame(T0, SECTIONS)
    assert busy.frame(T0, SECTIONS) == busy.frame(T0, SECTIONS)


def test_static_fields_stay_constant_and_detail_dicts_are_shared() -> None:
    frames = _run(ClusterSimulator(SMALL), 20)
    first, last = frames[0].gpus or (), frames[-1].gpus or ()
    assert [(g.uuid, g.name, g.total_memory) for g in first] == [
        (g.uuid, g.name, g.total_memory) for g in last
    ]
    assert all(a.detail is b.detail for a, b in zip(first, last, strict=True))
    assert first[1].detail == {"driver_version": "550.54.15", "cuda_version": "12.4", "index": "1"}
    assert all(g.uuid.startswith("GPU-") and len(g.uuid) == 40 for g in first)
    pids = [[(p.host_id, p.pid) for p in f.processes or ()] for f in frames]
    assert all(p == pids[0] for p in pids) and pids[0]


# -- walks and clamps


def test_values_stay_within_all_smis_clamps_over_2000_steps() -> None:
    spec = ClusterSpec(nodes=2, gpus_per_node=8, cores_per_node=16, seed=3)
    for frame in _run(ClusterSimulator(spec), 2000):
        for g in frame.gpus or ():
            assert g.utilization is not None and 0.0 <= g.utilization <= 100.0
            assert g.power_consumption is not None and 80.0 <= g.power_consumption <= 700.0
            assert g.temperature is not None and 35 <= g.temperature <= 85
            assert g.frequency is not None and 1000 <= g.frequency <= 1980
            assert g.used_memory is not None and 0 <= g.used_memory <= spec.gpu_memory_bytes
        for cpu in frame.cpus or ():
            assert cpu.utilization is not None and 0.0 <= cpu.utilization <= 100.0
            cores = [c.utilization for c in cpu.per_core_utilization]
            assert all(u is not None and 0.0 <= u <= 100.0 for u in cores)
        for mem in frame.memory or ():
            assert mem.used_bytes is not None and 0 <= mem.used_bytes <= spec.memory_bytes
        for disk in frame.storage or ():
            assert disk.available_bytes is not None and disk.total_bytes is not None
            assert 0 <= disk.available_bytes <= disk.total_bytes
            assert disk.total_bytes in (1024**4, 4 * 1024**4, 12 * 1024**4)


def test_utilization_walk_moves_and_is_rounded_like_all_smi() -> None:
    frames = _run(ClusterSimulator(SMALL), 100)
    series = [(f.gpus or ())[0].utilization or 0.0 for f in frames]
    assert len(set(series)) > 50
    steps = [abs(b - a) for a, b in pairwise(series)]
    assert max(steps) < 25.0  # a walk, not white noise
    gpu = (frames[-1].gpus or ())[0]
    assert gpu.utilization == round(gpu.utilization or 0.0, 2)
    assert gpu.power_consumption == round(gpu.power_consumption or 0.0, 3)


def test_chassis_power_is_gpu_power_plus_a_base() -> None:
    frame = _run(ClusterSimulator(SMALL), 3)[-1]
    for chassis in frame.chassis or ():
        gpu_w = sum(g.power_consumption or 0.0 for g in _gpus_of(frame, chassis.host_id))
        assert chassis.total_power_watts is not None
        assert 350.0 <= chassis.total_power_watts - gpu_w <= 451.0


def test_processes_hold_their_gpus_memory() -> None:
    frame = _run(ClusterSimulator(SMALL), 3)[-1]
    for gpu in frame.gpus or ():
        procs = [p for p in frame.processes or () if p.device_uuid == gpu.uuid]
        assert procs and all(p.host_id == gpu.host_id for p in procs)
        assert sum(p.used_memory or 0 for p in procs) == gpu.used_memory


# -- incidents


def test_gpu_idle_collapses_one_node_and_it_recovers_after_the_end() -> None:
    start, end = T0 + 60_000, T0 + 360_000
    incident = Incident(host_index=1, start_ms=start, end_ms=end, kind="gpu_idle")
    hit = ClusterSimulator(attrs.evolve(SMALL, incidents=(incident,)))
    calm = ClusterSimulator(SMALL)
    temps: dict[int, float] = {}
    for k in range(1, 400):
        t = T0 + k * STEP
        hit.advance(STEP)
        calm.advance(STEP)
        frame, base = hit.frame(t, SECTIONS), calm.frame(t, SECTIONS)
        node, node_base = _gpus_of(frame, "node-02"), _gpus_of(base, "node-02")
        for other in ("node-01", "node-03"):
            assert _gpus_of(frame, other) == _gpus_of(base, other)
        assert [g.used_memory for g in node] == [g.used_memory for g in node_base]
        temps[t] = fmean(g.temperature or 0 for g in node)
        if start <= t < end:
            assert all((g.utilization or 0.0) <= 2.0 for g in node)
            assert all((g.power_consumption or 0.0) <= 100.0 for g in node)
    assert abs(temps[start] - temps[start - STEP]) <= 2.0  # gradual, no jump
    assert temps[start - STEP] > 45.0
    assert temps[start + 30_000] > temps[start + 180_000] > temps[end - STEP] - 0.01
    assert temps[end - STEP] <= 37.0
    after = hit.frame(end + 180_000, SECTIONS)
    assert fmean(g.utilization or 0.0 for g in _gpus_of(after, "node-02")) > 10.0


def test_host_down_contributes_no_rows_and_an_error_naming_it() -> None:
    incident = Incident(host_index=0, start_ms=T0, end_ms=T0 + 30_000, kind="host_down")
    sim = ClusterSimulator(attrs.evolve(SMALL, incidents=(incident,)))
    frame = sim.frame(T0 + STEP, SECTIONS)
    assert frame.errors == ("node-01: connection refused",)
    assert "node-01" not in frame.hosts()
    assert all(p.host_id != "node-01" for p in frame.processes or ())
    assert frame.hosts() == ("node-02", "node-03")
    assert sim.node_frame_parts(0, T0 + STEP) is None
    later = sim.frame(T0 + 30_000, SECTIONS)
    assert later.errors == () and later.hosts() == sim.hosts


def test_an_incident_without_end_lasts_forever() -> None:
    incident = Incident(host_index=2, start_ms=T0, end_ms=None, kind="host_down")
    sim = ClusterSimulator(attrs.evolve(SMALL, incidents=(incident,)))
    assert sim.frame(T0 + 10**9).errors == ("node-03: connection refused",)
    assert sim.frame(T0 - 1).errors == ()


def test_node_frame_parts_holds_one_nodes_rows() -> None:
    sim = ClusterSimulator(SMALL)
    parts = sim.node_frame_parts(2, T0)
    assert parts is not None and parts.host_id == "node-03"
    assert len(parts.gpus) == 4 and len(parts.cpus) == len(parts.memory) == 1
    cpu = parts.cpus[0]
    assert len(cpu.per_socket_info) == 2 and len(cpu.per_core_utilization) == 8
    assert len(parts.storage) == 2 and len(parts.chassis) == 1
    rows: list[Gpu | Cpu | Memory | Chassis | Storage] = [
        *parts.gpus,
        *parts.cpus,
        *parts.memory,
        *parts.chassis,
        *parts.storage,
    ]
    assert {r.host_id for r in rows} == {"node-03"}
    assert list(parts.gpus) == _gpus_of(sim.frame(T0), "node-03")


# -- sections, hosts, scale, codec


@pytest.mark.parametrize(
    "include", [("gpu",), ("cpu", "storage"), ("memory", "chassis", "process"), ()]
)
def test_frame_holds_only_the_included_sections(include: tuple[str, ...]) -> None:
    frame = ClusterSimulator(SMALL).frame(T0, include)
    present = {
        "gpu": frame.gpus,
        "cpu": frame.cpus,
        "memory": frame.memory,
        "chassis": frame.chassis,
        "process": frame.processes,
        "storage": frame.storage,
    }
    assert {name for name, rows in present.items() if rows is not None} == set(include)
    assert frame.source == "remote" and frame.seq is None


def test_an_unknown_section_is_refused() -> None:
    with pytest.raises(ValueError, match="gpus"):
        ClusterSimulator(SMALL).frame(T0, ("gpus",))


def test_hundred_nodes_give_800_gpus_with_unique_uuids_on_known_hosts() -> None:
    sim = ClusterSimulator(ClusterSpec(nodes=100))
    sim.advance(STEP)
    frame = sim.frame(T0, SECTIONS)
    gpus = frame.gpus or ()
    assert len(gpus) == 800 and len({g.uuid for g in gpus}) == 800
    assert len(sim.hosts) == 100 and sim.hosts[99] == "node-100"
    sections = (frame.gpus, frame.cpus, frame.memory, frame.chassis, frame.storage)
    assert all(row.host_id in sim.hosts for rows in sections for row in rows or ())
    assert all(p.host_id in sim.hosts for p in frame.processes or ())
    assert frame.hosts() == sim.hosts


def test_base_port_gives_loopback_targets_with_all_smis_hostnames() -> None:
    sim = ClusterSimulator(ClusterSpec(nodes=2, gpus_per_node=1, base_port=10001))
    assert sim.hosts == ("127.0.0.1:10001", "127.0.0.1:10002")
    gpu = (sim.frame(T0).gpus or ())[1]
    assert (gpu.host_id, gpu.hostname, gpu.instance) == (sim.hosts[1], "node-0002", "node-0002")


def test_frame_survives_the_codec_unchanged() -> None:
    incidents = (
        Incident(host_index=0, start_ms=T0, end_ms=None, kind="host_down"),
        Incident(host_index=1, start_ms=T0 - 10_000, end_ms=T0 + 10_000, kind="gpu_idle"),
    )
    sim = ClusterSimulator(attrs.evolve(SMALL, incidents=incidents))
    sim.advance(STEP)
    frame = sim.frame(T0, SECTIONS)
    assert frame.errors and frame.gpus
    assert wire.decode_line(wire.encode_line(frame), 1) == frame


# -- the spec


def test_gpu_memory_comes_from_the_names_gb_token() -> None:
    assert ClusterSpec().gpu_memory_bytes == 141 * 10**9
    assert ClusterSpec(gpu_name="NVIDIA B200 192GB HBM3").gpu_memory_bytes == 192 * 10**9
    assert gpu_memory_from_name("Tesla T4") == 24 * 10**9
    assert ClusterSpec(gpu_memory_bytes=80 * 10**9).gpu_memory_bytes == 80 * 10**9


def test_bad_specs_and_steps_are_refused() -> None:
    with pytest.raises(ValueError, match="not after"):
        Incident(host_index=0, start_ms=T0, end_ms=T0, kind="gpu_idle")
    with pytest.raises(ValueError, match="incident on host 3"):
        ClusterSpec(nodes=3, incidents=(Incident(3, T0, None, "host_down"),))
    with pytest.raises(ValueError, match="ports"):
        ClusterSpec(nodes=10, base_port=65530)
    with pytest.raises(ValueError, match="dt_ms"):
        ClusterSimulator(SMALL).advance(-1)
