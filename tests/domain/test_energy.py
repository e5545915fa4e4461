"""Energy per GPU and host (allsmi.domain.energy): live integration, R, replay from the map."""

from __future__ import annotations

from allsmi.domain.energy import EnergyMeter, format_energy, map_energy, replay_energy
from allsmi.domain.history import MapView
from allsmi.domain.model import Frame, Gpu, GpuHealth
from allsmi.domain.summary import Summary


def gpu(power: float | None, counter: float | None = None, uuid: str = "u0") -> Gpu:
    health = None if counter is None else GpuHealth(energy_j=counter)
    return Gpu(uuid, "H100", "GPU", "h1", "h1", "h1:9090", power_consumption=power,
               health=health)  # fmt: skip


def frame(t_ms: int, *gpus: Gpu) -> Frame:
    return Frame(t_ms=t_ms, gpus=gpus)


def test_power_is_integrated_by_the_trapezoid_rule() -> None:
    meter = EnergyMeter(interval_ms=1000)
    meter.feed(frame(0, gpu(100.0)))
    meter.feed(frame(1000, gpu(300.0)))
    assert meter.totals[("h1", "u0")] == (100.0 + 300.0) / 2 * 1.0


def test_a_gap_longer_than_two_intervals_is_not_integrated_across() -> None:
    meter = EnergyMeter(interval_ms=1000)
    meter.feed(frame(0, gpu(100.0)))
    meter.feed(frame(1000, gpu(100.0)))
    meter.feed(frame(3001, gpu(100.0)))  # 2.001 intervals: a gap
    meter.feed(frame(4000, gpu(100.0)))
    assert meter.totals[("h1", "u0")] == 100.0 + 100.0 * 0.999


def test_the_device_counter_is_preferred_to_power() -> None:
    meter = EnergyMeter(interval_ms=1000)
    meter.feed(frame(0, gpu(100.0, counter=5000.0)))
    meter.feed(frame(1000, gpu(100.0, counter=5250.0)))
    assert meter.totals[("h1", "u0")] == 250.0


def test_a_counter_reset_falls_back_to_power_for_that_step() -> None:
    meter = EnergyMeter(interval_ms=1000)
    meter.feed(frame(0, gpu(100.0, counter=5000.0)))
    meter.feed(frame(1000, gpu(200.0, counter=10.0)))  # the driver reloaded
    meter.feed(frame(2000, gpu(200.0, counter=60.0)))
    assert meter.totals[("h1", "u0")] == 150.0 + 50.0


def test_r_resets_the_session_only_from_the_last_frame() -> None:
    meter = EnergyMeter(interval_ms=1000)
    meter.feed(frame(0, gpu(100.0)))
    meter.feed(frame(1000, gpu(100.0)))
    meter.reset()
    assert meter.totals[("h1", "u0")] == 0.0
    meter.feed(frame(2000, gpu(300.0)))
    assert meter.energy().gpu("h1", "u0") == 200.0


def test_a_hosts_energy_is_the_sum_of_its_gpus() -> None:
    meter = EnergyMeter(interval_ms=1000)
    meter.feed(frame(0, gpu(100.0), gpu(50.0, uuid="u1")))
    meter.feed(frame(1000, gpu(100.0), gpu(50.0, uuid="u1")))
    assert meter.energy().host("h1") == 150.0
    assert meter.energy().host("other") is None


def test_energy_text_is_in_watt_hours_then_kwh() -> None:
    assert format_energy(7_200.0) == "2Wh"
    assert format_energy(3600.0 * 999.4) == "999Wh"
    assert format_energy(3600.0 * 1000) == "1.00kWh"
    assert format_energy(3_600_000.0 * 1000 * 2.5) == "2.50MWh"
    assert format_energy(3_600_000.0 * 12.345) == "12.35kWh"
    assert format_energy(None) == "N/A"


def recorded(powers: list[float | None], start: int = 5_000, step: int = 1000) -> list[Frame]:
    return [frame(start + i * step, gpu(p)) for i, p in enumerate(powers)]


