"""The map on screen (allsmi.domain.history): the timeline strip and the history panel are
drawn from a Summary exactly as the module's rules say, and they take their place in the
screen's vertical budget."""

from __future__ import annotations

from collections.abc import Sequence

from allsmi.domain.history import (
    GAP_GLYPH,
    GLYPHS,
    PANEL_HEIGHT,
    PENDING_GLYPH,
    MapView,
    panel_lines,
    playhead_cell,
    sparkline,
    strip_line,
)
from allsmi.domain.model import Cpu, Frame, Gpu, Memory
from allsmi.domain.screen import MIN_BODY, Status, ViewState, render
from allsmi.domain.screen_rows import GREEN, RED, YELLOW, Style, StyledLine
from allsmi.domain.summary import Cell, Summary

T0 = 1_776_513_600_000  # 2026-04-18T12:00:00Z, a bucket boundary
HOSTS = ("n1", "n2", "n3", "n4")
REPLAY = Status(live_label="LIVE", keys_help="keys")


def node_frame(t: int, idle: str | None = None, missing: str | None = None) -> Frame:
    """Four hosts of two GPUs at 80 %; ``idle`` at 0 %; ``missing`` has no rows."""
    gpus = tuple(
        Gpu(f"{host}-{i}", "H100", "GPU", host, host, host, utilization=0.0 if host == idle
            else 80.0, temperature=60, used_memory=40, total_memory=80,
            power_consumption=300.0, frequency=1500)
        for host in HOSTS if host != missing for i in range(2)
    )  # fmt: skip
    cpus = tuple(Cpu(h, h, h, utilization=20.0) for h in HOSTS if h != missing)
    memory = tuple(Memory(h, h, h, used_bytes=25, total_bytes=100) for h in HOSTS if h != missing)
    return Frame(t_ms=t, gpus=gpus, cpus=cpus, memory=memory)


def recording(seconds: int = 1200, drop_at: int = 600) -> list[Frame]:
    """One frame a second; n3 goes idle from ``drop_at`` seconds on."""
    return [node_frame(T0 + s * 1000, idle="n3" if s >= drop_at else None) for s in range(seconds)]


def view_of(frames: Sequence[Frame], at: int, **kw: object) -> MapView:
    summary = Summary.of(frames, expected_hosts=HOSTS, interval_ms=1000)
    span = (frames[0].t_ms, frames[-1].t_ms)

    def strip(host: str | None, n: int) -> Sequence[Cell]:
        return summary.cells(span[0], span[1] + 1, n, host)

    return MapView(summary, frames[at].t_ms, span=span, strip=strip, **kw)  # type: ignore[arg-type]


def text(line: StyledLine) -> str:
    return "".join(span.text for span in line)


def cells_of(line: StyledLine) -> list[tuple[str, Style]]:
    return [(ch, span.style) for span in line for ch in span.text]


def test_the_strip_dims_the_cells_where_the_cluster_went_quiet() -> None:
    frames = recording()
    for width in (40, 80, 200):
        line = strip_line(view_of(frames, 0), None, width)
        styles = [style for _, style in cells_of(line)]
        first_dim = next(i for i, s in enumerate(styles) if s.fg == YELLOW.fg)
        drop_cell = 600 * width // 1200  # the cell holding the 600th second
        assert drop_cell <= first_dim <= drop_cell + 1
        assert all(s.fg == GREEN.fg for s in styles[:drop_cell])  # busy before: as usual
        assert all(s.fg == YELLOW.fg for s in styles[drop_cell + 1 :])
        glyphs = text(line)
        assert " " not in glyphs  # at 200 cells (6 s each) a 10-s bucket covers two cells
        assert glyphs[0] == GLYPHS[round(0.8 * 7)]  # 80 %: the sixth of eight heights
        assert glyphs[-1] == GLYPHS[round(0.6 * 7)]  # 60 %: a quarter of the GPUs idle


def test_a_host_tab_strip_is_that_hosts_utilization() -> None:
    frames = recording()
    line = strip_line(view_of(frames, 0), "n3", 40)
    assert text(line)[:20] == GLYPHS[round(0.8 * 7)] * 20
    assert text(line)[21:] == GLYPHS[0] * 19  # n3 idle: the lowest glyph, dimmed
    assert text(strip_line(view_of(frames, 0), "n1", 40)) == GLYPHS[round(0.8 * 7)] * 40


