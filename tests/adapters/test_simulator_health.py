"""The simulator's GPU health signals (docs/recording-format.md §5.3.3): off, nothing changes;
on, the other readings are those of the same spec without health; a throttle episode and an
XID show exactly when and where they were set."""

from __future__ import annotations

from typing import Final

import attrs
import pytest

from allsmi.adapters import wire
from allsmi.adapters.simulation.simulator import ClusterSimulator, ClusterSpec, Incident
from allsmi.domain.model import SECTIONS, Frame, Gpu, GpuHealth

T0: Final = 1_776_513_600_000
STEP: Final = 1000
SPEC: Final = ClusterSpec(nodes=3, gpus_per_node=4, seed=7)


def gpus_at(sim: ClusterSimulator, t_ms: int, host: int = 0) -> tuple[Gpu, ...]:
    reading = sim.node_frame_parts(host, t_ms)
    assert reading is not None
    return reading.gpus


def health(gpu: Gpu) -> GpuHealth:
    assert gpu.health is not None
    return gpu.health


def frames(spec: ClusterSpec, steps: int) -> list[Frame]:
    sim, out = ClusterSimulator(spec), []
    for k in range(steps):
        out.append(sim.frame(T0 + k * STEP, SECTIONS))
        sim.advance(STEP)
    return out


def without_health(frame: Frame) -> Frame:
    return attrs.evolve(frame, gpus=tuple(attrs.evolve(g, health=None) for g in frame.gpus or ()))


def test_health_is_off_by_default_and_writes_nothing() -> None:
    assert SPEC.health is False
    for frame in frames(SPEC, 20):
        assert all(g.health is None for g in frame.gpus or ())
        assert b'"health"' not in wire.encode_line(frame)
    explicit = frames(attrs.evolve(SPEC, health=False), 20)
    assert [wire.encode_line(f) for f in explicit] == [
        wire.encode_line(f) for f in frames(SPEC, 20)
    ]


def test_health_on_leaves_every_other_reading_as_without_it() -> None:
    plain = frames(SPEC, 200)
    with_health = frames(attrs.evolve(SPEC, health=True), 200)
    assert all(g.health is not None for f in with_health for g in f.gpus or ())
    assert [without_health(f) for f in with_health] == plain


def test_healthy_gpus_read_zero_errors_and_no_xids() -> None:
    for frame in frames(attrs.evolve(SPEC, health=True), 30):
        for gpu in frame.gpus or ():
            h = health(gpu)
            assert (h.ecc_corrected, h.ecc_uncorrected, h.pcie_replays) == (0, 0, 0)
            assert (h.remapped_correctable, h.remapped_uncorrectable) == (0, 0)
            assert (h.remap_pending, h.remap_failure) == (False, False)
            assert h.xid_counts == {} and h.last_xid is None and h.last_xid_ms is None
            assert h.thermal_violation_us == 0
            assert h.sm_clock_mhz == gpu.frequency and h.memory_clock_mhz
            assert (h.pcie_rx_bytes_s or 0) > (h.pcie_tx_bytes_s or 0) > 0
            assert not {"hw_slowdown", "sw_thermal"} & set(h.clock_events or ())


def test_energy_integrates_the_power_shown_between_readings() -> None:
    sim = ClusterSimulator(attrs.evolve(SPEC, health=True))
    previous = gpus_at(sim, T0)
    for k in range(1, 30):
        sim.advance(STEP)
        now = gpus_at(sim, T0 + k * STEP)
        for old, new in zip(previous, now, strict=True):
            grown = (health(new).energy_j or 0.0) - (health(old).energy_j or 0.0)
            assert grown == pytest.approx((new.power_consumption or 0.0) * STEP / 1000, abs=0.01)
        previous = now
    again = gpus_at(sim, T0 + 29 * STEP)  # the same instant read twice counts nothing twice
    assert [health(g).energy_j for g in again] == [health(g).energy_j for g in previous]


def test_sw_power_cap_is_transient_at_full_load_and_idle_gpus_say_gpu_idle() -> None:
    idle = Incident(host_index=1, start_ms=T0 + 600_000, end_ms=T0 + 900_000, kind="gpu_idle")
    spec = ClusterSpec(nodes=2, gpus_per_node=8, seed=11, health=True, incidents=(idle,))
    sim = ClusterSimulator(spec)
    capped_steps, longest, runs = 0, 0, [0] * 16
    for k in range(1200):
        t = T0 + k * STEP
        rows = gpus_at(sim, t, 0) + gpus_at(sim, t, 1)
        for i, gpu in enumerate(rows):
            events = health(gpu).clock_events or ()
            if "sw_power_cap" in events:
                assert (gpu.power_consumption or 0.0) >= 0.97 * (gpu.power_limit or 0.0)
                capped_steps += 1
                runs[i] += 1
                longest = max(longest, runs[i])
            else:
                runs[i] = 0
            idle_now = i >= 8 and T0 + 600_000 <= t < T0 + 900_000
            assert ("gpu_idle" in events) == ((gpu.utilization or 0.0) <= 2.0)
            if idle_now:
                assert events == ("gpu_idle",)
        sim.advance(STEP)
    assert capped_steps > 0, "sw_power_cap never shows at full load"
    assert longest < 30, "sw_power_cap held for 30 s: it must stay transient"


