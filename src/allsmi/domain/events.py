"""Events of a recording: the transitions an operator looks for, detected from consecutive
frames. Pure: the same function live, in the recorder and in replay.

A :class:`Detector` is fed frames in time order (:meth:`Detector.feed`) and answers the events
each frame *confirms*, each stamped at its *onset*, the first frame showing the condition,
even when confirming it needs later frames (so an answer may be stamped before the frame
fed; each answer is ordered by time). :meth:`Detector.finish` ends a recording: what is
pending and confirmed by then. :meth:`Detector.feed_readings` is :meth:`~Detector.feed` given
only what detection reads of a frame (:class:`GpuReading` rows, the host ids present, the
errors), for a scan that builds no frame. :func:`detect` is a fresh detector over all frames, its
events ordered by time. State is bounded per host and per GPU; work per frame is linear in
its rows. Every threshold is a field of :data:`THRESHOLDS` (:class:`Thresholds`); noise that
never crosses them yields no events.

An :class:`Event` has a time, a host id (None for the recording as a whole or the local
collector), a GPU (its ``detail["index"]``, else its uuid; None when the event is about no
one GPU), a kind and a one-line message. The kinds:

==================  ============================================================================
kind                when
==================  ============================================================================
``host-lost``       a host that was reporting stops: no rows in a frame that collected any
                    per-host section, or an error naming it
``host-back``       a lost host reports again
``flapping``        a host lost again within ``flap_intervals`` of its last ``host-lost``: no
                    lost/back until its state holds for ``flap_intervals``; then the state it
                    settled in is reported (``host-lost`` or ``host-back``, stamped when it
                    settled) unless already reported
``errors``          a host (or the local collector, host None) gains an error of a kind it had
                    not had since its errors began
``errors-cleared``  a host with errors has none for ``errors_clear_frames`` frames in a row
                    (stamped at the first of them)
``util-drop``       a GPU's utilization falls from ≥ ``util_busy_pct`` to ≤ ``util_idle_pct``
                    and stays there ≥ ``util_idle_ms``; the message says "idle but
                    allocated" when its memory stayed ≥ ``idle_allocated_permyriad``
``util-back``       a dropped GPU is at ≥ ``util_busy_pct`` again
``temp-warn``       a GPU's temperature level changes to: ≥ slowdown − ``temp_warn_c``;
``temp-slowdown``   ≥ the slowdown threshold; ``temp-crit``: ≥ shutdown − ``temp_crit_c``;
``temp-crit``       ``temp-ok``: below warn. A level is left downwards only once the reading
``temp-ok``         is ``temp_hysteresis_c`` below it. The first reading is compared with ok.
``power-drop``      a host's total GPU power falls by ≥ ``power_drop_share`` and by ≥
                    ``power_drop_w_per_gpu`` × its GPUs from its highest in the last
                    ``power_window_ms``; stamped at the first frame past them, answered
                    (with the fall to its lowest) by the first frame that falls no further
``gap``             no frame for over ``gap_intervals`` × the interval (the rule ``verify``
                    uses); gaps less than ``gap_merge_ms`` apart are one event, stamped at the
                    frame before the first and answered once no gap follows within it
``restart``         a segment's header names a recorder start time (``started_ms``) other than
                    the one before it (:meth:`Detector.segment`; stamped at the new start).
                    One run's segments share it (rotation reuses the header); a header
                    without it (older files, all-smi's) says nothing
``throttle``        a GPU's clocks are held down (its ``health.clock_events``): HW slowdown, HW
                    thermal, HW power brake or SW thermal at once; SW power cap only once it
                    has held for ``throttle_power_cap_ms`` (stamped at its onset); idle,
                    application clocks, sync boost and display clock never. The message
                    names the reasons (``throttled: HW slowdown, SW thermal``)
``throttle-end``    a throttled GPU reads none of them (SW power cap: not held) again
``xid``             a GPU's XID seen: a count of ``health.xid_counts`` grew (one event per
                    code), or, without counts, ``last_xid`` (or its ``last_xid_ms``) changed
                    (dcgm-exporter's gauge: repeats of one code are invisible there).
                    ``XID 79 (GPU has fallen off the bus)``: :data:`XID_NAMES`
``ecc``             a GPU's ECC total (``ecc_uncorrected``, ``ecc_corrected``) grew: the
                    increase and the total
``remap``           a GPU's remapped rows grew, or ``remap_pending`` or ``remap_failure``
                    became true
==================  ============================================================================

Readings. ``None``, NaN, ±infinity and negative values are no reading (all-smi's ``-1``;
:func:`allsmi.domain.summary.known`); so are a temperature, a temperature threshold or a
power of 0 or less (all-smi's ``0`` sentinel: no working GPU reads 0 °C or 0 W). A missing
reading, or a GPU without a row, neither extends nor breaks anything: a utilization window
is measured between known readings, a host's power is compared only over frames in which the
same number of its GPUs read power. One row per GPU key ``(host_id, uuid)`` per frame (the
first).

Health (docs/recording-format.md §5.3.3). A GPU row without ``health``, or a field of it
``None`` (or a negative count), is unknown: it neither starts nor ends anything, and the
next known reading is compared with the last known one. A count is compared only with an
earlier known count of the same GPU (its first is the baseline: what happened before the
detector started is no event); a count that went down is a counter that restarted (a driver
reload, a new recorder): the new baseline, no event (for ``xid_counts``, any code down or
gone). ``remap_pending``/``remap_failure`` and the clock reasons are compared with nominal at
the first reading. A throttle's reasons are those of its onset; a reason joining an open
throttle is no new event. Health state is kept per GPU key only for GPUs read with
``health``, and dropped when a frame has rows of the GPU's host but none of the GPU (it
disappeared: if it comes back, it starts afresh); a GPU without ``health`` costs one
attribute test per frame.

The interval is the one given (a header's ``interval_ms``), else the median of the last
``interval_window`` spacings between frames (including the newest), as ``verify`` takes the
median when there is no header.

Hosts (docs/recording-format.md §12; :mod:`allsmi.domain.hosts`). Hosts are ids. A host is
known once expected (given at construction) or seen with rows; it can be lost only after it
has reported. A frame that collected no per-host section at all (an errors-only frame
standing for a damaged line) says nothing about hosts. In all-smi's files, which drop failed
hosts and write no errors, missing rows alone make a host lost.

Errors (docs/recording-format.md §5.10). An entry is ``"<who>: <what>"`` and is never parsed:
it names a known host when its text before the first ``": "`` is the host's scrape target
(:func:`allsmi.domain.summary.error_host`), else it is the local collector's (host None). Its
*kind* is what :func:`error_kind` finds in the text, and errors are compared by host and kind,
never by exact text (``timeout`` and ``HTTP 503`` alternating are two kinds, each an event
once). :func:`error_kind`, first match wins:

- ``HTTP <code>``: ``HTTP`` and a three-digit status (``HTTP 503``);
- ``NVML <name or code>``: ``NVML_ERROR_<NAME>`` → ``NVML <NAME>``; pynvml's ``NVML Error with
  code <n>`` → ``NVML <n>``; text ending in ``": "`` and one of NVML's error strings (``GPU is
  lost`` → ``NVML GPU_IS_LOST``, :data:`NVML_ERRORS`);
- ``timeout``: ``timeout``, ``timed out`` or ``no answer within``;
- ``refused``: ``refused``;
- ``parse``: ``invalid``, ``parse``, ``not utf-8``, ``json`` or ``bad http answer``;
- ``other``: anything else.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from operator import attrgetter
from typing import Final

import attrs

from allsmi.domain.model import HOST_SECTION_ATTRS, Frame, Gpu, GpuHealth, Header
from allsmi.domain.parse import format_gap
from allsmi.domain.summary import error_host, permyriad

HOST_LOST: Final = "host-lost"
HOST_BACK: Final = "host-back"
FLAPPING: Final = "flapping"
ERRORS: Final = "errors"
ERRORS_CLEARED: Final = "errors-cleared"
UTIL_DROP: Final = "util-drop"
UTIL_BACK: Final = "util-back"
TEMP_OK: Final = "temp-ok"
TEMP_WARN: Final = "temp-warn"
TEMP_SLOWDOWN: Final = "temp-slowdown"
TEMP_CRIT: Final = "temp-crit"
POWER_DROP: Final = "power-drop"
GAP: Final = "gap"
RESTART: Final = "restart"
THROTTLE: Final = "throttle"
THROTTLE_END: Final = "throttle-end"
XID: Final = "xid"
ECC: Final = "ecc"
REMAP: Final = "remap"
KINDS: Final = (
    HOST_LOST,
    HOST_BACK,
    FLAPPING,
    ERRORS,
    ERRORS_CLEARED,
    UTIL_DROP,
    UTIL_BACK,
    TEMP_OK,
    TEMP_WARN,
    TEMP_SLOWDOWN,
    TEMP_CRIT,
    POWER_DROP,
    GAP,
    RESTART,
    THROTTLE,
    THROTTLE_END,
    XID,
    ECC,
    REMAP,
)
# Temperature levels, by number: the event kind entering each, and its name in messages.
_TEMP_KINDS: Final = (TEMP_OK, TEMP_WARN, TEMP_SLOWDOWN, TEMP_CRIT)
_TEMP_NAMES: Final = ("ok", "warn", "slowdown", "crit")

# Clock event reasons (docs/recording-format.md §5.3.3) that are a throttle at once, in bit
# order, and how messages name them; SW power cap only once held (Thresholds), the others
# (gpu_idle, applications_clocks, sync_boost, display_clock) never.
THROTTLE_REASONS: Final[Mapping[str, str]] = {
    "hw_slowdown": "HW slowdown",
    "sw_thermal": "SW thermal",
    "hw_thermal": "HW thermal",
    "hw_power_brake": "HW power brake",
}
POWER_CAP: Final = "sw_power_cap"
POWER_CAP_NAME: Final = "SW power cap"
# XID codes operators look for, by NVIDIA's XID catalogue: the name a message gives them.
XID_NAMES: Final[Mapping[int, str]] = {
    13: "graphics engine exception",
    31: "GPU memory page fault",
    43: "GPU stopped processing",
    45: "preemptive cleanup",
    48: "double-bit ECC error",
    63: "row remapping event",
    64: "row remapping failure",
    74: "NVLink error",
    79: "GPU has fallen off the bus",
    92: "high single-bit ECC rate",
    94: "contained ECC error",
    95: "uncontained ECC error",
    119: "GSP error",
    120: "GSP error",
}
_XID_BY_TEXT: Final = {str(code): name for code, name in XID_NAMES.items()}


def throttle_names(reasons: Iterable[str]) -> list[str]:
    """The names of the reasons among ``reasons`` that are a throttle at once, in bit order
    (:data:`THROTTLE_REASONS`)."""
    active = set(reasons)
    return [name for reason, name in THROTTLE_REASONS.items() if reason in active]


def xid_text(code: int | str, times: int = 1) -> str:
    """``XID 79 (GPU has fallen off the bus)``, ``XID 79 ×2 (…)`` seen ``times`` times; a
    code :data:`XID_NAMES` does not name is just its number (``XID 7``)."""
    text = _one_line(str(code), 20)
    said = f"XID {text} ×{times}" if times > 1 else f"XID {text}"
    name = _XID_BY_TEXT.get(text)
    return f"{said} ({name})" if name is not None else said


@attrs.frozen
class Thresholds:
    """Every threshold of detection, in one table (module header)."""

    util_busy_pct: float = 30.0  # a GPU at least this busy is busy (armed for a drop)
    util_idle_pct: float = 5.0  # a busy GPU that falls to this or lower is idle
    util_idle_ms: int = 30_000  # ... for at least this long: util-drop
    idle_allocated_permyriad: int = 1_000  # GPU memory held while idle: "idle but allocated"
    temp_warn_c: int = 5  # warn at slowdown threshold − this
    temp_crit_c: int = 2  # crit at shutdown threshold − this
    temp_hysteresis_c: int = 2  # a level is left downwards this far below it
    power_drop_share: float = 0.40  # a host's GPU power falls by this share...
    power_drop_w_per_gpu: float = 50.0  # ...and by this many W per GPU...
    power_window_ms: int = 30_000  # ...from its highest within this long
    gap_intervals: int = 2  # no frame for over this many intervals: a gap
    gap_merge_ms: int = 60_000  # gaps less than this apart are one event
    flap_intervals: int = 10  # one lost/back pair per this many intervals, else flapping
    errors_clear_frames: int = 3  # frames without an error of a host: errors-cleared
    interval_window: int = 31  # spacings whose median is the interval when none is given
    throttle_power_cap_ms: int = 30_000  # SW power cap held this long: a throttle


THRESHOLDS: Final = Thresholds()


@attrs.frozen
class Event:
    """One transition: when (its onset, ms since the epoch), where, what."""

    t_ms: int
    host: str | None  # host id; None: the recording as a whole, or the local collector
    gpu: str | None  # the GPU's detail["index"], else its uuid; None: no one GPU
    kind: str  # one of KINDS
    message: str  # one line


# --- error kinds ----------------------------------------------------------------------------

# NVML's error strings (nvmlErrorString) → the names of their NVML_ERROR_* codes.
NVML_ERRORS: Final = {
    "uninitialized": "UNINITIALIZED",
    "invalid argument": "INVALID_ARGUMENT",
    "not supported": "NOT_SUPPORTED",
    "insufficient permissions": "NO_PERMISSION",
    "already initialized": "ALREADY_INITIALIZED",
    "not found": "NOT_FOUND",
    "insufficient size": "INSUFFICIENT_SIZE",
    "insufficient external power": "INSUFFICIENT_POWER",
    "driver not loaded": "DRIVER_NOT_LOADED",
    "timeout": "TIMEOUT",
    "interrupt request issue": "IRQ_ISSUE",
    "nvml shared library not found": "LIBRARY_NOT_FOUND",
    "function not found": "FUNCTION_NOT_FOUND",
    "corrupted inforom": "CORRUPTED_INFOROM",
    "gpu is lost": "GPU_IS_LOST",
    "gpu requires restart": "RESET_REQUIRED",
    "insufficient memory": "MEMORY",
    "no data": "NO_DATA",
    "unknown error": "UNKNOWN",
}
_HTTP: Final = re.compile(r"\bHTTP (\d{3})\b")
_NVML_NAME: Final = re.compile(r"NVML_ERROR_([A-Z_]+)")
_NVML_CODE: Final = re.compile(r"NVML Error with code (-?\d+)")
_TIMEOUT: Final = ("timeout", "timed out", "no answer within")
_PARSE: Final = ("invalid", "parse", "not utf-8", "json", "bad http answer")
_KIND_CACHE_MAX: Final = 1024
_INF: Final = math.inf


def error_kind(text: str) -> str:
    """The kind of an ``errors`` entry (module header): ``HTTP 503``, ``NVML GPU_IS_LOST``,
    ``timeout``, ``refused``, ``parse`` or ``other``."""
    if found := _HTTP.search(text):
        return f"HTTP {found.group(1)}"
    if found := _NVML_NAME.search(text):
        return f"NVML {found.group(1)}"
    if found := _NVML_CODE.search(text):
        return f"NVML {found.group(1)}"
    lower = text.lower()
    _, sep, last = lower.rpartition(": ")
    if sep and (name := NVML_ERRORS.get(last.strip().rstrip("."))) is not None:
        return f"NVML {name}"
    if any(word in lower for word in _TIMEOUT):
        return "timeout"
    if "refused" in lower:
        return "refused"
    if any(word in lower for word in _PARSE):
        return "parse"
    return "other"


def _one_line(text: str, limit: int = 120) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _pct(value: float) -> str:
    return f"{value:.0f}%"


# --- per-host and per-GPU state -------------------------------------------------------------


class _HostState:
    """Whether a host reports, what was said of it, and whether it flaps."""

    __slots__ = ("changed_at", "down", "flapping", "lost_at", "reported_down")

    def __init__(self, t_ms: int) -> None:
        self.down = False  # as the latest frame judging hosts shows it
        self.changed_at = t_ms  # when ``down`` last changed
        self.reported_down = False  # what the last host-lost / host-back said
        self.lost_at: int | None = None  # onset of the last host-lost said


class _ErrorState:
    """A host's (or the collector's) errors since they began."""

    __slots__ = ("clean", "clean_since", "kinds")

    def __init__(self) -> None:
        self.kinds: set[str] = set()
        self.clean = 0  # frames in a row without an error of it
        self.clean_since = 0


class _GpuState:
    """One GPU's utilization window and temperature level."""

    __slots__ = (
        "busy",
        "dropped_at",
        "health",
        "label",
        "last_t",
        "level",
        "low",
        "low_from",
        "low_since",
        "mem_min",
        "shut",
        "slow",
        "stay_hi",
        "stay_lo",
    )

    def __init__(self, gpu: GpuRow) -> None:
        self.label = gpu.detail.get("index") or gpu.uuid
        self.last_t: int | None = None  # the frame whose row was read (first row per frame)
        self.busy = -1.0  # the last busy reading since it was last idle, else −1 (no fall)
        self.low_from = 0.0  # the busy reading an idle window fell from
        self.low_since: int | None = None  # onset of the idle window being confirmed
        self.low = 0.0  # the last idle reading
        self.mem_min: int | None = None  # least memory share (permyriad) read in the window
        self.dropped_at: int | None = None  # onset of the util-drop said, until util-back
        self.level = 0  # temperature level (_TEMP_KINDS)
        # The readings that keep ``level`` (stay_lo ≤ reading < stay_hi) under the thresholds
        # ``slow``/``shut``: outside it, or with other thresholds, the level is judged again.
        self.stay_lo: float = _INF
        self.stay_hi: float = -_INF
        self.slow: int | None = None
        self.shut: int | None = None
        self.health: _HealthState | None = None  # once read with health (module header)


