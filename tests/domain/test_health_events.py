"""GPU health events (src/allsmi/domain/events.py: ``throttle``/``throttle-end``, ``xid``,
``ecc``, ``remap``; docs/recording-format.md §5.3.3) as plain data: onsets and ends, the SW
power cap counted only once held, counters that restart, unknown readings, dcgm-exporter's
last-XID gauge, and the state of a GPU that disappears."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from allsmi.domain.events import (
    KINDS,
    THRESHOLDS,
    Detector,
    Event,
    GpuReading,
    detect,
)
from allsmi.domain.model import Cpu, Frame, Gpu, GpuHealth

T0 = 1_776_513_600_000
S = 1000  # the interval of these frames, ms
H1 = "n1:9090"
CAP_S = THRESHOLDS.throttle_power_cap_ms // S


def gpu(health: GpuHealth | None, index: int = 0, host: str = H1) -> Gpu:
    return Gpu(
        f"GPU-{host}-{index}", "H100", "GPU", host, host, host,
        detail={"index": str(index)}, health=health,
    )  # fmt: skip


def frame(t: int, *gpus: Gpu) -> Frame:
    """A frame at ``T0 + t`` seconds with ``gpus`` and a CPU row of their host."""
    return Frame(t_ms=T0 + t * S, gpus=gpus, cpus=(Cpu(H1, H1, H1),))


def run(healths: Sequence[GpuHealth | None]) -> list[Event]:
    """One GPU read with ``healths[t]`` at second ``t``."""
    return detect([frame(t, gpu(h)) for t, h in enumerate(healths)], interval_ms=S)


def said(events: list[Event]) -> list[tuple[int, str, str]]:
    """(seconds after T0, kind, message) of each event."""
    return [((e.t_ms - T0) // S, e.kind, e.message) for e in events]


def clocks(*reasons: str) -> GpuHealth:
    return GpuHealth(clock_events=reasons)


def health(**fields: Any) -> GpuHealth:
    return GpuHealth(**fields)


def test_the_new_kinds_are_in_the_table() -> None:
    assert {"throttle", "throttle-end", "xid", "ecc", "remap"} <= set(KINDS)


# --------------------------------------------------------------------------- throttle


def test_a_serious_reason_is_a_throttle_at_its_first_frame_and_ends() -> None:
    healths = [clocks()] * 3 + [clocks("hw_slowdown", "sw_thermal")] * 4 + [clocks()] * 3

    events = run(healths)

    assert said(events) == [
        (3, "throttle", "throttled: HW slowdown, SW thermal"),
        (7, "throttle-end", "throttle ended after 4s"),
    ]
    assert events[0].gpu == "0" and events[0].host == H1


@pytest.mark.parametrize(
    ("reason", "name"),
    [
        ("hw_thermal", "HW thermal"),
        ("hw_power_brake", "HW power brake"),
        ("sw_thermal", "SW thermal"),
    ],
)
def test_each_serious_reason_counts_at_once(reason: str, name: str) -> None:
    assert said(run([clocks(), clocks(reason)])) == [(1, "throttle", f"throttled: {name}")]


def test_the_harmless_reasons_never_throttle() -> None:
    harmless = clocks("gpu_idle", "applications_clocks", "sync_boost", "display_clock")

    assert run([clocks(), *[harmless] * 100, clocks()]) == []


def test_a_first_reading_throttled_is_a_throttle() -> None:
    assert said(run([clocks("hw_slowdown")])) == [(0, "throttle", "throttled: HW slowdown")]


def test_a_sw_power_cap_shorter_than_the_threshold_is_nothing() -> None:
    healths = [clocks()] + [clocks("sw_power_cap")] * CAP_S + [clocks()] * 5

    assert run(healths) == []  # read at seconds 1..30: held 29 s


def test_a_sw_power_cap_held_is_a_throttle_stamped_at_its_onset() -> None:
    healths = [clocks()] * 2 + [clocks("sw_power_cap")] * (CAP_S + 1) + [clocks()]

    events = run(healths)

    assert said(events) == [
        (2, "throttle", "throttled: SW power cap"),
        (2 + CAP_S + 1, "throttle-end", f"throttle ended after {CAP_S + 1}s"),
    ]


def test_a_sw_power_cap_held_is_found_when_its_frame_is_fed() -> None:
    """The frame that confirms it answers it, stamped at the onset (before that frame)."""
    detector = Detector(interval_ms=S)
    answers = [detector.feed(frame(t, gpu(clocks("sw_power_cap")))) for t in range(CAP_S + 1)]

    assert all(a == [] for a in answers[:CAP_S])
    assert said(answers[CAP_S]) == [(0, "throttle", "throttled: SW power cap")]


def test_a_reason_joining_an_open_throttle_is_no_new_event() -> None:
    healths = [clocks("sw_thermal"), clocks("sw_thermal", "hw_slowdown"), clocks()]

    assert [e.kind for e in run(healths)] == ["throttle", "throttle-end"]


def test_a_cap_through_a_throttle_is_held_from_its_end() -> None:
    """The cap read through an HW slowdown counts from the slowdown's end: no throttle
    stamped before the throttle-end."""
    healths = (
        [clocks("sw_power_cap", "hw_slowdown")] * 5
        + [clocks("sw_power_cap")] * (CAP_S + 1)
        + [clocks()]
    )

    events = run(healths)

    assert said(events) == [
        (0, "throttle", "throttled: HW slowdown"),
        (5, "throttle-end", "throttle ended after 5s"),
        (5, "throttle", "throttled: SW power cap"),
        (5 + CAP_S + 1, "throttle-end", f"throttle ended after {CAP_S + 1}s"),
    ]


def test_unknown_clock_reasons_neither_start_nor_end_a_throttle() -> None:
    healths: list[GpuHealth | None] = [
        clocks("hw_slowdown"),
        None,
        GpuHealth(),
        clocks("hw_slowdown"),
        None,
        clocks(),
    ]

    assert said(run(healths)) == [
        (0, "throttle", "throttled: HW slowdown"),
        (5, "throttle-end", "throttle ended after 5s"),
    ]


# --------------------------------------------------------------------------- xid


def test_an_xid_count_that_grows_is_one_event_per_new_xid() -> None:
    healths = [
        health(xid_counts={}),
        health(xid_counts={"79": 1}),
        health(xid_counts={"79": 1}),  # the same count again: nothing
        health(xid_counts={"79": 1}),
        health(xid_counts={"79": 3, "13": 1, "7": 1}),
    ]

    assert said(run(healths)) == [
        (1, "xid", "XID 79 (GPU has fallen off the bus)"),
        (4, "xid", "XID 7"),
        (4, "xid", "XID 13 (graphics engine exception)"),
        (4, "xid", "XID 79 ×2 (GPU has fallen off the bus)"),
    ]


def test_xid_counts_at_the_first_reading_are_the_baseline() -> None:
    assert run([health(xid_counts={"79": 2}), health(xid_counts={"79": 2})]) == []


def test_xid_counts_that_restart_are_no_event() -> None:
    healths = [
        health(xid_counts={"79": 5, "13": 1}),
        health(xid_counts={"13": 1}),  # 79 gone: a new recorder
        health(xid_counts={"79": 1, "13": 1}),
    ]

    assert said(run(healths)) == [(2, "xid", "XID 79 (GPU has fallen off the bus)")]


def test_dcgm_last_xid_changing_is_an_event() -> None:
    """dcgm-exporter: no counts, the last XID's gauge (0 before any); a repeat of the same
    code with a later time is seen, the same reading again is not."""
    healths = [
        health(last_xid=0),
        health(last_xid=0),
        health(last_xid=48, last_xid_ms=T0 + 2 * S),
        health(last_xid=48, last_xid_ms=T0 + 2 * S),
        health(last_xid=79, last_xid_ms=T0 + 4 * S),
        health(last_xid=79, last_xid_ms=T0 + 5 * S),
        health(last_xid=79),  # the time unread: the same code is no news
    ]

    assert said(run(healths)) == [
        (2, "xid", "XID 48 (double-bit ECC error)"),
        (4, "xid", "XID 79 (GPU has fallen off the bus)"),
        (5, "xid", "XID 79 (GPU has fallen off the bus)"),
    ]


def test_counts_and_last_xid_together_are_one_event() -> None:
    healths = [
        health(xid_counts={}, last_xid=None),
        health(xid_counts={"79": 1}, last_xid=79, last_xid_ms=T0 + S),
    ]

    assert [e.kind for e in run(healths)] == ["xid"]


def test_unknown_xid_readings_are_nothing() -> None:
    healths: list[GpuHealth | None] = [
        health(xid_counts={"79": 1}, last_xid=79, last_xid_ms=T0),
        None,
        health(),
        health(xid_counts={"79": 1}, last_xid=79, last_xid_ms=T0),
    ]

    assert run(healths) == []


# --------------------------------------------------------------------------- ecc and remap


def test_ecc_increases_are_events_with_the_increase_and_total() -> None:
    healths = [
        health(ecc_uncorrected=0, ecc_corrected=10),
        health(ecc_uncorrected=0, ecc_corrected=10),
        health(ecc_uncorrected=2, ecc_corrected=10),
        health(ecc_uncorrected=2, ecc_corrected=15),
    ]

    assert said(run(healths)) == [
        (2, "ecc", "ECC: uncorrected +2 (total 2)"),
        (3, "ecc", "ECC: corrected +5 (total 15)"),
    ]


def test_ecc_counters_going_back_or_unknown_are_nothing() -> None:
    healths: list[GpuHealth | None] = [
        health(ecc_uncorrected=4),
        health(ecc_uncorrected=0),  # the driver reloaded
        None,
        health(ecc_uncorrected=None),
        health(ecc_uncorrected=-1),  # a sentinel
        health(ecc_uncorrected=0),
        health(ecc_uncorrected=1),
    ]

    assert said(run(healths)) == [(6, "ecc", "ECC: uncorrected +1 (total 1)")]


def test_remapped_rows_pending_and_failure_are_remap_events() -> None:
    healths = [
        health(remapped_uncorrectable=0, remapped_correctable=0, remap_pending=False),
        health(remapped_uncorrectable=1, remapped_correctable=0, remap_pending=True),
        health(remapped_uncorrectable=1, remapped_correctable=0, remap_pending=True),
        health(remap_pending=None, remap_failure=None),  # unknown: neither
        health(remapped_uncorrectable=1, remapped_correctable=0, remap_failure=True),
        health(remapped_uncorrectable=0, remapped_correctable=0, remap_pending=False),
    ]

    assert said(run(healths)) == [
        (
            1,
            "remap",
            "row remap: rows remapped (uncorrectable) +1 (total 1), "
            "remap pending (a GPU reset applies it)",
        ),
        (4, "remap", "row remap: remap failed"),
    ]


def test_a_pending_remap_again_after_a_reset_is_an_event_again() -> None:
    healths = [health(remap_pending=True), health(remap_pending=False), health(remap_pending=True)]

    assert [(t, kind) for t, kind, _ in said(run(healths))] == [(0, "remap"), (2, "remap")]


# --------------------------------------------------------------------------- state


def test_a_gpu_that_disappears_starts_afresh() -> None:
    """Its host reports without it: its health is forgotten, and its counts are a new
    baseline when it comes back (no event for what happened while it was gone)."""
    frames = [
        frame(0, gpu(health(ecc_uncorrected=0)), gpu(None, 1)),
        frame(1, gpu(None, 1)),
        frame(2, gpu(health(ecc_uncorrected=5)), gpu(None, 1)),
        frame(3, gpu(health(ecc_uncorrected=6)), gpu(None, 1)),
    ]
    detector = Detector(interval_ms=S)

    found = [e for f in frames for e in detector.feed(f)]

    assert said(found) == [(3, "ecc", "ECC: uncorrected +1 (total 6)")]
    assert len(detector._health) == 1


def test_a_gpu_of_a_host_that_is_missing_keeps_its_health() -> None:
    other = "n2:9090"
    frames = [
        frame(0, gpu(health(ecc_uncorrected=0))),
        frame(1, gpu(None, 0, other)),  # no GPU rows of n1: nothing said of its GPUs
        frame(2, gpu(health(ecc_uncorrected=1))),
    ]

    found = [e for e in detect(frames, interval_ms=S) if e.kind == "ecc"]

    assert said(found) == [(2, "ecc", "ECC: uncorrected +1 (total 1)")]


def test_readings_fed_without_a_frame_detect_the_same() -> None:
    """:meth:`Detector.feed_readings` with :class:`GpuReading` rows carrying health."""
    healths = [clocks(), clocks("hw_thermal"), health(ecc_uncorrected=0), clocks()]
    detector = Detector(interval_ms=S)
    found: list[Event] = []
    for t, h in enumerate(healths):
        row = GpuReading(
            f"GPU-{H1}-0", H1, None, None, None, None, None, None, None, {"index": "0"}, h
        )
        found += detector.feed_readings(T0 + t * S, [row], {H1}, [])

    assert said(found) == said(run(healths))
    assert [e.kind for e in found] == ["throttle", "throttle-end"]
