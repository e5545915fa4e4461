"""Alerts: all-smi's alert footer and its ``A`` panel, from our own events (issue #20;
docs/architecture.md §6, the view model). Pure: plain data in, text out.

Rules:
- An :class:`Alert` is one detected event (:mod:`allsmi.domain.events`: its kind and its
  message, temperature levels worded as all-smi words them, ``temperature: ok->warn (82C /
  thr 80C)``; ``host-lost`` ``host stopped reporting``, ``host-back`` ``host reporting again
  after …``), with its recorded time, its host under its shown name and its GPU. The shell
  makes them: live, the last :data:`MAX_ALERTS` events the view's detector found; replay,
  the events the replay's scan found up to the frame on screen, within
  :data:`ALERT_HOLD_MS` of it.
- The footer (:func:`alert_line`): the newest alert of the last :data:`ALERT_HOLD_MS` of
  frame time; of several at one time the gravest (:data:`ALERT_ORDER`); ``alert <time of
  day> <host> GPU<i>: <message> (+N more)``; none without one.
- The panel (:func:`alert_panel_lines`): a title, then one alert a line, newest first (of
  one time, the gravest first): time, host, GPU, kind, message; ``top`` is the first row
  shown, clamped so the last screenful stays full (:func:`alert_top`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import attrs

from allsmi.domain.screen_rows import CYAN, HEADER, PLAIN, Span, Spans, clean, cut

MAX_ALERTS: Final = 50  # live: events kept for the alert line and the panel
ALERT_HOLD_MS: Final = 5 * 60_000  # an event stays on the alert line this long (frame time)
# of events at one time, the alert line names the first of these kinds (a recovery or a
# kind not listed, last)
ALERT_ORDER: Final = (
    "host-lost",
    "xid",
    "temp-crit",
    "remap",
    "ecc",
    "temp-slowdown",
    "throttle",
    "power-drop",
    "util-drop",
    "errors",
)
WHERE_CELLS: Final = 24  # the host column's widest
GPU_CELLS: Final = 6  # "GPU12 "
KIND_CELLS: Final = 14  # "idle-allocated"


@attrs.frozen
class Alert:
    """One event as the footer and the panel show it."""

    t_ms: int  # recorded time, ms since the epoch
    when: str  # its time of day, as the shell formats it (the local zone)
    where: str | None  # the host's shown name; None: no one host (the collector)
    gpu: str | None  # the GPU's index (else its uuid); None: no one GPU
    kind: str
    message: str


def severity(kind: str) -> int:
    """Where ``kind`` stands in :data:`ALERT_ORDER` (0 first; not in it: after them all)."""
    return ALERT_ORDER.index(kind) if kind in ALERT_ORDER else len(ALERT_ORDER)


def newest_first(alerts: Sequence[Alert]) -> list[Alert]:
    """The panel's order: newest first; of one time, the gravest first."""
    return sorted(alerts, key=lambda a: (-a.t_ms, severity(a.kind)))


def alert_line(alerts: Sequence[Alert], now_ms: int) -> str | None:
    """The footer's alert at frame time ``now_ms`` (module rules); None without one."""
    recent = [a for a in alerts if 0 <= now_ms - a.t_ms <= ALERT_HOLD_MS]
    if not recent:
        return None
    newest = newest_first(recent)[0]
    gpu = None if newest.gpu is None else f"GPU{newest.gpu}"
    where = " ".join(part for part in (newest.where, gpu) if part)
    more = f" (+{len(recent) - 1} more)" if len(recent) > 1 else ""
    return f"alert {newest.when} {where + ': ' if where else ''}{newest.message}{more}"


def alert_top(top: int, count: int, rows: int) -> int:
    """The first alert shown: ``top`` kept so that ``rows`` rows stay full."""
    return max(0, min(top, count - max(rows, 1)))


def alert_panel_lines(alerts: Sequence[Alert], top: int, rows: int, width: int) -> list[Spans]:
    """The panel in ``rows`` lines (its title and ``rows - 1`` alerts from ``top``), the
    alerts newest first (module rules)."""
    ordered = newest_first(alerts)
    shown = max(0, rows - 1)
    count = len(ordered)
    state = "no alerts" if count == 0 else f"{count} recent, newest first"
    keys = "↑↓ scroll  A/Esc close"
    lines: list[Spans] = [[Span(f"Alerts · {state}", HEADER), Span(f"   {keys}", CYAN)]]
    first = alert_top(top, count, shown)
    window = ordered[first : first + shown]
    where = min(max((len(clean(a.where or "-")) for a in window), default=0), WHERE_CELLS)
    for alert in window:
        gpu = "-" if alert.gpu is None else f"GPU{alert.gpu}"
        text = (
            f"{clean(alert.when)}  {cut(clean(alert.where or '-'), where):<{where}}  "
            f"{cut(clean(gpu), GPU_CELLS):<{GPU_CELLS}} "
            f"{cut(clean(alert.kind), KIND_CELLS):<{KIND_CELLS}} {clean(alert.message)}"
        )
        lines.append([Span(cut(text, width), PLAIN)])
    return lines[: max(rows, 0)]
