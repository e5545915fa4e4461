"""The recording's map on screen: the timeline strip and the history sparklines
(README "The screen"; docs/architecture.md §6). Pure.

Both are drawn from a :class:`~allsmi.domain.summary.Summary` — in replay the map of the whole
recording, live a ring of the last minutes — so what a paused replay shows is what the live
view showed at that instant: the sparklines end with the bucket holding the frame on screen,
and that bucket counts only the frames up to it (:attr:`MapView.partial`).

Rules this module obeys:

- **The strip** is one line across the screen (replay only): the recording's span cut into
  one cell per column (:meth:`Summary.cells`). A cell's glyph is its mean GPU utilization
  (``▁`` … ``█`` for 0 … 100 %; the cluster's on the All tab, the host's on a host tab); its
  colour says how it compares with the recording: green as usual, yellow *dimmed* — its
  share of busy GPUs (:attr:`Cell.active`: mean utilization of 10 % or more in a bucket) is
  below :data:`DIM_BELOW` of the recording's busy level, the 90th percentile of its cells'
  shares: a node gone idle, a hung job, however long it lasts and whatever the level of the
  busy GPUs around it (a load that ramps from 50 to 80 % dims nothing) — red when a
  host was missing or reported errors in it. A cell narrower than a bucket shows the bucket
  that covers it. A cell with no frame is blank, ``┈`` (red) where a
  gap (no frame for over twice the interval) crosses it, ``░`` where the map has not been
  built yet (a background scan still runs). The playhead is the cell holding the frame on
  screen, drawn in reverse video. A cell holding an event's time (:attr:`MapView.marks`:
  the host's events on a host tab, all of them on the All tab) keeps its glyph and colour
  on a :data:`EVENT_BG` background, so a mark hides neither the reading nor the playhead.
- **The history panel** (all-smi's "Live Statistics"): GPU utilization, GPU memory and GPU
  temperature beside CPU utilization, host memory and GPU power (the mean per GPU), each a
  sparkline of one bucket (10 s) per cell ending with the frame on screen and its latest
  value; the cluster's on the All tab, the host's on a host tab. Percentages and °C are
  drawn on a 0 … 100 scale, power on 0 … the window's maximum.
- **Per-GPU history** (a tab showing one host): one line per GPU, its utilization and memory
  sparklines.
- Cells are computed by the shell and cached (:class:`StripCells`): a map of 100,000 buckets
  takes a tenth of a second to cut into cells, too slow to redo on every paint.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Final

import attrs

from allsmi.domain.screen_rows import GREEN, HEADER, PLAIN, RED, YELLOW, Span, Spans, Style, fit
from allsmi.domain.screen_rows import StyledLine as StyledLine
from allsmi.domain.summary import Cell, Summary

GLYPHS: Final = "▁▂▃▄▅▆▇█"
DIM_BELOW: Final = 0.8  # a strip cell under this share of the busy level is dimmed
BUSY_QUANTILE: Final = 0.9  # the busy level: this quantile of the cells' busy shares
GAP_GLYPH: Final = "┈"
PENDING_GLYPH: Final = "░"
EVENT_BG: Final = "magenta"  # the background of a strip cell holding an event
NO_READING: Final = " "
LABEL_CELLS: Final = 10  # "GPU Util. "
VALUE_CELLS: Final = 8  # " 100.0%"

# (label, series) of the history panel's left and right columns, row by row
PANEL: Final = (
    (("GPU Util.", "util"), ("CPU Util.", "cpu")),
    (("GPU Mem.", "mem"), ("Host Mem.", "ram")),
    (("GPU Temp.", "temp"), ("GPU Power", "power")),
)
PANEL_HEIGHT: Final = 1 + len(PANEL)

StripCells = Callable[[str | None, int], Sequence[Cell]]  # (host or None, cells) → cells


@attrs.frozen
class MapView:
    """What the screen draws the map from, prepared by the shell."""

    summary: Summary  # the map (replay) or the ring of recent frames (live)
    t_ms: int  # the frame on screen
    partial: Summary | None = None  # its bucket, up to it only (replay)
    span: tuple[int, int] | None = None  # replay: first and last frame time; None: no strip
    strip: StripCells | None = None  # the cells of the span (cached by the shell)
    built_to_ms: int | None = None  # the map holds the recording up to here (None: all)
    marks: tuple[tuple[int, str | None], ...] = ()  # the events: (time, host id or None)


# --------------------------------------------------------------------------- the strip


def playhead_cell(span: tuple[int, int], t_ms: int, ncells: int) -> int:
    """The cell of a strip of ``ncells`` over ``span`` that holds ``t_ms``."""
    first, last = span
    length = last - first + 1
    return min(ncells - 1, max(0, (t_ms - first) * ncells // length))


def strip_line(view: MapView, host: str | None, width: int) -> StyledLine:
    """The timeline strip, one cell per column (module rules)."""
    if view.span is None or view.strip is None or width <= 0:
        return fit((), width)
    cells = view.strip(host, width)
    first, last = view.span
    length = last - first + 1
    usual = _quantile([c.active for c in cells if c.active is not None], BUSY_QUANTILE)
    head = playhead_cell(view.span, view.t_ms, width)
    marked = {
        playhead_cell(view.span, t_ms, width)
        for t_ms, where in view.marks
        if (host is None or where == host) and first <= t_ms <= last
    }
    # cells narrower than a bucket: a bucket begins in one of them and covers the next ones
    covers = max(0, -(-view.summary.width_ms * width // length) - 1)
    spans: list[Span] = []
    shown: tuple[str, Style] = (NO_READING, PLAIN)
    carried = 0
    for i, cell in enumerate(cells):
        start = first + i * length // width
        glyph, style = _cell(cell, usual, view.built_to_ms is not None and start > view.built_to_ms)
        if cell.frames or cell.gap or glyph == PENDING_GLYPH:
            shown, carried = (glyph, style), 0
        elif carried < covers and shown[0] not in (NO_READING, GAP_GLYPH, PENDING_GLYPH):
            (glyph, style), carried = shown, carried + 1
        if i in marked:
            style = attrs.evolve(style, bg=EVENT_BG)
        if i == head:
            style = attrs.evolve(style, reverse=True, bold=True)
        spans.append(Span(glyph, style))
    return fit(spans, width)


def _cell(cell: Cell, usual: float | None, pending: bool) -> tuple[str, Style]:
    if pending:
        return PENDING_GLYPH, PLAIN
    if not cell.frames:
        return (GAP_GLYPH, RED) if cell.gap else (NO_READING, PLAIN)
    glyph = _glyph(cell.util_mean, 100.0) if cell.util_mean is not None else "·"
    if cell.missing or cell.errors or cell.gap:
        return glyph, RED
    if dimmed(cell, usual):
        return glyph, YELLOW
    return glyph, GREEN


def dimmed(cell: Cell, usual: float | None) -> bool:
    """Whether fewer of a cell's GPUs were busy than the recording's busy level (module
    rules)."""
    share = cell.active
    return share is not None and usual is not None and usual > 0 and share < DIM_BELOW * usual


def _quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --------------------------------------------------------------------------- sparklines


def sparkline(values: Sequence[float | None], top: float) -> str:
    """One cell per value on a 0 … ``top`` scale; a blank where there is no reading."""
    return "".join(NO_READING if v is None else _glyph(v, top) for v in values)


def _glyph(value: float, top: float) -> str:
    if not math.isfinite(value) or top <= 0:
        return GLYPHS[0]
    level = round(min(max(value / top, 0.0), 1.0) * (len(GLYPHS) - 1))
    return GLYPHS[level]


def _latest(values: Sequence[float | None]) -> float | None:
    return next((v for v in reversed(values) if v is not None), None)


def _value_text(series: str, value: float | None) -> str:
    if value is None:
        return "N/A"
    if series == "temp":
        return f"{value:.0f}°C"
    if series == "power":
        return f"{value / 1000:.1f}kW" if value >= 10_000 else f"{value:.0f}W"
    return f"{value:.1f}%"


def _series_spans(
    view: MapView, label: str, series: str, cells: int, host: str | None
) -> list[Span]:
    values = view.summary.history(series, view.t_ms, cells, host=host, partial=view.partial)
    top = 100.0
    if series == "power":  # per GPU, on the window's own scale
        top = max((v for v in values if v is not None), default=0.0)
    text = _value_text(series, _latest(values))
    return [
        Span(f"{label:<{LABEL_CELLS}}", YELLOW if series in ("util", "mem", "temp") else HEADER),
        Span(sparkline(values, top), GREEN),
        Span(f"{text:>{VALUE_CELLS}}", PLAIN),
    ]


def panel_lines(
    view: MapView, host: str | None, width: int, name: str | None = None
) -> list[StyledLine]:
    """The history panel: a title and three rows of two sparklines (module rules); of the
    whole cluster, or of ``host`` (shown as ``name``)."""
    column = max(0, width // 2)
    cells = max(1, column - LABEL_CELLS - VALUE_CELLS - 1)
    minutes = cells * view.summary.width_ms / 60_000
    whose = "" if host is None else f" of {name or host}"
    title = f"History{whose} · last {minutes:.0f} min · {view.summary.width_ms // 1000} s per cell"
    lines = [fit([Span(title, HEADER)], width)]
    for left, right in PANEL:
        spans = _series_spans(view, *left, cells, host)
        spans.append(Span(" ", PLAIN))
        spans += _series_spans(view, *right, cells, host)
        lines.append(fit(spans, width))
    return lines


def gpu_history_lines(
    view: MapView, host: str, gpus: Sequence[tuple[str, str]], width: int
) -> list[Spans]:
    """One line per GPU of ``host`` (``(uuid, label)``): its utilization and memory."""
    label_cells = max((len(label) for _, label in gpus), default=0) + 1
    room = width - label_cells - 2 * (6 + VALUE_CELLS) - 1
    cells = max(1, room // 2)
    lines: list[Spans] = []
    for uuid, label in gpus:
        spans: list[Span] = [Span(f"{label:<{label_cells}}", HEADER)]
        for name, series in (("util ", "util"), (" mem ", "mem")):
            values = view.summary.history(
                series, view.t_ms, cells, gpu=(host, uuid), partial=view.partial
            )
            spans += [
                Span(name, YELLOW),
                Span(sparkline(values, 100.0), GREEN),
                Span(f"{_value_text(series, _latest(values)):>{VALUE_CELLS}}", PLAIN),
            ]
        lines.append(spans)
    return lines