class _HealthState:
    """One GPU's health as last known: its throttle, the SW power cap being held, and the
    last known counts and flags (None: none known yet)."""

    __slots__ = (
        "cap_since",
        "ecc_corrected",
        "ecc_uncorrected",
        "remap_failure",
        "remap_pending",
        "rows_correctable",
        "rows_uncorrectable",
        "throttle_since",
        "xid",
        "xid_counts",
        "xid_ms",
    )

    def __init__(self) -> None:
        self.throttle_since: int | None = None  # onset of the throttle said, until its end
        self.cap_since: int | None = None  # onset of the SW power cap read since
        self.ecc_corrected: int | None = None
        self.ecc_uncorrected: int | None = None
        self.rows_correctable: int | None = None
        self.rows_uncorrectable: int | None = None
        self.remap_pending = False
        self.remap_failure = False
        self.xid_counts: Mapping[str, int] | None = None
        self.xid: int | None = None  # last_xid (0: dcgm's gauge before any XID)
        self.xid_ms: int | None = None


def _count(value: int | None) -> int | None:
    """A count as detection reads it: a negative one (a sentinel) is no reading."""
    return value if value is not None and value >= 0 else None


class _HostGpus:
    """A host's GPUs, and its GPU power: the highest totals of the window, falling (a sliding
    maximum), compared over frames in which as many of its GPUs read power."""

    __slots__ = ("count", "fall", "gpus", "peaks", "t", "total", "window_gpus")

    def __init__(self) -> None:
        self.gpus: dict[str, _GpuState] = {}  # by uuid
        self.t: int | None = None  # the frame ``total`` and ``count`` sum
        self.total = 0.0  # W, Σ power of the GPUs reading it in frame ``t``
        self.count = 0  # GPUs reading power in frame ``t``
        self.window_gpus = 0  # GPUs reading power in the frames of ``peaks``
        self.peaks: deque[tuple[int, float]] = deque()  # (t, total), totals falling
        # A power-drop being followed to its lowest: (onset, peak, when, lowest, when).
        self.fall: tuple[int, float, int, float, int] | None = None


