"""Styled text and the row builders of the view (docs/architecture.md §6).

Rules this module obeys:
- Pure: the standard library and attrs only; no terminal, no clock.
- Every character a builder emits occupies exactly one terminal cell, so ``len(text)`` is
  its width. Text that comes from a frame (names, hosts, commands, errors) goes through
  :func:`clean` first, which replaces control, combining and East Asian wide characters.
- A reading that is ``None`` (or not finite) prints as ``N/A`` and draws an empty gauge;
  nothing here invents a 0.
- Builders return lists of spans of any length; :func:`fit` makes a line exactly ``width``
  cells wide (the view calls it once per visible line).
- A row names its host by the display name the caller passes in (one
  :class:`allsmi.domain.hosts.HostNames` per frame), never by its own ``hostname``: tabs
  and rows read the same.
- One unit system for every byte count on screen: binary, ``GiB`` (1024**3 bytes) and
  ``TiB`` (1024**4) — GPU memory, host memory, swap, disks, processes and the overview
  totals alike — since NVML and the kernel count bytes and a board's name is nearest its
  binary figure (an H100 80GB has 81559 MiB = 79.6 GiB). Only product names keep their own
  words (``H200 141GB HBM3`` is a name, not a reading).

The look follows all-smi's TUI (as on a 200-node cluster, docs/architecture.md §6): two
lines per GPU (identity and readings, then Util/Mem gauges coloured by level), then per host
CPU, memory and disk rows, and all-smi's ``PID USER … COMMAND`` process table.

Health (docs/recording-format.md §5.3.3): a GPU that is not nominal gets a third line,
``health: throttled: HW slowdown, SW thermal · XID 79 · ECC uncorrected 2 · row remap
pending`` (:func:`health_notes` decides, from the frame alone). Not nominal: a clock reason
that is a throttle at once (:data:`allsmi.domain.events.THROTTLE_REASONS`); a last XID seen
within :data:`HEALTH_XID_RECENT_MS` of the frame's time (a time after it counts as recent);
uncorrected ECC errors (a volatile total: they stay until the driver reloads); a remap pending
or failed. Not shown: the SW power cap (normal at full load, and one frame cannot tell that it
held: the ``throttle`` event says so), XID counts without a recent last XID (they are counts
since the recorder started: an XID of last week would stay on screen), corrected ECC, and
anything unknown. A nominal GPU, or one without ``health``, keeps its two lines.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Final, TypeAlias

import attrs

from allsmi.domain.events import throttle_names
from allsmi.domain.model import Cpu, Gpu, GpuProcess, Memory, Storage

COLOURS: Final = frozenset(("black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"))
_colour = attrs.validators.in_(COLOURS)


@attrs.frozen
class Style:
    fg: str = attrs.field(default="white", validator=_colour)
    bg: str | None = attrs.field(default=None, validator=attrs.validators.optional(_colour))
    bold: bool = False
    reverse: bool = False


@attrs.frozen
class Span:
    text: str  # single-cell characters only
    style: Style


StyledLine: TypeAlias = tuple[Span, ...]
Spans: TypeAlias = list[Span]  # a line before it is fitted to the width

PLAIN: Final = Style()
BOLD: Final = Style(bold=True)
CYAN: Final = Style(fg="cyan")
YELLOW: Final = Style(fg="yellow")
RED: Final = Style(fg="red")
GREEN: Final = Style(fg="green")
DIM: Final = Style(fg="white")  # the empty part of a gauge (░ is light by itself)
HEADER: Final = Style(fg="cyan", bold=True)
NO_DATA: Final = Style(fg="red")

GIB: Final = 1024**3
TIB: Final = 1024**4
FULL: Final = "█"
EMPTY: Final = "░"
CORE_BARS: Final = "▁▂▃▄▅▆▇█"
ELLIPSIS: Final = "…"
INDENT: Final = "    "
_VENDORS: Final = frozenset(("NVIDIA", "AMD", "Intel", "Intel(R)", "Apple"))


# --------------------------------------------------------------------------- text


def clean(text: str) -> str:
    """``text`` with every character that is not one printable terminal cell replaced by ?."""
    if text.isascii():
        return text if text.isprintable() else "".join(c if c.isprintable() else "?" for c in text)
    return "".join(c if _single_cell(c) else "?" for c in text)


@lru_cache(maxsize=4096)
def _single_cell(char: str) -> bool:
    return (
        char.isprintable()
        and unicodedata.east_asian_width(char) not in ("W", "F")
        and not unicodedata.category(char).startswith("M")
    )


def cut(text: str, cells: int) -> str:
    """``text`` in at most ``cells`` cells, an ellipsis marking what was cut."""
    if len(text) <= cells:
        return text
    return text[: cells - 1] + ELLIPSIS if cells > 1 else text[: max(cells, 0)]


def fit(spans: Iterable[Span], width: int) -> StyledLine:
    """Exactly ``width`` cells: spans past the edge are cut, a short line is padded."""
    out: list[Span] = []
    used = 0
    for span in spans:
        room = width - used
        if room <= 0:
            break
        text = span.text if len(span.text) <= room else span.text[:room]
        if text:
            out.append(span if text is span.text else Span(text, span.style))
            used += len(text)
    if used < width:
        out.append(Span(" " * (width - used), PLAIN))
    return tuple(out)


# --------------------------------------------------------------------------- numbers


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def pct(value: float | None) -> str:
    value = _finite(value)
    return "N/A" if value is None else f"{value:.1f}%"


def share(used: int | float | None, total: int | float | None) -> float | None:
    """``used`` as a percentage of ``total``; None when either is unknown or total is 0."""
    if used is None or total is None or total <= 0:
        return None
    return _finite(100.0 * used / total)


def _num(value: float | None, unit: float, digits: int) -> str:
    value = _finite(value)
    return "N/A" if value is None else f"{value / unit:.{digits}f}"


VRAM_WIDE: Final = 14  # cells of the GPU line's VRAM value, wide and compact
VRAM_COMPACT: Final = 11
# (digits of used, digits of total), most precise first: the total gives way first
_VRAM_DIGITS: Final = ((1, 1), (1, 0), (0, 0))


def vram(used: int | None, total: int | None, wide: bool) -> str:
    """``12.3/140.4 GiB`` (wide) or ``12.3/140GiB``, in GiB like every byte count here: the
    most precise form that fits the field (14 or 11 cells), the total losing its decimal
    first, then the used (``126.1/140.4 GiB`` → ``126.1/140 GiB``; ``126/140GiB``)."""
    if _finite(used) is None and _finite(total) is None:
        return "N/A"
    unit, cells = (" GiB", VRAM_WIDE) if wide else ("GiB", VRAM_COMPACT)
    text = ""
    for used_digits, total_digits in _VRAM_DIGITS:
        text = f"{_num(used, GIB, used_digits)}/{_num(total, GIB, total_digits)}{unit}"
        if len(text) <= cells:
            break
    return text


def binary_pair(used: float | None, total: float | None) -> str:
    """``1200.3/2048.0GiB`` or ``1.2/2.0TiB``: both in the unit the total reads best in."""
    if _finite(used) is None and _finite(total) is None:
        return "N/A"
    unit, name = (TIB, "TiB") if total is not None and total >= TIB else (GIB, "GiB")
    return f"{_num(used, unit, 1)}/{_num(total, unit, 1)}{name}"


def binary(value: float | None) -> str:
    unit, name = (TIB, "TiB") if value is not None and value >= TIB else (GIB, "GiB")
    return "N/A" if _finite(value) is None else f"{_num(value, unit, 1)}{name}"


def celsius(value: float | None) -> str:
    value = _finite(value)
    return "N/A" if value is None else f"{value:.0f}°C"


def ghz(mhz: int | None, wide: bool) -> str:
    return "N/A" if mhz is None else f"{mhz / 1000:.2f}{' GHz' if wide else 'GHz'}"


def watts(power: float | None, limit: float | None, wide: bool) -> str:
    """``450/700 W``; without a known limit just ``450 W``; no reading is ``N/A``."""
    text = _num(power, 1, 0)
    if _finite(limit) is not None:
        text += f"/{_num(limit, 1, 0)}"
    return text if text == "N/A" else text + (" W" if wide else "W")


def power_total(watt: float | None) -> str:
    watt = _finite(watt)
    if watt is None:
        return "N/A"
    return f"{watt / 1000:.1f}kW" if watt >= 1000 else f"{watt:.0f}W"


# --------------------------------------------------------------------------- gauges


def level_style(value: float | None) -> Style:
    """all-smi's gauge colours: green below 60 %, yellow below 85 %, red from 85 %."""
    if value is None:
        return DIM
    return GREEN if value < 60 else YELLOW if value < 85 else RED


