"""The alert footer and the ``A`` alert panel as plain data (issue #20;
allsmi.domain.alerts_view, allsmi.domain.screen), on a 100-host × 8-GPU simulator frame at
200×60 and 80×24, with events built here."""

from __future__ import annotations

import pytest

from allsmi.adapters.simulation.simulator import ClusterSimulator, ClusterSpec
from allsmi.domain.alerts_view import Alert, alert_line
from allsmi.domain.model import SECTIONS, Frame
from allsmi.domain.screen import (
    Status,
    StyledLine,
    ViewState,
    clamp_view,
    render,
    view_key,
    view_takes,
)

T0 = 1_776_513_600_000
LIVE = Status(live_label="LIVE", keys_help="h:Help q:Exit")
SIZES = [(200, 60), (80, 24)]


def text(line: StyledLine) -> str:
    return "".join(span.text for span in line)


def screen(lines: tuple[StyledLine, ...]) -> list[str]:
    return [text(line) for line in lines]


@pytest.fixture(scope="module")
def frame() -> Frame:
    sim = ClusterSimulator(ClusterSpec(nodes=100, gpus_per_node=8))
    return sim.frame(T0, SECTIONS)


def alert(at_s: int, where: str | None, gpu: str | None, kind: str, message: str) -> Alert:
    t = T0 + at_s * 1000
    return Alert(t, f"12:{at_s // 60:02d}:{at_s % 60:02d}", where, gpu, kind, message)


HOT = alert(10, "node-0007", "3", "temp-warn", "temperature: ok->warn (82C / thr 80C)")
LOST = alert(20, "node-0042", None, "host-lost", "host stopped reporting")
BACK = alert(50, "node-0042", None, "host-back", "host reporting again after 30s")
MANY = [
    alert(i, f"node-{i % 100 + 1:04d}", str(i % 8), "util-drop", f"utilization: drop {i}")
    for i in range(60)
]


def panel(lines: list[str]) -> tuple[int, list[str]]:
    """Where the panel's title is, and its alert rows (up to the next blank or GPU row)."""
    at = next(i for i, line in enumerate(lines) if line.startswith("Alerts · "))
    rows = []
    for line in lines[at + 1 :]:
        if not line.strip() or not line[:2].isdigit():
            break
        rows.append(line)
    return at, rows


def test_the_footer_says_the_newest_alert_in_all_smis_temperature_wording() -> None:
    """all-smi's footer: host, GPU and the level change, ``temperature: ok->warn (82C / thr
    80C)``; host lost/back in the events' words; gone five minutes after."""
    assert alert_line([HOT], HOT.t_ms) == (
        "alert 12:00:10 node-0007 GPU3: temperature: ok->warn (82C / thr 80C)"
    )
    assert alert_line([HOT, LOST], LOST.t_ms) == (
        "alert 12:00:20 node-0042: host stopped reporting (+1 more)"
    )
    back = alert_line([HOT, LOST, BACK], BACK.t_ms + 1000)
    assert back is not None
    assert back.startswith("alert 12:00:50 node-0042: host reporting again after 30s")
    assert alert_line([HOT], HOT.t_ms + 5 * 60_000 + 1) is None
    assert alert_line([BACK], BACK.t_ms - 1) is None  # not before it happened


@pytest.mark.parametrize("size", SIZES)
def test_a_opens_the_panel_newest_first_with_time_host_gpu_kind_message(
    frame: Frame, size: tuple[int, int]
) -> None:
    width, height = size
    view = view_key(ViewState(), "A", 101, 10)
    assert view.alerts
    lines = screen(render(frame, view, width, height, LIVE, alerts=(HOT, LOST, BACK)))
    assert len(lines) == height and all(len(line) == width for line in lines)
    at, rows = panel(lines)
    assert "3 recent, newest first" in lines[at]
    assert [row.split()[:4] for row in rows] == [
        ["12:00:50", "node-0042", "-", "host-back"],
        ["12:00:20", "node-0042", "-", "host-lost"],
        ["12:00:10", "node-0007", "GPU3", "temp-warn"],
    ]
    assert "host reporting again after 30s" in rows[0]
    assert "temperature: ok->warn (82C / thr 80C)" in rows[2]
    assert any(line.startswith("GPU ") for line in lines[at + 4 :])  # the GPUs stay below
    closed = view_key(view, "A", 101, 10)
    assert not closed.alerts
    again = screen(render(frame, closed, width, height, LIVE, alerts=(HOT, LOST, BACK)))
    assert not any(line.startswith("Alerts · ") for line in again)


@pytest.mark.parametrize("size", SIZES)
def test_arrows_scroll_the_open_panel_and_esc_closes_it(
    frame: Frame, size: tuple[int, int]
) -> None:
    width, height = size
    alerts = tuple(MANY)
    view = view_key(ViewState(), "A", 101, 10)
    first = panel(screen(render(frame, view, width, height, LIVE, alerts=alerts)))[1]
    assert first[0].startswith("12:00:59") and len(first) < len(alerts)
    down = view_key(view, "down", 101, 10)
    assert down.scroll == 0 and down.alert_top == 1  # the panel moved, not the body
    second = panel(screen(render(frame, down, width, height, LIVE, alerts=alerts)))[1]
    assert second[0] == first[1]
    end = clamp_view(frame, view_key(view, "end", 101, 10), width, height, LIVE, alerts=alerts)
    assert end.alert_top == len(alerts) - len(first)
    last = panel(screen(render(frame, end, width, height, LIVE, alerts=alerts)))[1]
    assert last[-1].startswith("12:00:00")
    up = view_key(end, "up", 101, 10)
    assert panel(screen(render(frame, up, width, height, LIVE, alerts=alerts)))[1][-1] == last[-2]
    assert view_takes(end, "esc")  # Esc closes the panel before it quits
    assert not view_key(end, "esc", 101, 10).alerts
    assert not view_takes(view_key(end, "esc", 101, 10), "esc")


def test_a_clashes_with_no_key_and_the_help_lists_it(frame: Frame) -> None:
    """The core's keys (space ] [ + - j k g n N e G L h ? q) and the view's never toggle
    the panel; the help screen lists ``A``."""
    for key in ["space", "]", "[", "+", "-", "j", "k", "g", "n", "N", "e", "G", "L", "q"]:
        assert not view_key(ViewState(), key, 101, 10).alerts
    for key in ["d", "u", "v", "p", "c", "m", "f", "V", "U", "T", "o", "t", "x", "left"]:
        assert not view_key(ViewState(), key, 101, 10).alerts
    helped = screen(render(frame, ViewState(help=True), 200, 60, LIVE))
    assert any(line.startswith("  A ") and "alerts" in line for line in helped)


def test_an_empty_panel_says_so(frame: Frame) -> None:
    view = view_key(ViewState(), "A", 101, 10)
    lines = screen(render(frame, view, 80, 24, LIVE))
    assert any(line.startswith("Alerts · no alerts") for line in lines)
    assert clamp_view(frame, view_key(view, "end", 101, 10), 80, 24, LIVE).alert_top == 0
