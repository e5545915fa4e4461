"""The All tab's per-host rows and the overview's node status dots, as plain data, on a
100-host × 8-GPU frame at 200×60 and 80×24 (issue #20; allsmi.domain.host_view)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import attrs
import pytest

from allsmi.adapters.simulation.simulator import ClusterSimulator, ClusterSpec, Incident
from allsmi.domain.events import THRESHOLDS
from allsmi.domain.host_view import (
    DOT,
    HOST_FAILING,
    HOST_TROUBLE,
    NO_DOT,
    idle_allocated,
    temp_warn,
)
from allsmi.domain.model import SECTIONS, Frame, Gpu
from allsmi.domain.screen import SCROLL_END, Status, StyledLine, ViewState, clamp_view, render
from allsmi.domain.screen_rows import GREEN, PLAIN, RED

T0 = 1_776_513_600_000
LIVE = Status(live_label="LIVE", keys_help="h:Help q:Exit")
SIZES = [(200, 60), (80, 24)]
IDLE, DOWN, HOT = 41, 76, 10  # node-42 idle but allocated, node-77 failing, node-11 warm
ROW = re.compile(r"^(node-\d+) +\d+ +(?:[\d.]+%|N/A)")


def text(line: StyledLine) -> str:
    return "".join(span.text for span in line)


@pytest.fixture(scope="module")
def sim() -> ClusterSimulator:
    incidents = (
        Incident(host_index=IDLE, start_ms=T0 - 600_000, end_ms=None, kind="gpu_idle"),
        Incident(host_index=DOWN, start_ms=T0 - 600_000, end_ms=None, kind="host_down"),
    )
    return ClusterSimulator(ClusterSpec(nodes=100, gpus_per_node=8, incidents=incidents))


@pytest.fixture(scope="module")
def frame(sim: ClusterSimulator) -> Frame:
    return sim.frame(T0, SECTIONS)


def warmed(frame: Frame, host: str, margin: int) -> Frame:
    """``frame`` with GPU 0 of ``host`` at its slowdown threshold less ``margin`` °C."""
    gpus = list(frame.gpus or ())
    at = next(i for i, g in enumerate(gpus) if g.host_id == host)
    slow = gpus[at].temperature_threshold_slowdown
    assert slow is not None
    gpus[at] = attrs.evolve(gpus[at], temperature=slow - margin)
    return attrs.evolve(frame, gpus=tuple(gpus))


def host_rows(lines: Sequence[StyledLine]) -> list[tuple[str, StyledLine]]:
    """The body's host lines: the table's rows (host name) and the no-data lines."""
    out = []
    for line in lines:
        said = text(line)
        found = ROW.match(said)
        if found:
            out.append((found.group(1), line))
        elif said.rstrip().endswith(": no data"):
            out.append((said.split(":")[0], line))
    return out


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_the_failing_and_the_idle_host_come_first_and_highlighted(
    sim: ClusterSimulator, frame: Frame, width: int, height: int
) -> None:
    lines = render(frame, ViewState(), width, height, LIVE, expected_hosts=sim.hosts)
    rows = host_rows(lines)
    assert [name for name, _ in rows[:2]] == ["node-77", "node-42"]
    failing, idle = (line for _, line in rows[:2])
    assert text(failing).rstrip() == "node-77: no data" and failing[0].style == HOST_FAILING
    assert "idle but allocated: 8 GPUs" in text(idle)
    assert {span.style for span in idle} == {HOST_TROUBLE} and len(text(idle)) == width
    assert all(span.style == PLAIN for _, line in rows[2:] for span in line)
    header = next(text(line) for line in lines if text(line).startswith("HOST "))
    assert "(2 in trouble, first)" in header[:width]
    # the 98 hosts that are ok go below the GPU rows: six GPUs stay on the first screen
    assert sum(text(line).startswith("GPU ") for line in lines) >= 6


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_an_over_temperature_host_is_listed_after_the_idle_one(
    sim: ClusterSimulator, frame: Frame, width: int, height: int
) -> None:
    hot = warmed(frame, sim.hosts[HOT], THRESHOLDS.temp_warn_c)  # exactly the warn level
    lines = render(hot, ViewState(), width, height, LIVE, expected_hosts=sim.hosts)
    rows = host_rows(lines)
    assert [name for name, _ in rows[:3]] == ["node-77", "node-42", "node-11"]
    assert rows[2][1][0].style == HOST_TROUBLE
    assert "temperature warn: 1 GPU" in text(rows[2][1]) or width < 90


def test_one_degree_under_the_warn_level_is_not_trouble(
    sim: ClusterSimulator, frame: Frame
) -> None:
    cool = warmed(frame, sim.hosts[HOT], THRESHOLDS.temp_warn_c + 1)
    rows = host_rows(render(cool, ViewState(), 200, 400, LIVE, expected_hosts=sim.hosts))
    assert [name for name, _ in rows[:4]] == ["node-77", "node-42", "node-01", "node-02"]


def test_the_others_follow_in_host_order_then_the_gpu_rows_as_before(
    sim: ClusterSimulator, frame: Frame
) -> None:
    lines = render(frame, ViewState(), 200, 400, LIVE, expected_hosts=sim.hosts)
    rows = host_rows(lines)
    expected = [h for i, h in enumerate(sim.hosts) if i not in (IDLE, DOWN)]
    assert [name for name, _ in rows[2:]] == expected
    gpu_hosts = [t.split(" @ ")[1].split()[0] for t in map(text, lines) if t.startswith("GPU ")]
    assert gpu_hosts[:16] == ["node-01"] * 8 + ["node-02"] * 8
    # one line per host: the failing host's no-data line is not said twice
    assert sum(text(line).startswith("node-77: no data") for line in lines) == 1


def whole_body(frame: Frame, hosts: tuple[str, ...], width: int, height: int) -> list[str]:
    """Every body line of the All tab at this size, page by page (the layout of the size)."""
    last = clamp_view(frame, ViewState(scroll=SCROLL_END), width, height, LIVE,
                      expected_hosts=hosts).scroll  # fmt: skip
    page = height - 6  # title, two overview lines, tabs; status, key help
    out: list[str] = []
    for scroll in range(0, last + page, page):
        at = min(scroll, last)
        lines = render(frame, ViewState(scroll=at), width, height, LIVE, expected_hosts=hosts)
        out += [text(line) for line in lines[4:-2]][scroll - at :]
    return out


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_a_table_too_long_for_the_screen_keeps_trouble_above_and_the_rest_below(
    sim: ClusterSimulator, frame: Frame, width: int, height: int
) -> None:
    body = whole_body(frame, sim.hosts, width, height)
    first_gpu = next(i for i, t in enumerate(body) if t.startswith("GPU "))
    more = next(i for i, t in enumerate(body) if t.startswith("98 more hosts, ok"))
    assert first_gpu < more  # trouble, the GPU rows, then the hosts that are ok
    others = [h for i, h in enumerate(sim.hosts) if i not in (IDLE, DOWN)]
    assert [t.split()[0] for t in body if ROW.match(t)] == [sim.hosts[IDLE], *others]


def test_the_idle_rule_is_the_events_modules() -> None:
    def one(util: float, used_share: float) -> Gpu:
        total = 100 * 1024**3
        return Gpu(
            uuid="u", name="H200", device_type="GPU", host_id="a", hostname="a",
            instance="a", utilization=util, used_memory=int(total * used_share),
            total_memory=total,
        )  # fmt: skip

    share = THRESHOLDS.idle_allocated_permyriad / 10_000
    assert idle_allocated(one(THRESHOLDS.util_idle_pct, share))
    assert not idle_allocated(one(THRESHOLDS.util_idle_pct + 0.1, share))
    assert not idle_allocated(one(0.0, share - 0.001))


def test_temperature_warn_without_a_slowdown_threshold_uses_shutdown() -> None:
    gpu = Gpu(
        uuid="u", name="H200", device_type="GPU", host_id="a", hostname="a", instance="a",
        temperature_threshold_shutdown=90,
    )  # fmt: skip
    assert temp_warn(attrs.evolve(gpu, temperature=90 - THRESHOLDS.temp_crit_c))
    assert not temp_warn(attrs.evolve(gpu, temperature=89 - THRESHOLDS.temp_crit_c))


def test_one_status_dot_per_host_red_when_failing_hollow_without_data(
    sim: ClusterSimulator, frame: Frame
) -> None:
    expected = (*sim.hosts, "gone")
    lines = render(frame, ViewState(), 200, 60, LIVE, expected_hosts=expected)
    dots = [span for line in lines[1:3] for span in line if span.text in (DOT, NO_DOT)]
    assert len(dots) == 101
    assert dots[DOWN].style == RED and dots[DOWN].text == DOT
    assert dots[100].text == NO_DOT  # "gone": expected, never seen, no error
    assert all(d.style == GREEN for i, d in enumerate(dots) if i not in (DOWN, 100))


def test_dots_that_do_not_fit_are_counted(sim: ClusterSimulator, frame: Frame) -> None:
    lines = render(frame, ViewState(), 120, 60, LIVE, expected_hosts=sim.hosts)
    said = text(lines[1])
    assert f"{DOT}99 {DOT}1" in said and len(said) == 120
    assert text(lines[1])[: said.index("│")].rstrip().startswith("Nodes 99/100")


def test_no_host_rows_on_a_host_tab_or_for_one_host(sim: ClusterSimulator, frame: Frame) -> None:
    tab = render(frame, ViewState(tab=5), 200, 60, LIVE, expected_hosts=sim.hosts)
    assert not any(text(line).startswith("HOST ") for line in tab)
    one = ClusterSimulator(ClusterSpec(nodes=1, gpus_per_node=2)).frame(T0, SECTIONS)
    assert not any(
        text(line).startswith("HOST ") for line in render(one, ViewState(), 80, 24, LIVE)
    )
