"""Per-host summary rows, node status dots, sorting and filtering of the view (docs/
architecture.md §6; all-smi's cluster All tab and its ``d u g p c m f /`` keys).

Rules this module obeys:
- Pure: the standard library and attrs only; one frame is judged from itself alone.
- A host's **state**, gravest first (:data:`STATES`):
  ``failing`` — a frame error names it (:func:`allsmi.domain.summary.error_host`, by its
  scrape target); ``no data`` — it has no rows and no error names it; ``idle-allocated`` —
  a GPU of it at most :attr:`~allsmi.domain.events.Thresholds.util_idle_pct` busy while it
  holds at least :attr:`~allsmi.domain.events.Thresholds.idle_allocated_permyriad` of its
  memory (the events module's rule, on one frame); ``temp-warn`` — a GPU at or above its
  slowdown threshold less :attr:`~allsmi.domain.events.Thresholds.temp_warn_c` (without a
  slowdown threshold: its shutdown threshold less ``temp_crit_c``); else ``ok``.
- Hosts in trouble (any state but ``ok``) are listed first, gravest first, then in their
  usual order (the hosts' order, or the GPU sort's); their rows are highlighted. Hosts
  without rows come first of all as their ``<host>: no data`` lines (what the body showed
  for them before the summary), then the table's header and the hosts that report.
- Node status dots: one per host, in the hosts' order: ``●`` green reporting, ``●`` red
  failing, ``○`` white no data. Where they do not fit, their counts.
- The filter (``/``) is text matched case-insensitively as a substring of a host's display
  name or id, a GPU's name, a GPU's index (``3`` or ``gpu3``, whole), a process's user or
  command. A GPU row is shown when its host, itself or one of its processes matches; a
  process row when its host, its GPU (name or index) or itself matches; a host's own rows
  (summary, CPU, memory, disks, ``no data``) when its host matches or one of its GPU or
  process rows is shown.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from typing import Final

import attrs

from allsmi.domain.energy import format_energy
from allsmi.domain.events import THRESHOLDS
from allsmi.domain.model import Gpu, GpuProcess
from allsmi.domain.screen_rows import (
    GREEN,
    HEADER,
    PLAIN,
    RED,
    Span,
    Spans,
    Style,
    binary_pair,
    by_gpu_memory,
    celsius,
    clean,
    cut,
    pct,
    power_total,
)
from allsmi.domain.summary import error_host, permyriad

FAILING: Final = "failing"
NO_DATA: Final = "no data"
IDLE_ALLOCATED: Final = "idle-allocated"
TEMP_WARN: Final = "temp-warn"
OK: Final = "ok"
STATES: Final = (FAILING, NO_DATA, IDLE_ALLOCATED, TEMP_WARN, OK)  # gravest first
HOST_FAILING: Final = Style(fg="white", bg="red", bold=True)  # failing, no data
HOST_TROUBLE: Final = Style(fg="black", bg="yellow")  # idle-allocated, temp-warn
GPU_SORTS: Final = ("default", "util", "memory")
PROCESS_SORTS: Final = ("memory", "pid", "cpu")
HOST_CELLS: Final = 16
ENERGY_CELLS: Final = 9  # "123.45kWh"
DOT: Final = "●"
NO_DOT: Final = "○"
DOT_STYLES: Final = {OK: GREEN, FAILING: RED, NO_DATA: PLAIN}


@attrs.frozen
class HostSummary:
    """One host's summary row: its GPUs taken together, and its state."""

    host: str  # id
    name: str  # display name
    gpus: int
    util: float | None  # mean of the known readings
    vram_used: int | None
    vram_total: int | None
    power: float | None  # W, sum of the known readings
    temp_max: float | None
    state: str
    note: str  # what the state says: the error, the GPUs idle or warm
    reporting: bool = True  # it has rows in the frame
    energy_j: float | None = None  # J, its GPUs' energy (allsmi.domain.energy)