def gauge(label: str, value: float | None, text: str, width: int) -> Spans:
    """``Util [████████░░░░] 45.2%`` in exactly ``width`` cells (``text`` as given)."""
    head, tail = f"{label} [", f"] {text}"
    bar = width - len(head) - len(tail)
    if bar < 2:
        return [Span(f"{label} {text}"[:width].ljust(width), CYAN)]
    value = _finite(value)
    filled = 0 if value is None else round(min(max(value, 0.0), 100.0) / 100 * bar)
    return [
        Span(head, CYAN),
        Span(FULL * filled, level_style(value)),
        Span(EMPTY * (bar - filled), DIM),
        Span(tail, PLAIN),
    ]


def two_gauges(left: Spans, right: Spans) -> Spans:
    return [Span(INDENT, PLAIN), *left, Span("  ", PLAIN), *right]


def halves(width: int) -> tuple[int, int]:
    """Widths of two gauges side by side after the indent and a two-cell gap."""
    room = max(width - len(INDENT) - 2, 0)
    return room // 2, room - room // 2


# --------------------------------------------------------------------------- layout


@attrs.frozen
class RowLayout:
    """Which form of the reading lines fits ``width`` (docs/architecture.md §6: 80×24)."""

    width: int
    wide: bool  # "Util: 45.2%" with spaces, else "Util:45.2%"
    freq: bool  # the GPU line has room for Freq
    ident: int  # cells for "<name> @ <host>"