def test_a_throttle_episode_shows_exactly_in_its_window_on_its_gpu() -> None:
    start, end = T0 + 20_000, T0 + 50_000
    throttle = Incident(0, start, end, "throttle", gpu_index=2)
    hit = ClusterSimulator(attrs.evolve(SPEC, health=True, incidents=(throttle,)))
    calm = ClusterSimulator(attrs.evolve(SPEC, health=True))
    for k in range(80):
        t = T0 + k * STEP
        rows, base = gpus_at(hit, t), gpus_at(calm, t)
        inside = start <= t < end
        for i, (gpu, twin) in enumerate(zip(rows, base, strict=True)):
            if i != 2:
                assert gpu == twin
                continue
            events = health(gpu).clock_events or ()
            assert ("hw_slowdown" in events) == inside
            assert ("sw_thermal" in events) == inside
            spent = max(0, min(t, end) - start)
            assert health(gpu).thermal_violation_us == spent * 1000
            if inside:
                assert (gpu.utilization or 0.0) < (twin.utilization or 0.0)
                assert (gpu.power_consumption or 0.0) < (twin.power_consumption or 0.0)
                assert (health(gpu).sm_clock_mhz or 0) < (health(twin).sm_clock_mhz or 0)
                assert gpu.frequency == health(gpu).sm_clock_mhz
            else:
                assert gpu.utilization == twin.utilization
                assert gpu.power_consumption == twin.power_consumption
        hit.advance(STEP)
        calm.advance(STEP)


def test_a_throttle_without_a_gpu_takes_every_gpu_of_its_host() -> None:
    throttle = Incident(1, T0, T0 + 10_000, "throttle")
    sim = ClusterSimulator(attrs.evolve(SPEC, health=True, incidents=(throttle,)))
    assert all("hw_slowdown" in (health(g).clock_events or ()) for g in gpus_at(sim, T0, 1))
    assert not any("hw_slowdown" in (health(g).clock_events or ()) for g in gpus_at(sim, T0, 0))


def test_xids_are_counted_from_their_instant_on_their_gpu() -> None:
    first = Incident(0, T0 + 10_000, None, "xid", gpu_index=3, xid=79)
    second = Incident(0, T0 + 20_000, None, "xid", gpu_index=3, xid=13)
    third = Incident(0, T0 + 30_000, None, "xid", gpu_index=3, xid=79)
    sim = ClusterSimulator(attrs.evolve(SPEC, health=True, incidents=(third, first, second)))
    expected = {
        T0 + 9_999: ({}, None, None),
        T0 + 10_000: ({"79": 1}, 79, T0 + 10_000),
        T0 + 25_000: ({"79": 1, "13": 1}, 13, T0 + 20_000),
        T0 + 30_000: ({"79": 2, "13": 1}, 79, T0 + 30_000),
    }
    for t, (counts, last, last_ms) in expected.items():
        rows = gpus_at(sim, t)
        h = health(rows[3])
        assert (h.xid_counts, h.last_xid, h.last_xid_ms) == (counts, last, last_ms)
        assert all(health(g).xid_counts == {} for g in rows[:3])


@pytest.mark.parametrize(
    ("incident", "health_on", "message"),
    [
        (Incident(0, T0, T0 + 1, "throttle"), False, "needs health"),
        (Incident(0, T0, None, "xid", gpu_index=0, xid=79), False, "needs health"),
        (Incident(0, T0, T0 + 1, "throttle", gpu_index=4), True, "GPU 4 of 4"),
    ],
)
def test_specs_with_impossible_health_incidents_are_refused(
    incident: Incident, health_on: bool, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        attrs.evolve(SPEC, health=health_on, incidents=(incident,))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "xid", "gpu_index": 0}, "positive XID code"),
        ({"kind": "xid", "xid": 79}, "instant on one GPU"),
        ({"kind": "xid", "gpu_index": 0, "xid": 79, "end_ms": T0 + 5}, "instant on one GPU"),
        ({"kind": "gpu_idle", "xid": 79}, "has no XID code"),
        ({"kind": "host_down", "gpu_index": 1}, "whole host"),
    ],
)
def test_malformed_incidents_are_refused(kwargs: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {"host_index": 0, "start_ms": T0, "end_ms": None}
    fields.update(kwargs)
    with pytest.raises(ValueError, match=message):
        Incident(**fields)  # type: ignore[arg-type]