_HOST_ID: Final = attrgetter("host_id")


class GpuReading:
    """What detection reads of one GPU row, without the rest of it: a scan that feeds
    :meth:`Detector.feed_readings` builds these instead of :class:`Gpu` (the same fields,
    the same values)."""

    __slots__ = (
        "detail",
        "health",
        "host_id",
        "power_consumption",
        "temperature",
        "temperature_threshold_shutdown",
        "temperature_threshold_slowdown",
        "total_memory",
        "used_memory",
        "utilization",
        "uuid",
    )

    def __init__(
        self,
        uuid: str,
        host_id: str,
        utilization: float | None,
        temperature: int | None,
        used_memory: int | None,
        total_memory: int | None,
        power_consumption: float | None,
        temperature_threshold_slowdown: int | None,
        temperature_threshold_shutdown: int | None,
        detail: Mapping[str, str],
        health: GpuHealth | None = None,
    ) -> None:
        self.uuid = uuid
        self.host_id = host_id
        self.utilization = utilization
        self.temperature = temperature
        self.used_memory = used_memory
        self.total_memory = total_memory
        self.power_consumption = power_consumption
        self.temperature_threshold_slowdown = temperature_threshold_slowdown
        self.temperature_threshold_shutdown = temperature_threshold_shutdown
        self.detail = detail
        self.health = health