# (label, cells of the value when wide, when compact, label style, is it the Freq field)
_GPU_FIELDS: Final = (
    ("Util", 6, 6, YELLOW, False),
    ("VRAM", VRAM_WIDE, VRAM_COMPACT, CYAN, False),
    ("Temp", 5, 5, YELLOW, False),
    ("Freq", 8, 7, YELLOW, True),
    ("Pwr", 10, 9, RED, False),
)
_TIERS: Final = ((True, True), (False, True), (False, False))  # (wide, freq), richest first
_IDENT_WANTED: Final = 28  # the richest tier that leaves this many cells for the identity
_IDENT_MIN: Final = 8
_IDENT_MAX: Final = 48


def _gpu_metrics_cells(wide: bool, freq: bool) -> int:
    pad = 4 if wide else 2  # "  Util: " or " Util:"
    return sum(
        len(label) + pad + (w if wide else c)
        for label, w, c, _, is_freq in _GPU_FIELDS
        if freq or not is_freq
    )


def row_layout(width: int, natural_ident: int) -> RowLayout:
    """The richest tier whose identity column still shows ``min(natural, 28)`` cells."""
    natural = min(max(natural_ident, _IDENT_MIN), _IDENT_MAX)
    wanted = min(natural, _IDENT_WANTED)
    fits = (t for t in _TIERS if width - 4 - _gpu_metrics_cells(*t) >= wanted)
    wide, freq = next(fits, _TIERS[-1])
    room = width - 4 - _gpu_metrics_cells(wide, freq)
    return RowLayout(width, wide, freq, min(max(room, _IDENT_MIN), natural))


def short_name(name: str) -> str:
    """``NVIDIA H200 141GB HBM3`` → ``H200 141GB HBM3``: the vendor word is dropped first."""
    first, _, rest = name.partition(" ")
    return rest if first in _VENDORS and rest else name


def ident(name: str, host: str, cells: int) -> Spans:
    """``<name> @ <host>`` in exactly ``cells`` cells; the name gives way before the host."""
    name, host = clean(name), clean(host)
    if len(name) + 3 + len(host) > cells:
        name = short_name(name)
    keep = cells - 3 - len(host)
    if keep < 4:
        return [Span(cut(host, cells).ljust(cells), PLAIN)]
    name = cut(name, keep)
    return [Span(name, PLAIN), Span(" @ ", YELLOW), Span(host.ljust(cells - len(name) - 3), PLAIN)]


Field: TypeAlias = tuple[str, str, int, Style, Style]  # label, value, cells, their styles


def field(label: str, value: str, cells: int, style: Style, value_style: Style = PLAIN) -> Field:
    return (label, value, cells, style, value_style)


def fields(layout: RowLayout, items: Iterable[Field]) -> Spans:
    """``  Util: 45.2%`` (wide) or `` Util:45.2%``, the value right-aligned in its cells."""
    out: Spans = []
    for label, value, cells, style, value_style in items:
        out.append(Span(f"  {label}: " if layout.wide else f" {label}:", style))
        out.append(Span(value.rjust(cells), value_style))
    return out


def device(kind: str) -> Span:
    return Span(f"{cut(clean(kind), 3):<4}", CYAN)