def _known(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def idle_allocated(gpu: Gpu) -> bool:
    """At most ``util_idle_pct`` busy while holding ``idle_allocated_permyriad`` or more of
    its memory (events: ``util-drop``'s "idle but allocated", judged on one frame)."""
    util, held = gpu.utilization, permyriad(gpu.used_memory, gpu.total_memory)
    return (
        util is not None
        and 0 <= util <= THRESHOLDS.util_idle_pct
        and held is not None
        and held >= THRESHOLDS.idle_allocated_permyriad
    )


def temp_warn(gpu: Gpu) -> bool:
    """At or above the events module's ``temp-warn`` level (slowdown − ``temp_warn_c``, else
    shutdown − ``temp_crit_c``)."""
    temp = gpu.temperature
    if temp is None or not math.isfinite(temp):
        return False
    slow, shut = gpu.temperature_threshold_slowdown, gpu.temperature_threshold_shutdown
    if slow is not None and slow > 0:
        return temp >= slow - THRESHOLDS.temp_warn_c
    return shut is not None and shut > 0 and temp >= shut - THRESHOLDS.temp_crit_c


def failing_hosts(errors: Sequence[str], hosts: Collection[str]) -> dict[str, str]:
    """Host id → the first error naming it (the text after its scrape target)."""
    out: dict[str, str] = {}
    for error in errors:
        host = error_host(error, hosts)
        if host is not None and host not in out:
            out[host] = error.partition(": ")[2]
    return out


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def host_summary(
    host: str, name: str, gpus: Sequence[Gpu], has_rows: bool, error: str | None,
    energy_j: float | None = None,
) -> HostSummary:  # fmt: skip
    """A host's summary row from its GPU rows of one frame (module header: state)."""
    utils = _known([g.utilization for g in gpus])
    used = [g.used_memory for g in gpus if g.used_memory is not None]
    total = [g.total_memory for g in gpus if g.total_memory is not None]
    powers = _known([g.power_consumption for g in gpus])
    temps = _known([g.temperature for g in gpus])
    idle = [g for g in gpus if idle_allocated(g)]
    warm = [g for g in gpus if temp_warn(g)]
    if error is not None:
        state, note = FAILING, f"failing: {error}"
    elif not has_rows:
        state, note = NO_DATA, NO_DATA
    elif idle:
        state, note = IDLE_ALLOCATED, f"idle but allocated: {_count(len(idle), 'GPU')}"
    elif warm:
        state, note = TEMP_WARN, f"temperature warn: {_count(len(warm), 'GPU')}"
    else:
        state, note = OK, OK
    return HostSummary(
        host=host,
        name=name,
        gpus=len(gpus),
        util=sum(utils) / len(utils) if utils else None,
        vram_used=sum(used) if used else None,
        vram_total=sum(total) if total else None,
        power=sum(powers) if powers else None,
        temp_max=max(temps) if temps else None,
        state=state,
        note=note,
        reporting=has_rows,
        energy_j=energy_j,
    )


def _descending(value: float | None) -> tuple[bool, float]:
    """A sort key: known values largest first, unknown last."""
    return (True, 0.0) if value is None or not math.isfinite(value) else (False, -value)


def trouble_first(rows: Sequence[HostSummary], gpu_sort: str = "default") -> list[HostSummary]:
    """Hosts in trouble first, gravest first; then the others in their usual order, or by
    mean utilization / VRAM used under that GPU sort. Stable: ties keep the hosts' order."""
    rank = {state: at for at, state in enumerate(STATES)}
    trouble = sorted((r for r in rows if r.state != OK), key=lambda r: rank[r.state])
    others = [r for r in rows if r.state == OK]
    if gpu_sort == "util":
        others.sort(key=lambda r: _descending(r.util))
    elif gpu_sort == "memory":
        others.sort(key=lambda r: _descending(r.vram_used))
    return [*trouble, *others]


def _vram(row: HostSummary) -> str:
    return binary_pair(row.vram_used, row.vram_total)


def host_columns(rows: Sequence[HostSummary]) -> tuple[int, int]:
    """The cells of the HOST column (its longest name, at most :data:`HOST_CELLS`) and of
    the VRAM column (its longest value), so that the STATE column keeps its room at 80."""
    shown = [row for row in rows if row.reporting]
    host = max((len(clean(row.name)) for row in shown), default=4)
    vram = max((len(_vram(row)) for row in shown), default=4)
    return min(max(host, 4), HOST_CELLS), max(vram, 4)


def host_header(
    trouble: int, columns: tuple[int, int] = (HOST_CELLS, 17), energy: bool = False
) -> Spans:
    """The table's header; ``energy``: with the Energy column (before STATE)."""
    said = f"  ({trouble} in trouble, first)" if trouble else ""
    host, vram = columns
    text = (
        f"{'HOST':<{host}} {'GPUs':>4}  {'Util':>6}  {'VRAM':<{vram}}  {'Power':>7}  "
        f"{'Temp':>5}  {'Energy'.rjust(ENERGY_CELLS) + '  ' if energy else ''}STATE{said}"
    )
    return [Span(text, HEADER)]


def host_line(
    row: HostSummary, width: int, columns: tuple[int, int] = (HOST_CELLS, 17),
    energy: bool = False,
) -> Spans:  # fmt: skip
    """``node-03  8  1.2%  0.9/1.1TiB  640W  41°C  idle but allocated: 8 GPUs``; a host
    without rows reads as its ``no data`` line (red; a failing one white on red: its error
    is at the top of the body). A host in trouble is highlighted across the line."""
    if not row.reporting:  # no readings to show: the no-data line, failing highlighted
        said = f"{clean(row.name)}: no data"
        if row.state == FAILING:
            return [Span(cut(said, width).ljust(width), HOST_FAILING)]
        return [Span(said, RED)]
    host, vram = columns
    text = (
        f"{cut(clean(row.name), host):<{host}} {row.gpus:>4}  {pct(row.util):>6}  "
        f"{_vram(row):<{vram}}  {power_total(row.power):>7}  {celsius(row.temp_max):>5}  "
        f"{format_energy(row.energy_j).rjust(ENERGY_CELLS) + '  ' if energy else ''}"
        f"{clean(row.note)}"
    )
    if row.state == OK:
        return [Span(text, PLAIN)]
    return [Span(cut(text, width).ljust(width), HOST_TROUBLE)]


def status_dots(states: Sequence[str], room: int) -> tuple[Spans, Spans]:
    """The node status dots in two lines of ``room`` cells (module header); their counts
    (``●98 ●1 ○1``) on the first line where the dots do not fit; nothing without room."""
    if room <= 0 or not states:
        return [], []
    if len(states) <= 2 * room:
        spans = [Span(NO_DOT if s == NO_DATA else DOT, DOT_STYLES[s]) for s in states]
        return spans[:room], spans[room:]
    counts = [(s, sum(1 for x in states if x == s)) for s in (OK, FAILING, NO_DATA)]
    spans = [Span(f"{NO_DOT if s == NO_DATA else DOT}{n} ", DOT_STYLES[s]) for s, n in counts if n]
    return (spans if sum(len(s.text) for s in spans) <= room else []), []


def dot_state(state: str) -> str:
    """A host state as its dot says it: reporting, failing or no data."""
    return state if state in (FAILING, NO_DATA) else OK


# --------------------------------------------------------------------------- filter and sort


@attrs.frozen
class Match:
    """The filter's text, lower case, and the matchers of the module header."""

    text: str

    def host(self, host: str, name: str) -> bool:
        return self.text in name.lower() or self.text in host.lower()

    def gpu(self, gpu: Gpu) -> bool:
        """The GPU itself: its name or its index (whole: ``3`` or ``gpu3``)."""
        index = gpu.detail.get("index", "").lower()
        whole = bool(index) and self.text in (index, f"gpu{index}")
        return whole or self.text in gpu.name.lower()

    def process(self, proc: GpuProcess) -> bool:
        """The process itself: its user or command."""
        command = proc.command or proc.process_name or ""
        return self.text in (proc.user or "").lower() or self.text in command.lower()

    def process_gpu(self, proc: GpuProcess) -> bool:
        """The process's GPU by index (``3`` or ``gpu3``)."""
        return self.text in (str(proc.device_id), f"gpu{proc.device_id}")


def matcher(text: str) -> Match | None:
    """None for an empty filter (everything is shown)."""
    text = text.strip().lower()
    return Match(text) if text else None


def gpu_key(how: str) -> Callable[[Gpu], tuple[bool, float]] | None:
    """The sort key of a GPU sort: ``util``: utilization, ``memory``: VRAM used, largest
    first, unknown last; None for ``default`` (frame order)."""
    if how == "util":
        return lambda g: _descending(g.utilization)
    if how == "memory":
        return lambda g: _descending(g.used_memory)
    return None


def sort_gpus(gpus: Sequence[Gpu], how: str) -> list[Gpu]:
    """:func:`gpu_key`'s order, ties in frame order."""
    key = gpu_key(how)
    return list(gpus) if key is None else sorted(gpus, key=key)


def sort_processes(processes: Sequence[GpuProcess], how: str) -> list[GpuProcess]:
    """``memory`` (the default): GPU memory; ``cpu``: CPU %, largest first (unknown last,
    ties in frame order); ``pid``: PID, smallest first."""
    if how == "pid":
        return sorted(processes, key=lambda p: p.pid)
    if how == "cpu":
        return sorted(processes, key=lambda p: _descending(p.cpu_percent))
    return by_gpu_memory(processes)