def test_replay_energy_from_the_map_equals_the_rectangle_rule_over_the_frames() -> None:
    powers: list[float | None] = [100.4, 200.0, None, 150.6, 300.0] * 7  # across 4 buckets
    frames = recorded(powers)
    summary = Summary.of(frames, interval_ms=1000)
    at = 22  # the frame on screen, inside a bucket
    shown = frames[at]
    width = summary.width_ms
    partial = Summary.of(
        [f for f in frames[: at + 1] if f.t_ms // width == shown.t_ms // width], interval_ms=1000
    )
    view = MapView(summary, shown.t_ms, partial)
    expected = sum(round(p) * 1.0 for p in powers[: at + 1] if p is not None)
    assert map_energy(view)[("h1", "u0")] == expected


def test_replay_prefers_the_counter_difference_from_the_first_frame() -> None:
    frames = [frame(5000, gpu(100.0, counter=1000.0)), frame(6000, gpu(100.0, counter=1300.0))]
    view = MapView(Summary.of(frames, interval_ms=1000), 6000)
    energy = replay_energy(view, frames[0], frames[1])
    assert energy.gpu("h1", "u0") == 300.0


def test_the_gpu_row_shows_energy_at_200_columns_not_at_80() -> None:
    from allsmi.domain.energy import Energy
    from allsmi.domain.screen import Status, ViewState, render

    shown = frame(1000, gpu(100.0))
    status = Status(energy=Energy({("h1", "u0"): 3_600_000.0 * 2}, "view start"))
    wide = "\n".join("".join(s.text for s in line) for line in
                     render(shown, ViewState(), 200, 24, status))  # fmt: skip
    narrow = "\n".join("".join(s.text for s in line) for line in
                       render(shown, ViewState(), 80, 24, status))  # fmt: skip
    assert "2.00kWh" in wide and "2.00kWh" not in narrow


def test_the_all_tabs_host_rows_show_each_hosts_energy() -> None:
    from allsmi.domain.energy import Energy
    from allsmi.domain.screen import Status, ViewState, render

    other = Gpu("v0", "H100", "GPU", "h2", "h2", "h2:9090", power_consumption=10.0)
    shown = frame(1000, gpu(100.0), other)
    status = Status(energy=Energy({("h1", "u0"): 3_600_000.0, ("h2", "v0"): 7_200_000.0}, "x"))
    text = "\n".join("".join(s.text for s in line) for line in
                     render(shown, ViewState(), 120, 40, status))  # fmt: skip
    rows = [line for line in text.splitlines() if line.startswith(("h1 ", "h2 ", "HOST"))]
    assert any("Energy" in r for r in rows)
    assert any(r.startswith("h1 ") and "1.00kWh" in r for r in rows)
    assert any(r.startswith("h2 ") and "2.00kWh" in r for r in rows)


def test_the_kept_map_sums_answer_as_a_fresh_sum_forward_back_and_after_the_map_grew() -> None:
    from allsmi.domain.energy import MapEnergy

    powers: list[float | None] = [100.4, 200.0, None, 150.6, 300.0] * 12  # across 6 buckets
    frames = recorded(powers)
    width = Summary.of(frames[:1]).width_ms

    def view_at(summary: Summary, at: int) -> MapView:
        shown = frames[at]
        bucket = [f for f in frames[: at + 1] if f.t_ms // width == shown.t_ms // width]
        return MapView(summary, shown.t_ms, Summary.of(bucket, interval_ms=1000))

    kept = MapEnergy()
    half = Summary.of(frames[:30], interval_ms=1000)  # the background pass, half way
    for at in (3, 12, 25, 8, 29):  # forward, then back
        assert kept.joules(view_at(half, at)) == map_energy(view_at(half, at))
    whole = Summary.of(frames, interval_ms=1000)  # ...and done
    for at in (29, 41, 59, 0, 59):
        assert kept.joules(view_at(whole, at)) == map_energy(view_at(whole, at))
        expected = sum(round(p) for p in powers[: at + 1] if p is not None)
        assert kept.joules(view_at(whole, at))[("h1", "u0")] == expected