def gpu_index(gpu: Gpu) -> Span:
    """The GPU's index on its host (what the process table's GPU column names)."""
    index = gpu.detail.get("index", "")
    return Span(f"{cut(clean(index), 2):<3}" if index else "", CYAN)


# --------------------------------------------------------------------------- GPU rows


def _temp_style(gpu: Gpu) -> Style:
    """all-smi: yellow within 5 °C of the slowdown threshold, red within 2 of shutdown."""
    temp = gpu.temperature
    if temp is None:
        return PLAIN
    shutdown, slowdown = gpu.temperature_threshold_shutdown, gpu.temperature_threshold_slowdown
    if shutdown is not None and temp >= shutdown - 2:
        return RED
    return YELLOW if slowdown is not None and temp >= slowdown - 5 else PLAIN


def gpu_lines(
    gpu: Gpu, layout: RowLayout, host: str, energy: str | None = None
) -> tuple[Spans, Spans]:
    """Identity (``<name> @ <host>``) and readings, then the Util and Mem gauges;
    ``energy`` (its text, :mod:`allsmi.domain.energy`) ends the first line where the row
    has room for it (200 columns do, 80 do not)."""
    wide = layout.wide
    values = (
        pct(gpu.utilization),
        vram(gpu.used_memory, gpu.total_memory, wide),
        celsius(gpu.temperature),
        ghz(gpu.frequency, wide),
        watts(gpu.power_consumption, gpu.power_limit, wide),
    )
    items = (
        field(label, value, w if wide else c, style, _temp_style(gpu) if label == "Temp" else PLAIN)
        for (label, w, c, style, is_freq), value in zip(_GPU_FIELDS, values, strict=True)
        if layout.freq or not is_freq
    )
    index = gpu_index(gpu)  # room taken from the name, so the readings keep their place
    first = [
        device(gpu.device_type),
        index,
        *ident(gpu.name, host, max(8, layout.ident - len(index.text))),
    ]
    first += fields(layout, items)
    if energy is not None:
        extra = fields(layout, [field("Enrg", energy, 9, GREEN)])
        if sum(len(span.text) for span in (*first, *extra)) <= layout.width:
            first += extra
    left, right = halves(layout.width)
    mem_text = vram(gpu.used_memory, gpu.total_memory, False).rjust(VRAM_COMPACT)
    second = two_gauges(
        gauge("Util", gpu.utilization, pct(gpu.utilization).rjust(6), left),
        gauge("Mem ", share(gpu.used_memory, gpu.total_memory), mem_text, right),
    )
    return first, second


HEALTH_XID_RECENT_MS: Final = 10 * 60_000  # a last XID this recent is on the health line
HEALTH_SEP: Final = " · "


def health_notes(gpu: Gpu, t_ms: int | None) -> tuple[str, ...]:
    """What is not nominal about ``gpu`` in a frame at ``t_ms`` (module header: Health), in
    the health line's order; () when nothing is (or nothing is known)."""
    health = gpu.health
    if health is None:
        return ()
    notes: list[str] = []
    if health.clock_events and (names := throttle_names(health.clock_events)):
        notes.append("throttled: " + ", ".join(names))
    code, at = health.last_xid, health.last_xid_ms
    recent = at is not None and t_ms is not None and t_ms - at <= HEALTH_XID_RECENT_MS
    if code is not None and code > 0 and recent:
        notes.append(f"XID {code}")
    uncorrected = health.ecc_uncorrected
    if uncorrected is not None and uncorrected > 0:
        notes.append(f"ECC uncorrected {uncorrected:,}")
    if health.remap_failure:
        notes.append("row remap failed")
    elif health.remap_pending:
        notes.append("row remap pending")
    return tuple(notes)


def health_line(notes: Sequence[str]) -> Spans:
    """The line under a GPU that is not nominal: ``health: …`` (:func:`health_notes`)."""
    return [Span(f"{INDENT}health: ", YELLOW), Span(clean(HEALTH_SEP.join(notes)), RED)]


# --------------------------------------------------------------------------- host rows


