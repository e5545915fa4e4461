"""Helpers shared by the benchmarks: a simulator-backed frame source, a recording writer that
goes through the real recorder root (``record_loop`` + ``RecordingSink`` + ``SimClock``), and
small formatting and CPU-time helpers. Not a test; asserts nothing.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import anyio
import attrs

from allsmi import __version__
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.adapters.simulation.simulator import ClusterSimulator, ClusterSpec
from allsmi.app.clock import SimClock
from allsmi.app.record import RecordPlan, RecordResult, record_loop
from allsmi.domain.model import Frame, Header, Source

T0: Final = 1_776_513_600_000  # 2026-04-18T12:00:00Z
BENCH_DIR: Final = Path(__file__).resolve().parent
OUT_DIR: Final = BENCH_DIR / "out"  # gitignored


class SimSource:
    """A :class:`~allsmi.domain.ports.FrameSource` over the cluster simulator: each ``collect``
    advances the simulation by ``step_ms`` (none before the first) and returns its frame."""

    def __init__(
        self,
        spec: ClusterSpec,
        include: tuple[str, ...],
        step_ms: int,
        source: Source = "local",
    ) -> None:
        self.sim = ClusterSimulator(spec)
        self.include = include
        self.step_ms = step_ms
        self.source: Source = source
        self._started = False

    async def start(self) -> None:
        return None

    async def collect(self, t_ms: int) -> Frame:
        if self._started:
            self.sim.advance(self.step_ms)
        self._started = True
        frame = self.sim.frame(t_ms, self.include)
        return frame if frame.source == self.source else attrs.evolve(frame, source=self.source)

    def hosts(self) -> tuple[str, ...]:
        return self.sim.hosts

    async def aclose(self) -> None:
        return None


def write_recording(
    path: Path,
    spec: ClusterSpec,
    include: tuple[str, ...],
    frames: int,
    interval_ms: int,
    source: Source,
    codec: Codec = Codec.ZSTD,
) -> tuple[RecordResult, float]:
    """Record ``frames`` frames into ``path`` with the real sink and recorder loop on a
    simulated clock (no rotation). Returns the loop's result and the wall seconds it took."""
    sim_source = SimSource(spec, include, interval_ms, source)
    hosts = sim_source.hosts() if source == "remote" else (spec.host_id(0),)
    plan = RecordPlan(interval_ms, frames * interval_ms, source, hosts)
    header = Header(
        source=source, interval_ms=interval_ms, hosts=hosts, all_smi_version=__version__
    )
    sink = RecordingSink(SinkConfig(path=path, codec=codec, max_size=0, max_files=1), header)
    start = time.perf_counter()
    result = anyio.run(record_loop, sim_source, sink, SimClock(T0), plan)
    return result, time.perf_counter() - start


def min_med(samples: Sequence[float]) -> tuple[float, float]:
    return min(samples), statistics.median(samples)


def fmt_min_med(samples: Sequence[float], width: int = 9, digits: int = 2) -> str:
    lo, mid = min_med(samples)
    return f"{lo:>{width}.{digits}f} / {mid:<{width}.{digits}f}"


def child_cpu_s(argv: Sequence[str], stderr_path: Path | None = None) -> tuple[float, float, int]:
    """Run ``argv`` to completion; (user+sys CPU seconds of that child, wall seconds, rc).

    ``os.wait4`` gives the rusage of exactly this child (its threads included)."""
    err = open(stderr_path, "wb") if stderr_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if stderr_path:
            err.close()  # type: ignore[union-attr]
    return usage.ru_utime + usage.ru_stime, wall, proc.returncode


def peak_rss(pid: int) -> int:
    """VmHWM: the process's peak resident set since its exec, in bytes (0 once it is gone).
    Unlike ``ru_maxrss`` it does not carry the parent's peak across fork and exec."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def own_peak_rss_mb() -> float:
    """This process image's peak RSS in MB: VmHWM (``ru_maxrss`` would include the forking
    parent's peak, which Linux carries over exec)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def own_cpu_s() -> float:
    """User + system CPU seconds of this process, all its threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def quantile(samples: Sequence[float], q: float) -> float:
    """The ``q`` quantile of ``samples`` (nearest rank); 0 for none."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def child_json(script: str, *args: str) -> dict[str, Any]:
    """Run the benchmark ``script`` (its ``__file__``) in a fresh interpreter with ``args``;
    the JSON object its last line prints (one measurement, imports not counted)."""
    out = subprocess.run(
        [sys.executable, script, *args], capture_output=True, check=True, text=True
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result
