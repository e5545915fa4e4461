"""The health line under a GPU that is not nominal (src/allsmi/domain/screen_rows.py, module
header "Health"; docs/recording-format.md §5.3.3): what :func:`health_notes` says of a GPU,
and the screen at 200×60 and 80×24 — one line more under the GPU that is not nominal, the
rest as it was; a nominal GPU's health leaves the screen as without it."""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import pytest

from allsmi.adapters.simulation.simulator import ClusterSimulator, ClusterSpec
from allsmi.domain.model import SECTIONS, Frame, Gpu, GpuHealth
from allsmi.domain.screen import Status, StyledLine, ViewState, render
from allsmi.domain.screen_rows import HEALTH_XID_RECENT_MS, health_notes

T0 = 1_776_513_600_000
LIVE = Status(live_label="LIVE local", keys_help="h:Help q:Exit")
SIZES = [(200, 60), (80, 24)]
NOMINAL = GpuHealth(
    clock_events=("gpu_idle", "applications_clocks", "sync_boost", "display_clock"),
    ecc_corrected=3,
    ecc_uncorrected=0,
    remapped_correctable=1,
    remapped_uncorrectable=0,
    remap_pending=False,
    remap_failure=False,
    xid_counts={"79": 1},
    last_xid=79,
    last_xid_ms=T0 - HEALTH_XID_RECENT_MS - 1,
)
THROTTLED = GpuHealth(clock_events=("sw_power_cap", "hw_slowdown", "sw_thermal"))


def texts(lines: Sequence[StyledLine]) -> list[str]:
    return ["".join(span.text for span in line) for line in lines]


def host_frame(gpus: int = 2) -> Frame:
    return ClusterSimulator(ClusterSpec(nodes=1, gpus_per_node=gpus)).frame(T0, SECTIONS)


def with_health(frame: Frame, *healths: GpuHealth | None) -> Frame:
    """``frame`` with the GPUs' health set, in order (the rest as they are)."""
    assert frame.gpus is not None
    gpus = [attrs.evolve(g, health=h) for g, h in zip(frame.gpus, healths, strict=False)]
    return attrs.evolve(frame, gpus=(*gpus, *frame.gpus[len(gpus) :]))


def gpu(health: GpuHealth | None) -> Gpu:
    return Gpu("GPU-0", "H100", "GPU", "a", "a", "a", health=health)


# --------------------------------------------------------------------------- the decision


def test_nothing_unknown_or_nominal_is_said() -> None:
    assert health_notes(gpu(None), T0) == ()
    assert health_notes(gpu(GpuHealth()), T0) == ()
    assert health_notes(gpu(NOMINAL), T0) == ()


def test_the_sw_power_cap_alone_is_not_said() -> None:
    assert health_notes(gpu(GpuHealth(clock_events=("sw_power_cap",))), T0) == ()


def test_every_not_nominal_reading_is_said_in_order() -> None:
    health = GpuHealth(
        clock_events=("sw_power_cap", "hw_slowdown", "sw_thermal", "hw_thermal", "hw_power_brake"),
        last_xid=79,
        last_xid_ms=T0 - 60_000,
        ecc_uncorrected=2,
        remap_pending=True,
    )

    assert health_notes(gpu(health), T0) == (
        "throttled: HW slowdown, SW thermal, HW thermal, HW power brake",
        "XID 79",
        "ECC uncorrected 2",
        "row remap pending",
    )


def test_a_remap_failure_is_said_over_pending() -> None:
    health = GpuHealth(remap_pending=True, remap_failure=True)

    assert health_notes(gpu(health), T0) == ("row remap failed",)


@pytest.mark.parametrize(
    ("last_xid_ms", "frame_t", "said"),
    [
        (T0, T0 + HEALTH_XID_RECENT_MS, True),
        (T0, T0 + HEALTH_XID_RECENT_MS + 1, False),
        (T0 + 5_000, T0, True),  # stamped after the frame (clocks apart): recent
        (None, T0, False),  # when unknown: it cannot be told recent
    ],
)
def test_a_last_xid_is_said_only_while_recent(
    last_xid_ms: int | None, frame_t: int, said: bool
) -> None:
    health = GpuHealth(xid_counts={"13": 4}, last_xid=13, last_xid_ms=last_xid_ms)

    assert health_notes(gpu(health), frame_t) == (("XID 13",) if said else ())


def test_dcgm_zero_gauge_is_no_xid() -> None:
    assert health_notes(gpu(GpuHealth(last_xid=0, last_xid_ms=T0)), T0) == ()


# --------------------------------------------------------------------------- the screen


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_a_throttled_gpu_gets_one_line_under_its_row(width: int, height: int) -> None:
    plain = texts(render(host_frame(), ViewState(), width, height, LIVE))
    shown = texts(render(with_health(host_frame(), THROTTLED), ViewState(), width, height, LIVE))

    at = 3  # the title, then GPU 0's two lines
    assert shown[at].startswith("    health: throttled: HW slowdown, SW thermal")
    assert shown[:at] == plain[:at]
    body_end = height - 2  # the status line and the keys
    assert shown[at + 1 : body_end] == plain[at : body_end - 1]
    assert shown[body_end:] == plain[body_end:]


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_the_line_is_under_the_gpu_that_is_not_nominal(width: int, height: int) -> None:
    plain = texts(render(host_frame(), ViewState(), width, height, LIVE))
    frame = with_health(host_frame(), NOMINAL, GpuHealth(ecc_uncorrected=2, remap_pending=True))
    shown = texts(render(frame, ViewState(), width, height, LIVE))

    at = 5  # the title, GPU 0's two lines, GPU 1's two lines
    assert shown[at].rstrip() == "    health: ECC uncorrected 2 · row remap pending"
    assert shown[:at] == plain[:at]
    assert shown[at + 1 : height - 2] == plain[at : height - 3]


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_a_nominal_frame_draws_the_screen_as_without_health(width: int, height: int) -> None:
    plain = render(host_frame(), ViewState(), width, height, LIVE)
    nominal = render(with_health(host_frame(), NOMINAL, NOMINAL), ViewState(), width, height, LIVE)

    assert nominal == plain


def test_scrolling_through_health_lines_shows_the_same_lines() -> None:
    """Each scroll position shows the lines of the whole body from there (the block builds
    only the visible lines: a GPU cut by the window's top is built from its first line)."""
    frame = with_health(host_frame(8), THROTTLED, None, NOMINAL, THROTTLED, None, THROTTLED)
    tall = texts(render(frame, ViewState(), 200, 200, LIVE))[1:]
    body = 10
    for scroll in range(0, 20):
        lines = texts(render(frame, ViewState(scroll=scroll), 200, body + 3, LIVE))[1 : body + 1]
        assert lines == tall[scroll : scroll + body], scroll
    assert sum(line.startswith("    health: throttled") for line in tall) == 3
