"""Event detection (src/allsmi/domain/events.py) as plain data: every kind, noise that must
not fire, flapping, alternating error texts, all-smi's sentinels and failed hosts shown only
as missing rows, and the demo incident."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from allsmi.adapters.simulation.simulator import ClusterSimulator
from allsmi.app.demo import (
    DEMO_INCLUDE,
    DEMO_INTERVAL_MS,
    DEMO_LENGTH_MS,
    DEMO_START_MS,
    INCIDENT_AT_MS,
    INCIDENT_LENGTH_MS,
    demo_spec,
)
from allsmi.domain.events import (
    THRESHOLDS,
    Detector,
    Event,
    detect,
    error_kind,
    stops,
)
from allsmi.domain.model import Cpu, Frame, Gpu, Header

T0 = 1_776_513_600_000
S = 1000  # the interval of these frames, ms
H1, H2 = "n1:9090", "n2:9090"


def gpu(host: str = H1, index: int = 0, **readings: Any) -> Gpu:
    return Gpu(
        f"GPU-{host}-{index}",
        "H100",
        "GPU",
        host,
        host,
        host,
        detail={"index": str(index)},
        **readings,
    )


def cpu(host: str) -> Cpu:
    return Cpu(host, host, host, utilization=10.0)


def frame(t: int, *gpus: Gpu, hosts: tuple[str, ...] = (), errors: tuple[str, ...] = ()) -> Frame:
    """A frame at ``T0 + t`` seconds with ``gpus`` and a CPU row for each of ``hosts``."""
    return Frame(
        t_ms=T0 + t * S,
        gpus=gpus,
        cpus=tuple(cpu(h) for h in hosts),
        errors=errors,
    )


def kinds(events: list[Event]) -> list[tuple[int, str | None, str | None, str]]:
    """(seconds after T0, host, GPU, kind) of each event."""
    return [((e.t_ms - T0) // S, e.host, e.gpu, e.kind) for e in events]


# --- hosts ------------------------------------------------------------------------------------


def test_a_host_lost_from_missing_rows_alone_and_back_as_in_all_smi_files() -> None:
    frames = [frame(t, hosts=(H1, H2) if not 20 <= t < 40 else (H1,)) for t in range(60)]

    events = detect(frames, interval_ms=S)

    assert kinds(events) == [(20, H2, None, "host-lost"), (40, H2, None, "host-back")]
    assert events[1].message == "host reporting again after 20s"


def test_an_error_naming_a_host_makes_it_lost_and_is_an_errors_event() -> None:
    frames = [
        frame(t, hosts=(H1, H2))
        if t < 5
        else frame(t, hosts=(H1,), errors=(f"https://{H2}: timeout after 5s",))
        for t in range(10)
    ]

    events = detect(frames, expected_hosts=(H1, H2), interval_ms=S)

    assert kinds(events) == [(5, H2, None, "errors"), (5, H2, None, "host-lost")]
    assert events[0].message == f"errors: timeout (https://{H2}: timeout after 5s)"


def test_a_host_that_never_reported_is_not_lost_but_its_errors_are_events() -> None:
    frames = [frame(t, hosts=(H1,), errors=(f"{H2}: connection refused",)) for t in range(5)]

    events = detect(frames, expected_hosts=(H1, H2), interval_ms=S)

    assert kinds(events) == [(0, H2, None, "errors")]


def test_a_frame_that_collected_no_host_section_says_nothing_about_hosts() -> None:
    damaged = Frame(t_ms=T0 + 5 * S, errors=("line 6: not JSON",))
    frames = [frame(t, hosts=(H1,)) for t in range(5)] + [damaged]
    frames += [frame(t, hosts=(H1,)) for t in range(6, 10)]

    events = detect(frames, interval_ms=S)

    assert [e.kind for e in events if e.host == H1] == []


def test_a_flapping_host_gives_one_pair_then_one_flapping_event_until_it_holds() -> None:
    # Up on even seconds, down on odd ones for 40 s; then down for good.
    frames = [frame(t, hosts=(H1, H2) if t % 2 == 0 and t < 40 else (H1,)) for t in range(80)]

    events = detect(frames, interval_ms=S)

    flap = THRESHOLDS.flap_intervals
    assert kinds(events) == [
        (1, H2, None, "host-lost"),
        (2, H2, None, "host-back"),
        (3, H2, None, "flapping"),
        (39, H2, None, "host-lost"),  # where it settled, once it held for flap_intervals
    ]
    assert 39 + flap < 80


def test_a_host_that_settles_up_after_flapping_says_nothing_more() -> None:
    frames = [frame(t, hosts=(H1, H2) if t % 2 == 0 or t >= 20 else (H1,)) for t in range(60)]

    events = detect(frames, interval_ms=S)

    assert [e.kind for e in events] == ["host-lost", "host-back", "flapping"]


def test_lost_and_back_further_apart_than_the_flapping_window_are_pairs() -> None:
    up = {t for t in range(60) if t not in (5, 30)}
    frames = [frame(t, hosts=(H1, H2) if t in up else (H1,)) for t in range(60)]

    events = detect(frames, interval_ms=S)

    assert [e.kind for e in events] == ["host-lost", "host-back", "host-lost", "host-back"]


# --- errors -----------------------------------------------------------------------------------


def test_alternating_error_texts_are_one_event_per_kind_and_cleared_once() -> None:
    texts = (f"{H2}: timeout after 5s", f"{H2}: HTTP 503", f"{H2}: timeout after 4s")
    frames = [frame(t, hosts=(H1,), errors=(texts[t % 3],)) for t in range(20)]
    frames += [frame(t, hosts=(H1, H2)) for t in range(20, 30)]

    events = detect(frames, expected_hosts=(H1, H2), interval_ms=S)

    assert kinds(events) == [
        (0, H2, None, "errors"),
        (1, H2, None, "errors"),
        (20, H2, None, "errors-cleared"),
    ]
    assert [e.message for e in events] == [
        f"errors: timeout ({texts[0]})",
        f"errors: HTTP 503 ({texts[1]})",
        "errors cleared: HTTP 503, timeout",
    ]


def test_errors_that_come_and_go_within_the_clear_window_are_not_cleared() -> None:
    frames = [
        frame(t, hosts=(H1,), errors=("nvidia: GPU 0: Unknown Error",) if t % 3 == 0 else ())
        for t in range(20)
    ]

    events = detect(frames, interval_ms=S)

    assert kinds(events) == [(0, None, None, "errors")]
    assert events[0].message == "errors: NVML UNKNOWN (nvidia: GPU 0: Unknown Error)"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("n1:9090: timeout after 5s", "timeout"),
        ("n1:9090: no answer within 2s", "timeout"),
        ("n1:9090: connection refused", "refused"),
        ("n1:9090: HTTP 503", "HTTP 503"),
        ("n1:9090: HTTP 401 (token missing or wrong)", "HTTP 401"),
        ("nvidia: GPU 3: GPU is lost", "NVML GPU_IS_LOST"),
        ("nvidia: Driver Not Loaded", "NVML DRIVER_NOT_LOADED"),
        ("nvidia: NVML Error with code 42", "NVML 42"),
        ("nvidia: NVML_ERROR_TIMEOUT", "NVML TIMEOUT"),
        ("n1:9090: invalid /snapshot (not a JSON object)", "parse"),
        ("n1:9090: TLS failed (bad certificate)", "other"),
    ],
)
def test_error_kinds(text: str, kind: str) -> None:
    assert error_kind(text) == kind


# --- utilization ------------------------------------------------------------------------------


def util_frames(readings: Sequence[float | None], used: int = 60, total: int = 80) -> list[Frame]:
    return [
        frame(t, gpu(utilization=u, used_memory=used, total_memory=total), hosts=(H1,))
        for t, u in enumerate(readings)
    ]


def test_util_drop_is_stamped_at_its_onset_and_notes_memory_still_allocated() -> None:
    readings = [90.0] * 10 + [2.0] * 40 + [85.0] * 5

    events = detect(util_frames(readings), interval_ms=S)

    assert kinds(events) == [(10, H1, "0", "util-drop"), (50, H1, "0", "util-back")]
    assert events[0].message == "utilization: 90%->2%, idle but allocated (memory 75%)"
    assert events[1].message == "utilization: back to 85% after 40s"


def test_util_drop_is_confirmed_by_the_frame_thirty_seconds_after_its_onset() -> None:
    detector = Detector(interval_ms=S)
    frames = util_frames([90.0] * 10 + [2.0] * 31)

    confirmed = [(f.t_ms, detector.feed(f)) for f in frames]

    fired = [(t, events) for t, events in confirmed if events]
    assert len(fired) == 1
    t_confirmed, events = fired[0]
    assert (t_confirmed - T0) // S == 10 + THRESHOLDS.util_idle_ms // S
    assert kinds(events) == [(10, H1, "0", "util-drop")]


def test_util_drop_with_memory_freed_says_so() -> None:
    events = detect(util_frames([90.0] * 5 + [0.0] * 35, used=1, total=80), interval_ms=S)

    assert events[0].message == "utilization: 90%->0%, memory freed"


@pytest.mark.parametrize(
    "readings",
    [
        [90.0] * 5 + [2.0] * 29 + [90.0] * 5,  # idle less than 30 s
        [3.0, 5.0, 0.0, 4.0] * 20,  # never busy: idle noise
        [35.0, 10.0, 28.0, 6.0] * 20,  # busy noise that never reaches idle
        [90.0] * 5 + [2.0, 2.0, 8.0] * 20,  # idle windows broken every 3 s
    ],
)
def test_util_noise_that_does_not_hold_yields_no_events(readings: Sequence[float | None]) -> None:
    assert detect(util_frames(readings), interval_ms=S) == []


def test_missing_util_readings_neither_extend_nor_break_the_window() -> None:
    # Idle at 10 s, unknown (None, all-smi's −1) for 30 s, idle again at 40 s: confirmed.
    readings: list[float | None] = [90.0] * 10 + [2.0] + [None, -1.0] * 15 + [2.0] + [90.0]
    assert kinds(detect(util_frames(readings), interval_ms=S))[0] == (10, H1, "0", "util-drop")
    # Idle for 20 s, then only unknown readings until busy again: not extended by them.
    assert detect(util_frames([90.0] * 10 + [2.0] * 20 + [-1.0] * 30 + [90.0]), interval_ms=S) == []


# --- all-smi's files ------------------------------------------------------------------------


def test_all_smi_sentinels_are_no_reading_not_a_drop() -> None:
    busy: dict[str, Any] = dict(utilization=90.0, power_consumption=500.0, temperature=60)
    sentinel: dict[str, Any] = dict(
        utilization=-1.0,
        power_consumption=0.0,
        temperature=0,
        used_memory=0,
        total_memory=0,
        temperature_threshold_slowdown=0,
        temperature_threshold_shutdown=0,
    )
    frames = [
        frame(t, *(gpu(index=i, **(busy if t < 10 else sentinel)) for i in range(8)))
        for t in range(60)
    ]

    assert detect(frames) == []


# --- temperature ----------------------------------------------------------------------------


def temp_frames(readings: Sequence[int | None]) -> list[Frame]:
    return [
        frame(
            t,
            gpu(
                temperature=te,
                temperature_threshold_slowdown=87,
                temperature_threshold_shutdown=95,
            ),
        )
        for t, te in enumerate(readings)
    ]


def test_temperature_levels_as_all_smi_alerts() -> None:
    events = detect(temp_frames([70, 82, 87, 93, 70]))

    assert kinds(events) == [
        (1, H1, "0", "temp-warn"),
        (2, H1, "0", "temp-slowdown"),
        (3, H1, "0", "temp-crit"),
        (4, H1, "0", "temp-ok"),
    ]
    assert [e.message for e in events] == [
        "temperature: ok->warn (82C / thr 87C)",
        "temperature: warn->slowdown (87C / thr 87C)",
        "temperature: slowdown->crit (93C / thr 95C)",
        "temperature: crit->ok (70C / thr 87C)",
    ]


def test_temperature_noise_below_warn_or_within_hysteresis_yields_no_events() -> None:
    assert detect(temp_frames([70, 81, 75, 81, None, 0, -1, 80] * 5)) == []
    # Warn entered once; 81 and 80 are within the hysteresis below warn (82).
    events = detect(temp_frames([82, 81, 80, 82, 81, 79]))
    assert [e.kind for e in events] == ["temp-warn", "temp-ok"]
    assert kinds(events)[1][0] == 5


# --- power ------------------------------------------------------------------------------------


def power_frames(per_gpu: Sequence[float | None], gpus: int = 8) -> list[Frame]:
    return [
        frame(t, *(gpu(index=i, power_consumption=w) for i in range(gpus)))
        for t, w in enumerate(per_gpu)
    ]


def test_power_drop_of_a_host() -> None:
    events = detect(power_frames([500.0] * 10 + [480.0, 300.0, 90.0] + [90.0] * 40))

    # Stamped at the first frame past the thresholds (11), told to its lowest (12).
    assert kinds(events) == [(11, H1, None, "power-drop")]
    assert events[0].message == "power: 4,000W->720W within 3s (8 GPUs)"


@pytest.mark.parametrize(
    "per_gpu",
    [
        [500.0, 450.0, 550.0, 470.0] * 20,  # ±10 % noise
        [100.0] * 10 + [55.0] * 20,  # 45 % but 45 W per GPU
        [500.0 * 0.985**t for t in range(90)],  # a slow fall: 36 % in any 30 s
    ],
)
def test_power_noise_and_small_or_slow_falls_are_not_drops(per_gpu: Sequence[float | None]) -> None:
    assert detect(power_frames(per_gpu)) == []


def test_a_power_drop_still_falling_at_the_end_is_answered_by_finish() -> None:
    detector = Detector()
    answers = [detector.feed(f) for f in power_frames([500.0] * 5 + [300.0, 200.0, 100.0])]

    assert answers == [[]] * 8
    assert kinds(detector.finish()) == [(5, H1, None, "power-drop")]


def test_a_gpu_whose_power_goes_missing_is_not_a_drop() -> None:
    frames = power_frames([500.0] * 10, gpus=8) + [
        frame(t, *(gpu(index=i, power_consumption=500.0) for i in range(2))) for t in range(10, 40)
    ]

    assert detect(frames) == []


# --- gaps and restarts ------------------------------------------------------------------------


def test_a_gap_over_twice_the_interval_is_stamped_at_the_frame_before() -> None:
    times = [0, 1, 2, 3, 10, 11, 12]

    events = detect([frame(t, hosts=(H1,)) for t in times], interval_ms=S)

    assert kinds(events) == [(3, None, None, "gap")]
    assert events[0].message == "gap: no frame for 7s"


def test_gaps_less_than_a_minute_apart_are_one_event() -> None:
    missing = {*range(3, 10), *range(20, 50), *range(200, 230)}
    times = [t for t in range(260) if t not in missing]

    events = detect([frame(t, hosts=(H1,)) for t in times], interval_ms=S)

    # 2→10 and 19→50 are 9 s apart: one event; 199→230 is 149 s after 50: another.
    assert kinds(events) == [(2, None, None, "gap"), (199, None, None, "gap")]
    assert events[0].message == "gaps: 2 within 48s (longest 31s without a frame)"
    assert events[1].message == "gap: no frame for 31s"


def test_twice_the_interval_exactly_is_no_gap_and_without_a_header_the_median_rules() -> None:
    assert detect([frame(t, hosts=(H1,)) for t in (0, 1, 3, 5)], interval_ms=S) == []
    times = [0, 5, 10, 15, 20, 45, 50]  # 5 s spacing, no interval given
    assert kinds(detect([frame(t, hosts=(H1,)) for t in times])) == [(20, None, None, "gap")]


def test_a_pending_gap_is_answered_by_a_later_frame_or_by_finish() -> None:
    detector = Detector(interval_ms=S)
    assert [detector.feed(frame(t, hosts=(H1,))) for t in (0, 1, 20, 21)] == [[], [], [], []]
    assert kinds(detector.finish()) == [(1, None, None, "gap")]
    detector = Detector(interval_ms=S)
    times = [0, 1, *range(20, 90)]
    answers = {t: detector.feed(frame(t, hosts=(H1,))) for t in times}
    # The gap ends at 20: no later gap can start within a minute of it once 80 is here.
    assert [t for t, events in answers.items() if events] == [80]
    assert kinds(answers[80]) == [(1, None, None, "gap")]
    assert detector.finish() == []


def test_restart_when_the_recorder_start_time_changes() -> None:
    detector = Detector()

    assert detector.restarted(T0) == []
    assert detector.restarted(T0) == []
    assert detector.restarted(T0 + 60 * S) == [
        Event(T0 + 60 * S, None, None, "restart", "recorder restarted")
    ]


def segments_of(*starts: int | None) -> list[Event]:
    """One detector over segments of 10 frames each, each begun with a header naming
    ``starts[i]`` as its recorder start time (None: a header without it)."""
    detector = Detector(expected_hosts=(H1,), interval_ms=S)
    out: list[Event] = []
    for i, start in enumerate(starts):
        out += detector.segment(Header(hosts=(H1,), interval_ms=S, started_ms=start))
        for t in range(i * 10, i * 10 + 10):
            out += detector.feed(frame(t, hosts=(H1,)))
    return out + detector.finish()


def test_a_segment_with_a_new_recorder_start_time_is_a_restart() -> None:
    restarted_at = T0 + 19 * S + 500  # the second run began between its frames 19 and 20

    events = segments_of(T0, T0, restarted_at)

    assert events == [Event(restarted_at, None, None, "restart", "recorder restarted")]


def test_segments_of_one_run_rotated_share_the_start_time_and_are_no_restart() -> None:
    assert segments_of(T0, T0, T0, T0) == []


def test_headers_without_a_start_time_keep_the_old_rule_no_restart() -> None:
    assert segments_of(None, None, None) == []
    # An older recorder's segment between two of one run says nothing, and forgets nothing.
    assert segments_of(T0, None, T0) == []
    assert kinds(segments_of(None, T0, None, T0 + 25 * S)) == [(25, None, None, "restart")]


# --- one detector, many frames ----------------------------------------------------------------


def test_each_answer_is_ordered_by_time() -> None:
    detector = Detector(interval_ms=S)
    frames = [
        frame(
            t,
            gpu(
                utilization=90.0 if t < 5 else 2.0,
                temperature=90 if t == 35 else 60,
                temperature_threshold_slowdown=87,
            ),
            hosts=(H1,),
        )
        for t in range(36)
    ]
    answers = [detector.feed(f) for f in frames]

    assert kinds(answers[-1]) == [(5, H1, "0", "util-drop"), (35, H1, "0", "temp-slowdown")]


# --- the demo incident ------------------------------------------------------------------------


def test_the_demo_incident_is_found() -> None:
    spec = demo_spec()
    sim = ClusterSimulator(spec)
    detector = Detector(sim.hosts, DEMO_INTERVAL_MS)
    events: list[Event] = []
    for at in range(0, DEMO_LENGTH_MS, DEMO_INTERVAL_MS):
        if at:
            sim.advance(DEMO_INTERVAL_MS)
        events += detector.feed(sim.frame(DEMO_START_MS + at, DEMO_INCLUDE))
    events += detector.finish()
    node = spec.host_id(2)
    onset = DEMO_START_MS + INCIDENT_AT_MS
    end = onset + INCIDENT_LENGTH_MS

    drops = [e for e in events if e.host == node and e.kind == "util-drop"]
    assert sorted(e.gpu or "" for e in drops) == [str(i) for i in range(8)]
    assert all(abs(e.t_ms - onset) <= DEMO_INTERVAL_MS for e in drops)
    assert all("idle but allocated" in e.message for e in drops)
    power = [e for e in events if e.host == node and e.kind == "power-drop"]
    assert len(power) == 1
    assert onset <= power[0].t_ms <= onset + THRESHOLDS.power_window_ms
    backs = [e for e in events if e.host == node and e.kind == "util-back"]
    assert sorted(e.gpu or "" for e in backs) == [str(i) for i in range(8)]
    assert all(end <= e.t_ms <= end + 60_000 for e in backs)


def test_stops_are_one_per_event_time_and_name_what_happened_there() -> None:
    first = 1_776_513_600_000
    events = [
        Event(first + 5000, "n3:9000", "0", "util-drop", "utilization: 80%->0%"),
        Event(first + 5000, "n3:9000", "1", "util-drop", "utilization: 75%->0%"),
        Event(first + 5000, "n3:9000", None, "power-drop", "power: 1,200W->200W"),
        Event(first + 9000, None, None, "gap", "no frame for 12s"),
        Event(first + 2000, "n1:9000", "3", "temp-warn", "temperature: ok->warn (82C / thr 87C)"),
    ]
    assert stops(events, first, {"n3:9000": "node-03"}) == (
        (2000, "n1:9000 GPU3: temp-warn: temperature: ok->warn (82C / thr 87C)"),
        (5000, "node-03: power-drop, util-drop ×2"),
        (9000, "recording: gap: no frame for 12s"),
    )
    assert stops([], first) == ()