def test_the_playhead_is_the_cell_of_the_frame_on_screen_in_reverse_video() -> None:
    frames = recording()
    for at in (0, 299, 600, 1199):
        line = strip_line(view_of(frames, at), None, 60)
        reversed_cells = [i for i, (_, s) in enumerate(cells_of(line)) if s.reverse]
        assert reversed_cells == [playhead_cell((T0, T0 + 1_199_000), T0 + at * 1000, 60)]
        assert reversed_cells == [at * 60 // 1200]


def test_gaps_missing_hosts_and_what_is_not_built_yet_are_marked() -> None:
    frames = [node_frame(T0 + s * 1000) for s in range(300)]
    frames += [node_frame(T0 + s * 1000, missing="n2") for s in range(300, 400)]
    frames += [node_frame(T0 + s * 1000) for s in range(700, 1000)]  # 300 s without frames
    line = strip_line(view_of(frames, 0), None, 100)  # 10 s a cell
    marks = cells_of(line)
    assert all(style == RED or style.fg == RED.fg for _, style in marks[31:40])  # n2 missing
    assert [ch for ch, _ in marks[41:69]] == [GAP_GLYPH] * 28  # nothing recorded: the gap
    assert all(style.fg == RED.fg for _, style in marks[41:69])
    half_built = view_of(frames, 0, built_to_ms=T0 + 499_000)
    built = text(strip_line(half_built, None, 100))
    assert built[51:] == PENDING_GLYPH * 49  # cells that begin after what the scan read


def test_sparklines_scale_each_value_and_leave_no_reading_blank() -> None:
    assert sparkline([0.0, 50.0, 100.0, None, 150.0], 100.0) == "▁▅█ █"
    assert sparkline([], 100.0) == ""


def test_the_panel_shows_the_buckets_up_to_the_frame_on_screen() -> None:
    frames = recording()
    lines = [text(x) for x in panel_lines(view_of(frames, 1199), None, 120)]
    assert len(lines) == PANEL_HEIGHT and all(len(x) == 120 for x in lines)
    assert lines[0].startswith("History · last ")
    util = lines[1]
    assert util.startswith("GPU Util.") and "60.0%" in util  # a quarter of the GPUs idle
    before = [text(x) for x in panel_lines(view_of(frames, 590), None, 120)]
    assert "80.0%" in before[1]  # paused before the drop: the drop is not shown yet
    assert "CPU Util." in util and "20.0%" in util
    host = [text(x) for x in panel_lines(view_of(frames, 1199), "n3", 120, "node-3")]
    assert host[0].startswith("History of node-3") and "0.0%" in host[1]


def test_the_partial_bucket_counts_only_frames_up_to_the_frame_on_screen() -> None:
    frames = recording(drop_at=605)  # mid-bucket: 600..604 busy, 605.. idle
    whole = view_of(frames, 603)
    partial = Summary.of(frames[600:604], expected_hosts=HOSTS, interval_ms=1000)
    shown = view_of(frames, 603, partial=partial)
    assert whole.summary.history("util", frames[603].t_ms, 1)[0] != 80.0
    assert shown.summary.history("util", frames[603].t_ms, 1, partial=partial)[0] == 80.0
    assert "80.0%" in text(panel_lines(shown, None, 100)[1])


def test_the_strip_sits_above_the_status_line_and_the_panel_folds_before_the_overview() -> None:
    frames = recording()
    frame = frames[700]
    view = view_of(frames, 700)
    tall = [text(x) for x in render(frame, ViewState(), 80, 24, REPLAY, history=view)]
    assert tall[-3] == text(strip_line(view, None, 80))  # strip, status, key help
    assert any(x.startswith("History") for x in tall) and tall[1].startswith("Nodes")
    body_rows = sum(1 for x in tall if x.startswith(("GPU ", "    Util")))
    assert body_rows >= MIN_BODY
    short = [text(x) for x in render(frame, ViewState(), 80, 21, REPLAY, history=view)]
    assert not any(x.startswith("History") for x in short)  # folded first
    assert short[1].startswith("Nodes")  # the overview stays
    live = render(frame, ViewState(), 80, 24, REPLAY, history=MapView(view.summary, frame.t_ms))
    assert not any(GLYPHS[5] * 10 in text(x) for x in live[-3:])  # no span: no strip
