"""Enriches NVML's GPU processes with what psutil knows about each PID (docs/architecture.md §3.4).

Rules this module obeys:
- Only the PIDs NVML reported are looked at, never the whole process table (psutil
  costs ~0.3 ms per process).
- ``psutil.Process`` objects are kept between cycles, keyed by (pid, create time), so
  ``cpu_percent`` measures the interval since the previous cycle. On a process's first cycle
  it is ``None``, not psutil's meaningless 0.0. A recycled pid has a new create time, so it
  gets a new entry; entries of pids not reported this cycle are dropped.
- A pid that vanished or cannot be inspected keeps its NVML fields and ``None`` elsewhere; a
  field psutil refuses (AccessDenied) is ``None`` alone. Nothing here raises psutil errors.
- Time is an input: ``now_s`` (seconds since the epoch) comes from the caller, and the start
  time is written as the elapsed ``[[HH:]MM:]SS`` form of all-smi's ``start_time``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final, TypeVar

import attrs
import psutil

from allsmi.adapters.machine.nvml import RawGpuProcess
from allsmi.domain.model import GpuProcess
from allsmi.domain.parse import format_elapsed

__all__ = ["COMMAND_MAX_CHARS", "ProcessEnricher"]

T = TypeVar("T")

COMMAND_MAX_CHARS: Final = 1024

# psutil status names → the letters of proc(5) "State". Plain strings: psutil defines some of
# its STATUS_* constants only on some platforms.
_STATE_LETTERS: Final = {
    "running": "R",
    "sleeping": "S",
    "disk-sleep": "D",
    "stopped": "T",
    "tracing-stop": "t",
    "zombie": "Z",
    "dead": "X",
    "wake-kill": "K",
    "waking": "W",
    "parked": "P",
    "idle": "I",
    "locked": "L",
    "waiting": "W",
}


@attrs.frozen
class _HostView:
    """What psutil says about one pid in one cycle; all None when it says nothing."""

    process_name: str | None = None
    user: str | None = None
    state: str | None = None
    cpu_percent: float | None = None  # percent of one core
    memory_percent: float | None = None
    memory_rss: int | None = None  # bytes
    memory_vms: int | None = None  # bytes
    start_time: str | None = None  # elapsed, [[HH:]MM:]SS
    cpu_time: int | None = None  # s, user + system
    command: str | None = None
    ppid: int | None = None
    threads: int | None = None
    nice_value: int | None = None


_NOTHING: Final = _HostView()


def _attempt(fn: Callable[[], T]) -> T | None:
    """One psutil field; a refused one is None. NoSuchProcess (vanished) propagates."""
    try:
        return fn()
    except (psutil.AccessDenied, psutil.ZombieProcess):
        return None


class ProcessEnricher:
    """Turns :class:`RawGpuProcess` rows into model :class:`GpuProcess` rows."""

    def __init__(self, host_id: str, hostname: str) -> None:
        self._host_id = host_id
        self._hostname = hostname
        self._procs: dict[tuple[int, float], psutil.Process] = {}

    def enrich(self, rows: Iterable[RawGpuProcess], now_s: float) -> tuple[GpuProcess, ...]:
        """One cycle. A pid on several GPUs is inspected once (``cpu_percent`` is stateful)."""
        rows = tuple(rows)
        total_memory = psutil.virtual_memory().total if rows else 0
        views: dict[int, _HostView] = {}
        keep: dict[tuple[int, float], psutil.Process] = {}
        for raw in rows:
            if raw.pid not in views:
                views[raw.pid] = self._inspect(raw.pid, now_s, total_memory, keep)
        self._procs = keep
        return tuple(self._row(raw, views[raw.pid]) for raw in rows)

    def _inspect(
        self,
        pid: int,
        now_s: float,
        total_memory: int,
        keep: dict[tuple[int, float], psutil.Process],
    ) -> _HostView:
        try:
            fresh = psutil.Process(pid)
            created = fresh.create_time()
        except (psutil.Error, ValueError):  # gone, or a pid psutil refuses (negative)
            return _NOTHING
        key = (pid, created)
        known = self._procs.get(key)
        proc = fresh if known is None else known
        try:
            view = self._describe(proc, created, now_s, total_memory, first=known is None)
        except psutil.Error:  # vanished meanwhile (NoSuchProcess), or refused outright
            return _NOTHING
        keep[key] = proc
        return view

    @staticmethod
    def _describe(
        proc: psutil.Process, created: float, now_s: float, total_memory: int, *, first: bool
    ) -> _HostView:
        with proc.oneshot():
            # The first call only starts psutil's interval; its 0.0 means nothing yet.
            cpu = _attempt(lambda: proc.cpu_percent(None))
            memory = _attempt(proc.memory_info)
            times = _attempt(proc.cpu_times)
            status = _attempt(proc.status)
            cmdline = _attempt(proc.cmdline)
            return _HostView(
                process_name=_attempt(proc.name),
                user=_attempt(proc.username),
                state=None if status is None else _STATE_LETTERS.get(status, status),
                cpu_percent=None if first or cpu is None else cpu,
                memory_percent=(
                    memory.rss / total_memory * 100 if memory is not None and total_memory else None
                ),
                memory_rss=None if memory is None else memory.rss,
                memory_vms=None if memory is None else memory.vms,
                start_time=format_elapsed(now_s - created),
                cpu_time=None if times is None else int(times.user + times.system),
                command=" ".join(cmdline)[:COMMAND_MAX_CHARS] if cmdline else None,
                ppid=_attempt(proc.ppid),
                threads=_attempt(proc.num_threads),
                nice_value=_attempt(proc.nice),
            )

    def _row(self, raw: RawGpuProcess, view: _HostView) -> GpuProcess:
        return GpuProcess(
            host_id=self._host_id,
            hostname=self._hostname,
            device_id=raw.device_id,
            device_uuid=raw.device_uuid,
            pid=raw.pid,
            process_name=view.process_name,
            used_memory=raw.used_memory,
            cpu_percent=view.cpu_percent,
            memory_percent=view.memory_percent,
            memory_rss=view.memory_rss,
            memory_vms=view.memory_vms,
            user=view.user,
            state=view.state,
            start_time=view.start_time,
            cpu_time=view.cpu_time,
            command=view.command,
            ppid=view.ppid,
            threads=view.threads,
            priority=None,  # psutil has no scheduling priority on Linux; not invented from nice
            nice_value=view.nice_value,
            gpu_utilization=raw.gpu_utilization,
        )