GpuRow = Gpu | GpuReading  # a GPU as detection reads it


class Detector:
    """Detection over consecutive frames (module header). Feed frames in time order."""

    def __init__(
        self,
        expected_hosts: Iterable[str] = (),
        interval_ms: int | None = None,
        thresholds: Thresholds = THRESHOLDS,
    ) -> None:
        self.thresholds = thresholds
        self.interval_ms = interval_ms if interval_ms is not None and interval_ms > 0 else None
        self._known: set[str] = set(expected_hosts)  # expected, or seen with rows
        self._hosts: dict[str, _HostState] = {}  # hosts that have reported
        self._up: set[str] = set()
        self._down: set[str] = set()
        self._flapping: set[str] = set()
        self._errors: dict[str | None, _ErrorState] = {}
        self._gpus: dict[str, _HostGpus] = {}
        self._health: dict[tuple[str, str], _GpuState] = {}  # GPUs read with health
        self._falling: set[str] = set()  # hosts whose power-drop is being followed
        self._last_t: int | None = None
        self._spacings: deque[int] = deque(maxlen=thresholds.interval_window)
        self._median: int | None = None  # the median of ``_spacings``; None: not yet known
        # A gap held for merging: (frame before the first, frame after the last, gaps, longest).
        self._gap: tuple[int, int, int, int] | None = None
        self._start_ms: int | None = None
        self._kind_cache: dict[str, str] = {}

    # ------------------------------------------------------------------ input

    def restarted(self, start_ms: int) -> list[Event]:
        """Told a header's recorder start time: a ``restart`` event when it is not the one
        known (none for the first)."""
        known, self._start_ms = self._start_ms, start_ms
        if known is None or known == start_ms:
            return []
        return [Event(start_ms, None, None, RESTART, "recorder restarted")]

    def segment(self, header: Header | None) -> list[Event]:
        """A segment begins (before its frames are fed), with ``header``: a ``restart`` when
        it names a recorder start time other than the one known; a header without one (or
        none) says nothing, and the start time known stays."""
        if header is None or header.started_ms is None:
            return []
        return self.restarted(header.started_ms)

    def feed(self, frame: Frame) -> list[Event]:
        """The events ``frame`` confirms, stamped at their onsets, ordered by time."""
        present: set[str] = set()
        collected = False
        for attr in HOST_SECTION_ATTRS:
            rows = getattr(frame, attr)
            if rows is not None:
                collected = True
                if rows:
                    present.update(map(_HOST_ID, rows))
        return self.feed_readings(
            frame.t_ms, frame.gpus, present if collected else None, frame.errors
        )

    def feed_readings(
        self,
        t: int,
        gpus: Sequence[GpuRow] | None,
        present: set[str] | None,
        errors: Sequence[str],
    ) -> list[Event]:
        """:meth:`feed` given only what detection reads of a frame: its time, its GPU rows,
        the host ids of its per-host rows (None when it collected no per-host section) and
        its errors. ``present`` may be kept by the detector."""
        out: list[Event] = []
        interval = self._timing(t, out)
        # Else the common frame: no errors, none flapping, the hosts up (all known) report.
        if (
            errors
            or self._errors
            or self._flapping
            or (present is not None and present != self._up)
        ):
            self._judge_hosts(present, errors, t, interval, out)
        if gpus:
            self._judge_gpus(gpus, t, out)
        if len(out) > 1:
            out.sort(key=_T_MS)
        return out

    def finish(self) -> list[Event]:
        """At the end of a recording: what is pending and confirmed by then (a gap held for
        merging, a power-drop still falling)."""
        out: list[Event] = []
        if self._gap is not None:
            out.append(self._gap_event(self._gap))
            self._gap = None
        for host in sorted(self._falling):
            out.append(self._power_drop(host, self._gpus[host]))
        out.sort(key=_T_MS)
        return out

    # ------------------------------------------------------------------ time

    def _timing(self, t: int, out: list[Event]) -> int | None:
        """Note the frame's time; gaps; the interval in force (None before one is known)."""
        last = self._last_t
        if last is not None and t <= last:  # out of order or repeated: time does not go back
            return self._interval()
        self._last_t = t
        if last is None:
            return self._interval()
        rules = self.thresholds
        spacing = t - last
        if self.interval_ms is None:
            spacings = self._spacings
            # the oldest spacing dropped for an equal one leaves the median as it was
            if not spacings or len(spacings) != spacings.maxlen or spacings[0] != spacing:
                self._median = None
            spacings.append(spacing)
        interval = self._median if self._median is not None else self._interval()
        gap = self._gap
        if interval is not None and spacing > rules.gap_intervals * interval:
            if gap is not None and last - gap[1] < rules.gap_merge_ms:
                gap = (gap[0], t, gap[2] + 1, max(gap[3], spacing))
            else:
                if gap is not None:
                    out.append(self._gap_event(gap))
                gap = (last, t, 1, spacing)
        if gap is not None and t - gap[1] >= rules.gap_merge_ms:
            out.append(self._gap_event(gap))  # a later gap starts at t or after: too far
            gap = None
        self._gap = gap
        return interval

    def _interval(self) -> int | None:
        if self.interval_ms is not None:
            return self.interval_ms
        if not self._spacings:
            return None
        if self._median is None:
            ordered = sorted(self._spacings)
            self._median = ordered[(len(ordered) - 1) // 2]
        return self._median

    def _gap_event(self, gap: tuple[int, int, int, int]) -> Event:
        start, end, count, longest = gap
        if count == 1:
            text = f"gap: no frame for {format_gap(longest)}"
        else:
            text = (
                f"gaps: {count} within {format_gap(end - start)} "
                f"(longest {format_gap(longest)} without a frame)"
            )
        return Event(start, None, None, GAP, text)

    # ------------------------------------------------------------------ hosts and errors

    def _judge_hosts(
        self,
        present: set[str] | None,
        errors: Sequence[str],
        t: int,
        interval: int | None,
        out: list[Event],
    ) -> None:
        if present and not present <= self._known:
            self._known |= present
        failing = self._judge_errors(errors, t, out) if errors or self._errors else ()
        if present is not None:
            reporting = present.difference(failing) if failing else present
            if reporting != self._up:  # else the common case: the same hosts report
                self._report(reporting, t, interval, out)
        if self._flapping:
            self._settle(t, interval, out)

    def _report(self, reporting: set[str], t: int, interval: int | None, out: list[Event]) -> None:
        """The hosts reporting in frame ``t`` differ from those up: changes of state."""
        for host in reporting - self._up:
            state = self._hosts.get(host)
            if state is None:
                self._hosts[host] = _HostState(t)
                self._up.add(host)
            else:
                self._change(host, state, False, t, interval, out)
        for host in self._up - reporting:
            self._change(host, self._hosts[host], True, t, interval, out)

    def _change(
        self,
        host: str,
        state: _HostState,
        down: bool,
        t: int,
        interval: int | None,
        out: list[Event],
    ) -> None:
        (self._down if down else self._up).add(host)
        (self._up if down else self._down).discard(host)
        state.down, state.changed_at = down, t
        if host in self._flapping:
            return
        window = self.thresholds.flap_intervals * (interval or 0)
        if down and state.lost_at is not None and t - state.lost_at < window:
            self._flapping.add(host)
            out.append(
                Event(
                    t,
                    host,
                    None,
                    FLAPPING,
                    f"host flapping: lost again within {self.thresholds.flap_intervals} "
                    "intervals; quiet until it holds",
                )
            )
        elif down:
            state.reported_down, state.lost_at = True, t
            out.append(Event(t, host, None, HOST_LOST, "host stopped reporting"))
        elif state.reported_down:
            state.reported_down = False
            since = t - state.lost_at if state.lost_at is not None else 0
            out.append(
                Event(t, host, None, HOST_BACK, f"host reporting again after {format_gap(since)}")
            )

    def _settle(self, t: int, interval: int | None, out: list[Event]) -> None:
        """Flapping hosts whose state has held for ``flap_intervals``: report where it
        settled, stamped when it settled."""
        hold = self.thresholds.flap_intervals * (interval or 0)
        for host in [h for h in self._flapping if t - self._hosts[h].changed_at >= hold]:
            self._flapping.discard(host)
            state = self._hosts[host]
            if state.down == state.reported_down:
                continue
            state.reported_down = state.down
            if state.down:
                state.lost_at = state.changed_at
                out.append(Event(state.changed_at, host, None, HOST_LOST, "host stopped reporting"))
            else:
                out.append(Event(state.changed_at, host, None, HOST_BACK, "host reporting again"))

    def _judge_errors(self, errors: Sequence[str], t: int, out: list[Event]) -> set[str]:
        """Errors by host and kind: ``errors`` for new kinds, ``errors-cleared`` after quiet
        frames; the hosts that errors name in this frame."""
        now: dict[str | None, tuple[set[str], str]] = {}
        cache = self._kind_cache
        for text in errors:
            host = error_host(text, self._known)
            kind = cache.get(text)
            if kind is None:
                if len(cache) >= _KIND_CACHE_MAX:
                    cache.clear()
                kind = cache[text] = error_kind(text)
            entry = now.get(host)
            if entry is None:
                now[host] = ({kind}, text)
            else:
                entry[0].add(kind)
        for host, (kinds, text) in now.items():
            state = self._errors.get(host)
            if state is None:
                state = self._errors[host] = _ErrorState()
            state.clean = 0
            new = kinds - state.kinds
            if new:
                state.kinds |= new
                said = ", ".join(sorted(new))
                out.append(Event(t, host, None, ERRORS, f"errors: {said} ({_one_line(text)})"))
        limit = self.thresholds.errors_clear_frames
        for host, state in list(self._errors.items()):
            if host in now:
                continue
            if not state.clean:
                state.clean_since = t
            state.clean += 1
            if state.clean >= limit:
                del self._errors[host]
                said = ", ".join(sorted(state.kinds))
                out.append(
                    Event(state.clean_since, host, None, ERRORS_CLEARED, f"errors cleared: {said}")
                )
        return {host for host in now if host is not None}

    # ------------------------------------------------------------------ GPUs and power

    def _judge_gpus(self, gpus: Sequence[GpuRow], t: int, out: list[Event]) -> None:
        rules = self.thresholds
        busy_pct, idle_pct = rules.util_busy_pct, rules.util_idle_pct
        by_host = self._gpus
        inf = _INF
        touched: list[tuple[str, _HostGpus]] = []  # hosts whose power this frame sums
        host = gpus[0].host_id  # the caller's rows: never none
        group = by_host.get(host) or by_host.setdefault(host, _HostGpus())
        states = group.gpus
        total, count = 0.0, 0
        for gpu in gpus:
            if gpu.host_id != host:
                if count:
                    _add_power(touched, host, group, t, total, count)
                host, total, count = gpu.host_id, 0.0, 0
                group = by_host.get(host) or by_host.setdefault(host, _HostGpus())
                states = group.gpus
            state = states.get(gpu.uuid)
            if state is None:
                state = states[gpu.uuid] = _GpuState(gpu)
            elif state.last_t == t:
                continue  # a repeated row of this GPU in one frame: the first counts
            state.last_t = t
            pw = gpu.power_consumption
            if pw is not None and pw > 0 and pw != inf:
                total += pw
                count += 1
            u = gpu.utilization
            if u is not None and u >= 0 and u != inf:  # known(), inlined: cost per GPU
                if u > idle_pct and state.dropped_at is None and state.low_since is None:
                    if u >= busy_pct:  # the common case: busy, or in between
                        state.busy = u
                else:
                    self._judge_util(host, state, u, gpu, t, out)
            te = gpu.temperature
            if (
                te is not None
                and not (
                    state.stay_lo <= te < state.stay_hi
                    and gpu.temperature_threshold_slowdown == state.slow
                    and gpu.temperature_threshold_shutdown == state.shut
                )
                and te > 0
                and te != inf
            ):
                self._judge_temp(host, state, te, gpu, t, out)
            health = gpu.health
            if health is not None:
                self._judge_health(host, gpu.uuid, state, health, t, out)
        if count:
            _add_power(touched, host, group, t, total, count)
        for host, group in touched:
            self._judge_power(host, group, t, out)
        if self._health:
            self._drop_gone(gpus, t)

    # ------------------------------------------------------------------ GPU health

    def _drop_gone(self, gpus: Sequence[GpuRow], t: int) -> None:
        """Forget the health of GPUs whose host has rows in frame ``t`` but they have none."""
        hosts = {gpu.host_id for gpu in gpus}
        gone = [key for key, s in self._health.items() if s.last_t != t and key[0] in hosts]
        for key in gone:
            self._health.pop(key).health = None

    def _judge_health(
        self,
        host: str,
        uuid: str,
        state: _GpuState,
        health: GpuHealth,
        t: int,
        out: list[Event],
    ) -> None:
        """A GPU's health reading in frame ``t``: throttle, XID, ECC and remap events."""
        known = state.health
        if known is None:
            known = state.health = _HealthState()
            self._health[(host, uuid)] = state
        label = state.label
        if health.clock_events is not None:
            self._judge_throttle(host, label, known, health.clock_events, t, out)
        if health.xid_counts is not None or health.last_xid is not None:
            _judge_xid(host, label, known, health, t, out)
        parts: list[str] = []
        known.ecc_uncorrected = _grown(
            known.ecc_uncorrected, _count(health.ecc_uncorrected), "uncorrected", parts
        )
        known.ecc_corrected = _grown(
            known.ecc_corrected, _count(health.ecc_corrected), "corrected", parts
        )
        if parts:
            out.append(Event(t, host, label, ECC, "ECC: " + ", ".join(parts)))
            parts = []
        known.rows_uncorrectable = _grown(
            known.rows_uncorrectable,
            _count(health.remapped_uncorrectable),
            "rows remapped (uncorrectable)",
            parts,
        )
        known.rows_correctable = _grown(
            known.rows_correctable,
            _count(health.remapped_correctable),
            "rows remapped (correctable)",
            parts,
        )
        pending, failure = health.remap_pending, health.remap_failure
        if pending is not None:
            if pending and not known.remap_pending:
                parts.append("remap pending (a GPU reset applies it)")
            known.remap_pending = pending
        if failure is not None:
            if failure and not known.remap_failure:
                parts.append("remap failed")
            known.remap_failure = failure
        if parts:
            out.append(Event(t, host, label, REMAP, "row remap: " + ", ".join(parts)))

    def _judge_throttle(
        self,
        host: str,
        label: str,
        known: _HealthState,
        reasons: Sequence[str],
        t: int,
        out: list[Event],
    ) -> None:
        """The clock event reasons read in frame ``t``: a throttle begins or ends."""
        names = throttle_names(reasons) if reasons else []
        if POWER_CAP in reasons:
            if known.cap_since is None:
                known.cap_since = t
            held = t - known.cap_since >= self.thresholds.throttle_power_cap_ms
        else:
            known.cap_since, held = None, False
        if names or held:
            if known.throttle_since is None:
                onset = known.cap_since if held and known.cap_since is not None else t
                if held:
                    names.append(POWER_CAP_NAME)
                known.throttle_since = onset
                out.append(Event(onset, host, label, THROTTLE, "throttled: " + ", ".join(names)))
        elif known.throttle_since is not None:
            since, known.throttle_since = known.throttle_since, None
            if known.cap_since is not None:
                known.cap_since = t  # a cap read through the throttle is held from its end
            text = f"throttle ended after {format_gap(t - since)}"
            out.append(Event(t, host, label, THROTTLE_END, text))

    def _judge_temp(
        self, host: str, state: _GpuState, te: float, gpu: GpuRow, t: int, out: list[Event]
    ) -> None:
        """The slow path of a temperature outside the span that keeps its level (or with
        other thresholds): the new level, an event when it changed, the new span."""
        rules = self.thresholds
        slow, shut = gpu.temperature_threshold_slowdown, gpu.temperature_threshold_shutdown
        # Where each level starts (the level is monotone in the reading): ok, warn, slowdown,
        # crit; inf where a threshold is unknown.
        crit = shut - rules.temp_crit_c if shut is not None and shut > 0 else _INF
        known_slow = slow is not None and slow > 0
        warn = min(slow - rules.temp_warn_c, crit) if slow is not None and known_slow else crit
        slowdown = min(slow, crit) if slow is not None and known_slow else crit
        starts = (-_INF, warn, slowdown, crit)
        level = 3 if te >= crit else 2 if te >= slowdown else 1 if te >= warn else 0
        was = state.level
        if level < was:  # left downwards only this far below
            level = min(was, sum(te + rules.temp_hysteresis_c >= at for at in starts) - 1)
        state.slow, state.shut, state.level = slow, shut, level
        state.stay_lo = starts[level] - rules.temp_hysteresis_c
        state.stay_hi = starts[level + 1] if level < 3 else _INF
        if level != was:
            threshold = shut if level == 3 or not known_slow else slow
            text = (
                f"temperature: {_TEMP_NAMES[was]}->{_TEMP_NAMES[level]} "
                f"({te:.0f}C / thr {threshold}C)"
            )
            out.append(Event(t, host, state.label, _TEMP_KINDS[level], text))

    def _judge_util(
        self, host: str, state: _GpuState, u: float, gpu: GpuRow, t: int, out: list[Event]
    ) -> None:
        """A known utilization of a GPU that is dropped, in an idle window, or idle."""
        rules = self.thresholds
        if state.dropped_at is not None:
            if u >= rules.util_busy_pct:
                since = t - state.dropped_at
                state.dropped_at, state.busy = None, u
                text = f"utilization: back to {_pct(u)} after {format_gap(since)}"
                out.append(Event(t, host, state.label, UTIL_BACK, text))
        elif u <= rules.util_idle_pct:
            if state.low_since is None:
                if state.busy < 0:
                    return  # not busy since it was last idle: no fall
                state.low_since, state.low_from, state.busy, state.mem_min = (
                    t,
                    state.busy,
                    -1.0,
                    None,
                )
            state.low = u
            share = permyriad(gpu.used_memory, gpu.total_memory)
            if share is not None and (state.mem_min is None or share < state.mem_min):
                state.mem_min = share
            if t - state.low_since >= rules.util_idle_ms:
                out.append(self._util_drop(host, state))
        else:  # broken before it was confirmed: armed again by the fall's busy reading
            state.low_since = None
            state.busy = u if u >= rules.util_busy_pct else state.low_from

    def _util_drop(self, host: str, state: _GpuState) -> Event:
        onset = state.low_since
        assert onset is not None
        state.low_since, state.dropped_at = None, onset
        held = state.mem_min
        if held is not None and held >= self.thresholds.idle_allocated_permyriad:
            note = f"idle but allocated (memory {held / 100:.0f}%)"
        else:
            note = "memory freed" if held is not None else "memory unknown"
        text = f"utilization: {_pct(state.low_from)}->{_pct(state.low)}, {note}"
        return Event(onset, host, state.label, UTIL_DROP, text)

    def _judge_power(self, host: str, group: _HostGpus, t: int, out: list[Event]) -> None:
        """A host's GPU power in frame ``t``: a fall past the thresholds opens a power-drop,
        followed while it keeps falling (within the window) and answered, stamped at its
        onset, by the first frame that does not fall further."""
        total, count, peaks = group.total, group.count, group.peaks
        rules = self.thresholds
        fall = group.fall
        if fall is not None:
            onset, peak, peak_t, low, _ = fall
            if total < low and count == group.window_gpus and t - onset < rules.power_window_ms:
                group.fall = (onset, peak, peak_t, total, t)
                return
            out.append(self._power_drop(host, group))
        if count != group.window_gpus:
            peaks.clear()
            group.window_gpus = count
        horizon = t - rules.power_window_ms
        while peaks and peaks[0][0] < horizon:
            peaks.popleft()
        if peaks:
            peak_t, peak = peaks[0]
            drop = peak - total
            if drop >= rules.power_drop_share * peak and drop >= rules.power_drop_w_per_gpu * count:
                peaks.clear()
                group.fall = (t, peak, peak_t, total, t)
                self._falling.add(host)
                return
        while peaks and peaks[-1][1] <= total:
            peaks.pop()
        peaks.append((t, total))

    def _power_drop(self, host: str, group: _HostGpus) -> Event:
        """The power-drop followed in ``group``, ended."""
        assert group.fall is not None
        onset, peak, peak_t, low, low_t = group.fall
        group.fall = None
        group.peaks.clear()
        group.peaks.append((low_t, low))
        self._falling.discard(host)
        text = (
            f"power: {peak:,.0f}W->{low:,.0f}W within {format_gap(low_t - peak_t)} "
            f"({group.window_gpus} GPUs)"
        )
        return Event(onset, host, None, POWER_DROP, text)


_T_MS: Final = attrgetter("t_ms")


def _grown(was: int | None, now: int | None, what: str, parts: list[str]) -> int | None:
    """A count compared with the last known (module header: a count that went down is a new
    baseline): ``what +n (total m)`` added to ``parts`` when it grew; the count known now."""
    if now is None:
        return was
    if was is not None and now > was:
        parts.append(f"{what} +{now - was:,} (total {now:,})")
    return now


def _judge_xid(
    host: str, label: str, known: _HealthState, health: GpuHealth, t: int, out: list[Event]
) -> None:
    """XIDs seen in frame ``t``: by the counts per code when the counts are read now and
    were before, else by ``last_xid`` (and ``last_xid_ms``) changing."""
    counts, was = health.xid_counts, known.xid_counts
    code, at = health.last_xid, health.last_xid_ms
    if counts is not None:
        known.xid_counts = counts
        if was is not None and counts is not was and counts != was:
            grew: list[tuple[str, int]] = []
            for key, old in was.items():
                n = counts.get(key)
                if n is None or n < old:
                    grew = []  # a code down or gone: the counter restarted (module header)
                    break
            else:
                grew = [(key, n - max(was.get(key, 0), 0)) for key, n in counts.items()]
            for key, more in sorted(grew, key=_code_order):
                if more > 0:
                    out.append(Event(t, host, label, XID, xid_text(key, more)))
    if code is None or code < 0:
        return
    if (
        (counts is None or was is None)
        and known.xid is not None
        and code > 0
        and (
            code != known.xid or (at is not None and known.xid_ms is not None and at > known.xid_ms)
        )
    ):
        out.append(Event(t, host, label, XID, xid_text(code)))
    known.xid, known.xid_ms = code, at


def _code_order(item: tuple[str, int]) -> tuple[int, str]:
    """XID codes in numeric order (a code that is no number after them)."""
    key = item[0]
    return (int(key), key) if key.isdecimal() and len(key) < 10 else (1 << 40, key)


def _add_power(
    touched: list[tuple[str, _HostGpus]],
    host: str,
    group: _HostGpus,
    t: int,
    total: float,
    count: int,
) -> None:
    """Add a run of a host's GPU rows to its power in frame ``t`` (its rows need not be
    contiguous)."""
    if group.t == t:
        group.total += total
        group.count += count
    else:
        group.t, group.total, group.count = t, total, count
        touched.append((host, group))


def detect(
    frames: Iterable[Frame],
    expected_hosts: Iterable[str] = (),
    interval_ms: int | None = None,
    thresholds: Thresholds = THRESHOLDS,
) -> list[Event]:
    """A fresh :class:`Detector` over ``frames`` (in time order) and its :meth:`finish`:
    every event, ordered by time."""
    detector = Detector(expected_hosts, interval_ms, thresholds)
    out: list[Event] = []
    for frame in frames:
        out += detector.feed(frame)
    out += detector.finish()
    out.sort(key=_T_MS)
    return out


def stops(
    events: Iterable[Event], first_t_ms: int, names: Mapping[str, str] | None = None
) -> tuple[tuple[int, str], ...]:
    """Where ``n`` / ``N`` stop: one stop per event time (offset from ``first_t_ms``), in
    time order, with what the message line says there — the one event's host (by its shown
    name in ``names``), GPU, kind and message, or for several, each host's kinds and counts
    (``node-03: power-drop, util-drop ×8``)."""
    by_time: dict[int, list[Event]] = {}
    for event in events:
        by_time.setdefault(event.t_ms, []).append(event)
    shown = names or {}
    out: list[tuple[int, str]] = []
    for t_ms in sorted(by_time):
        group = by_time[t_ms]
        if len(group) == 1:
            (event,) = group
            where = shown.get(event.host, event.host) if event.host is not None else "recording"
            gpu = f" GPU{event.gpu}" if event.gpu is not None else ""
            out.append((t_ms - first_t_ms, f"{where}{gpu}: {event.kind}: {event.message}"))
            continue
        per_host: dict[str, dict[str, int]] = {}
        for event in group:
            host = shown.get(event.host, event.host) if event.host is not None else "recording"
            kinds = per_host.setdefault(host, {})
            kinds[event.kind] = kinds.get(event.kind, 0) + 1
        parts = [
            f"{host}: " + ", ".join(k if n == 1 else f"{k} ×{n}" for k, n in sorted(kinds.items()))
            for host, kinds in per_host.items()
        ]
        out.append((t_ms - first_t_ms, "; ".join(parts)))
    return tuple(out)