def core_lines_count(cpu: Cpu, width: int) -> int:
    """Per-core bars take one or two lines when they fit, else none."""
    cores = len(cpu.per_core_utilization)
    per_line = width - len(INDENT) - 6
    if cores == 0 or per_line < 8:
        return 0
    lines = -(-cores // per_line)
    return lines if lines <= 2 else 0


def cpu_height(cpu: Cpu, width: int) -> int:
    return 2 + core_lines_count(cpu, width)


def cpu_lines(cpu: Cpu, layout: RowLayout, host: str) -> list[Spans]:
    """Identity and readings, the utilization gauge, then one bar per core."""
    wide = layout.wide
    cores = f"{cpu.total_cores if cpu.total_cores is not None else 'N/A'}"
    if cpu.total_threads is not None:
        cores += f"/{cpu.total_threads}"
    items = [
        field("Util", pct(cpu.utilization), 6, YELLOW),
        field("Cores", cores, 7, CYAN),
        field("Freq", ghz(cpu.current_frequency_mhz, wide), 8 if wide else 7, YELLOW),
        field("Temp", celsius(cpu.temperature), 5, YELLOW),
    ]
    name = cpu.cpu_model or "CPU"
    lines = [[device("CPU"), *ident(name, host, layout.ident), *fields(layout, items)]]
    util = gauge("CPU ", cpu.utilization, pct(cpu.utilization).rjust(6), layout.width - 4)
    lines.append([Span(INDENT, PLAIN), *util])
    return lines + _core_bars(cpu, layout.width)


def _core_bar(value: float | None) -> str:
    value = _finite(value)
    if value is None:
        return "."
    return CORE_BARS[min(int(max(value, 0.0) / 100 * len(CORE_BARS)), len(CORE_BARS) - 1)]


def _core_bars(cpu: Cpu, width: int) -> list[Spans]:
    count = core_lines_count(cpu, width)
    if count == 0:
        return []
    per_line = width - len(INDENT) - 6
    bars = "".join(_core_bar(core.utilization) for core in cpu.per_core_utilization)
    labels = ("Core  ", "      ")
    return [
        [
            Span(INDENT + labels[min(i, 1)], CYAN),
            Span(bars[i * per_line : (i + 1) * per_line], GREEN),
        ]
        for i in range(count)
    ]


def memory_lines(memory: Memory, layout: RowLayout, host: str) -> list[Spans]:
    """Totals, then the memory gauge and, when the host has swap, the swap gauge beside it."""
    items = [
        field("Total", binary(memory.total_bytes), 9, CYAN),
        field("Used", binary(memory.used_bytes), 9, RED),
        field("Avail", binary(memory.available_bytes), 9, GREEN),
        field("Util", pct(_memory_share(memory)), 6, YELLOW),
    ]
    if not layout.freq:  # the narrow tier: Avail is Total - Used, near enough
        del items[2]
    head = [device("MEM"), *ident("Host memory", host, layout.ident)]
    return [head + fields(layout, items), _memory_gauges(memory, layout.width)]


def _memory_gauges(memory: Memory, width: int) -> Spans:
    used, total = memory.used_bytes, memory.total_bytes
    swap_used, swap_total = memory.swap_used_bytes, memory.swap_total_bytes
    if not swap_total:
        mem = gauge("Mem ", share(used, total), binary_pair(used, total), width - len(INDENT))
        return [Span(INDENT, PLAIN), *mem]
    left, right = halves(width)
    mem = gauge("Mem ", share(used, total), binary_pair(used, total), left)
    swap = gauge("Swap", share(swap_used, swap_total), binary_pair(swap_used, swap_total), right)
    return two_gauges(mem, swap)


def _memory_share(memory: Memory) -> float | None:
    if memory.utilization is not None:
        return memory.utilization
    return share(memory.used_bytes, memory.total_bytes)


def disk_line(disk: Storage, width: int) -> Spans:
    """``    Disk /data        [███░░░] 2.2/12.0TiB``: one line per mounted filesystem."""
    total, free = disk.total_bytes, disk.available_bytes
    used = None if total is None or free is None else total - free
    label = f"Disk {cut(clean(disk.mount_point), 12):<12} "
    text = binary_pair(used, total)
    room = max(width - len(INDENT) - len(label), 0)
    return [Span(INDENT, PLAIN), Span(label, CYAN), *gauge("", share(used, total), text, room)]


def no_data_line(host: str) -> Spans:
    return [Span(f"{clean(host)}: no data", NO_DATA)]


# --------------------------------------------------------------------------- processes


def process_header(with_host: bool) -> Spans:
    host = f"{'HOST':<16} " if with_host else ""
    text = f"{host}{'PID':>8} {'USER':<10} {'GPU':>3} {'VRAM':>9} {'CPU%':>5} {'MEM%':>5}  COMMAND"
    return [Span(text, HEADER)]


def process_line(proc: GpuProcess, host: str | None) -> Spans:
    """One GPU process, all-smi's columns, led by ``host`` unless it is None (one host on
    screen); unknown readings are ``N/A``."""
    column = f"{cut(clean(host), 16):<16} " if host is not None else ""
    user = cut(clean(proc.user or "N/A"), 10)
    cpu, mem = _num(proc.cpu_percent, 1, 1), _num(proc.memory_percent, 1, 1)
    command = clean(proc.command or proc.process_name or "N/A")
    memory = f"{_num(proc.used_memory, GIB, 1)}GiB" if proc.used_memory is not None else "N/A"
    text = f"{column}{proc.pid:>8} {user:<10} {proc.device_id:>3} {memory:>9} {cpu:>5} {mem:>5}  "
    return [Span(text, PLAIN), Span(command, PLAIN)]


WORKLOAD_KEYS: Final = ("namespace", "pod", "container")  # a GPU's detail, from dcgm-exporter


def workload_header(with_host: bool) -> Spans:
    host = f"{'HOST':<16} " if with_host else ""
    return [Span(f"{host}{'GPU':>3}  {'WORKLOAD (namespace/pod)':<40} CONTAINER", HEADER)]


def workload_line(gpu: Gpu, host: str | None) -> Spans | None:
    """The workload a GPU's exporter names (Kubernetes pod labels of dcgm-exporter, kept in
    ``detail``), led by ``host`` unless it is None; None when it names none."""
    detail = gpu.detail
    pod = detail.get("pod")
    if not pod:
        return None
    namespace, container = detail.get("namespace"), detail.get("container")
    column = f"{cut(clean(host), 16):<16} " if host is not None else ""
    where = cut(clean(f"{namespace}/{pod}" if namespace else pod), 40)
    index = cut(clean(detail.get("index", "?")), 3)
    return [Span(f"{column}{index:>3}  {where:<40} {clean(container or '-')}", PLAIN)]


def by_gpu_memory(processes: Iterable[GpuProcess]) -> list[GpuProcess]:
    """Largest GPU memory first; processes without a reading last, in frame order."""
    return sorted(processes, key=lambda p: -1 if p.used_memory is None else -p.used_memory)


# --------------------------------------------------------------------------- cluster overview


def _known(values: Iterable[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _stdev(values: Sequence[float]) -> float | None:
    """Population standard deviation (all-smi's "Temp. Stdev"), in one pass over floats."""
    mean = _mean(values)
    if mean is None:
        return None
    return math.sqrt(max(sum(v * v for v in values) / len(values) - mean * mean, 0.0))


def _sum(values: Sequence[float]) -> float | None:
    return sum(values) if values else None


def _card(label: str, value: str) -> Spans:
    return [Span(f"{label} ", CYAN), Span(value, BOLD), Span("  ", PLAIN)]


def overview_lines(gpus: Sequence[Gpu], cpus: Sequence[Cpu], memory: Sequence[Memory],
                   nodes: tuple[int, int]) -> tuple[Spans, Spans]:  # fmt: skip
    """all-smi's Cluster Overview cards in two lines: nodes (reporting/total), GPUs, average
    utilization, VRAM, host RAM; temperature (mean ± stdev), power (total and per GPU), CPU."""
    powers = _known(g.power_consumption for g in gpus)
    temps = _known(g.temperature for g in gpus)
    spread = _stdev(temps)
    cores = _known(c.total_cores for c in cpus)
    vram_used = _sum(_known(g.used_memory for g in gpus))
    vram_total = _sum(_known(g.total_memory for g in gpus))
    ram_used = _sum(_known(m.used_bytes for m in memory))
    first = [
        *_card("Nodes", f"{nodes[0]}/{nodes[1]}"),
        *_card("GPUs", str(len(gpus))),
        *_card("GPU Util", pct(_mean(_known(g.utilization for g in gpus)))),
        *_card("VRAM", binary_pair(vram_used, vram_total)),
        *_card("RAM", binary_pair(ram_used, _sum(_known(m.total_bytes for m in memory)))),
    ]
    temp = celsius(_mean(temps)) + ("" if spread is None else f" ±{spread:.1f}°C")
    cpu_util = pct(_mean(_known(c.utilization for c in cpus)))
    second = [
        *_card("Temp", temp),
        *_card("Power", f"{power_total(_sum(powers))} avg {power_total(_mean(powers))}"),
        *_card("CPU", f"{cpu_util} of {sum(cores):.0f} cores" if cores else cpu_util),
    ]
    return first, second
