"""The recorder scraping a mock cluster (docs/architecture.md §3.2): what
``allsmi record --source remote`` costs against ``allsmi mock``, both real commands in
their own processes on loopback.

Cases:

1. 100 nodes, ``-i 1``, 60 s: the recorder's CPU (``os.wait4`` rusage over the whole run, and
   the steady state from ``psutil`` samples after start-up) per frame and as % of one core;
   peak RSS (VmHWM read while it runs, and the highest ``psutil`` sample); the frame spacing (gaps
   between frame times, and the worst distance from the ideal 1 s grid); deadlines skipped
   (the ``recorder: … skipped N deadline(s)`` notes); stored bytes per frame and per sample
   (a sample = one numeric leaf of a frame's JSON).
2. One ``RemoteSource.collect`` in this process against the same mock, 50 times: min /
   median / max ms and CPU ms per collect, after a first, cold one (timed apart: clients
   made, connections opened) — through ``/snapshot`` JSON (as shipped) and through
   ``/metrics`` text only (the mode pre-set, as for an all-smi exporter).
3. Parsing alone, in-process: 100 pages of one mock node as ``/metrics`` text
   (``parse_metrics``) vs as ``/snapshot`` JSON (``orjson.loads`` + codec decode).
4. 1000 nodes, ``-i 5``, 60 s: the same figures as case 1; the point is no missed cycle.

Targets (printed beside the figures): 100 nodes at 1 s in ≤ ~12% of one core (what a real
Prometheus spends scraping the same cluster) and < 100 MB RSS; 1000 nodes at 5 s with no
missed cycle.

Run: ``.venv/bin/python bench/bench_cluster.py [seconds [collects]] [--processes]`` (defaults
60 s per recording, 50 collects; the whole run takes about 5 minutes). Without
``--processes`` the recorder is given ``--include gpu,cpu,memory,chassis`` (the sections of
the figures before ``record`` collected every section by default); with it, ``record``'s
default: every section, the mock nodes' processes and disks included. The largest frame line
is printed beside the 16 MiB line cap. Prints tables; asserts nothing
(docs/architecture.md §9).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import anyio
import attrs
import orjson
import psutil

from allsmi import __version__
from allsmi.adapters import wire
from allsmi.adapters.network.scrape import METRICS, RemoteSource
from allsmi.adapters.prometheus.parser import parse_metrics
from allsmi.adapters.prometheus.writer import render_metrics
from allsmi.adapters.recording.sink import MAX_LINE_BYTES
from allsmi.adapters.recording.source import RecordingSource
from allsmi.adapters.simulation.simulator import ClusterSimulator, ClusterSpec
from allsmi.app.mock import node_frame
from allsmi.app.remote import build_remote_source, remote_config
from allsmi.domain.hosts import parse_hostfile
from allsmi.domain.model import SECTIONS
from common import OUT_DIR, T0, peak_rss

ALLSMI: Final = str(Path(sys.executable).with_name("allsmi"))
NO_PROCESSES: Final = ("gpu", "cpu", "memory", "chassis")  # record's default before #20
PROCESSES: Final = "--processes" in sys.argv[1:]
INCLUDE: Final = SECTIONS if PROCESSES else NO_PROCESSES  # the sections recorded
COLLECTS: Final = 50
SAMPLE_S: Final = 0.25
WARMUP_S: Final = 5.0  # start-up (imports, first connections) left out of the steady state
TARGET_CORE_PCT: Final = 12.0
TARGET_RSS_MB: Final = 100.0


# --------------------------------------------------------------------------- the mock


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_base_port(count: int) -> int:
    """``count`` consecutive free ports below the ephemeral range, from a random start."""
    try:
        high = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        high = 32768
    rng = random.Random()
    for _ in range(500):
        base = rng.randrange(10_000, high - count)
        if all(_port_free(p) for p in range(base, base + count)):
            return base
    raise SystemExit(f"no {count} consecutive free ports below {high}")


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def mock_cluster(nodes: int, interval_s: int, work: Path) -> Iterator[Path]:
    """``allsmi mock`` with ``nodes`` nodes until the block ends; yields its hostfile."""
    hostfile = work / f"hosts-{nodes}"
    base = free_base_port(nodes)
    log = (work / f"mock-{nodes}.log").open("wb")
    argv = [ALLSMI, "mock", "--nodes", str(nodes), "--interval", str(interval_s)]
    argv += ["--base-port", str(base), "--hostfile", str(hostfile)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 120
        while not (hostfile.exists() and _answers(base + nodes - 1)):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"allsmi mock did not start: {(work / log.name).read_text()}")
            time.sleep(0.1)
        time.sleep(interval_s)  # one simulation step published everywhere
        yield hostfile
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# --------------------------------------------------------------------------- the recorder


@attrs.frozen
class Recording:
    nodes: int
    interval_s: int
    seconds: int
    rc: int
    wall_s: float
    cpu_s: float  # whole run, rusage
    steady_cpu_s: float  # psutil, after WARMUP_S
    steady_wall_s: float
    maxrss_mb: float  # VmHWM
    sampled_rss_mb: float  # highest psutil sample
    frames: int
    gaps_ms: tuple[int, ...]
    grid_error_ms: int  # the worst |t - nearest grid point|
    skipped: int  # deadlines the recorder reported skipping
    errors: int  # host errors in all frames
    file_bytes: int
    samples_per_frame: int
    gpus_per_frame: int
    processes_per_frame: int
    largest_line: int  # bytes of the largest data line, its newline included


def numeric_leaves(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int | float):
        return 1
    if isinstance(value, dict):
        return sum(numeric_leaves(v) for v in value.values())
    if isinstance(value, list):
        return sum(numeric_leaves(v) for v in value)
    return 0


def skipped_in(errors: Sequence[str]) -> int:
    total = 0
    for error in errors:
        if error.startswith("recorder:") and "skipped " in error:
            total += int(error.split("skipped ", 1)[1].split()[0])
    return total


def record(hostfile: Path, nodes: int, interval_s: int, seconds: int, work: Path) -> Recording:
    out = work / f"cluster-{nodes}.ndjson.zst"
    for old in work.glob(out.name + "*"):
        old.unlink()
    argv = [ALLSMI, "record", "--source", "remote", "--hostfile", str(hostfile)]
    argv += ["-o", str(out), "-i", str(interval_s), "--duration", f"{seconds}s"]
    if not PROCESSES:
        argv += ["--include", ",".join(INCLUDE)]
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    watched = psutil.Process(proc.pid)
    samples: list[tuple[float, float]] = []  # (seconds since start, CPU seconds)
    peak_sampled = 0
    peak_hwm = 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        with contextlib.suppress(psutil.Error):
            times = watched.cpu_times()
            samples.append((time.monotonic() - started, times.user + times.system))
            peak_sampled = max(peak_sampled, watched.memory_info().rss)
            peak_hwm = max(peak_hwm, peak_rss(proc.pid))
        time.sleep(SAMPLE_S)
    wall = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    steady = [s for s in samples if s[0] >= WARMUP_S]
    steady_cpu = steady[-1][1] - steady[0][1] if len(steady) > 1 else 0.0
    steady_wall = steady[-1][0] - steady[0][0] if len(steady) > 1 else 0.0

    with RecordingSource(out) as recording:
        count = recording.frame_count
        frames = [recording.frame(i) for i in range(count)]
        leaves = numeric_leaves(orjson.loads(recording.raw(count // 2)))
        largest = max(len(recording.raw(i)) + 1 for i in range(count))
    times_ms = [f.t_ms for f in frames]
    step = interval_s * 1000
    grid = max(abs((t - times_ms[0]) - round((t - times_ms[0]) / step) * step) for t in times_ms)
    return Recording(
        nodes=nodes,
        interval_s=interval_s,
        seconds=seconds,
        rc=proc.returncode,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        steady_cpu_s=steady_cpu,
        steady_wall_s=steady_wall,
        maxrss_mb=peak_hwm / 1e6,
        sampled_rss_mb=peak_sampled / 1e6,
        frames=count,
        gaps_ms=tuple(b - a for a, b in itertools.pairwise(times_ms)),
        grid_error_ms=grid,
        skipped=sum(skipped_in(f.errors) for f in frames),
        errors=sum(len([e for e in f.errors if not e.startswith("recorder:")]) for f in frames),
        file_bytes=sum(p.stat().st_size for p in work.glob(out.name + "*")),
        samples_per_frame=leaves,
        gpus_per_frame=len(frames[count // 2].gpus or ()),
        processes_per_frame=len(frames[count // 2].processes or ()),
        largest_line=largest,
    )


def print_recording(r: Recording, target: str) -> None:
    per_frame_cpu = r.cpu_s / max(r.frames, 1)
    steady_pct = 100 * r.steady_cpu_s / r.steady_wall_s if r.steady_wall_s else float("nan")
    expected = r.seconds // r.interval_s
    gaps = r.gaps_ms or (0,)
    rows = [
        ("exit status", f"{r.rc}", ""),
        ("frames written", f"{r.frames} (of {expected} scheduled)", ""),
        ("deadlines skipped", f"{r.skipped}", "0"),
        ("host errors (all frames)", f"{r.errors}", ""),
        ("GPUs per frame", f"{r.gpus_per_frame}", f"{8 * r.nodes}"),
        ("processes per frame", f"{r.processes_per_frame}", ""),
        ("largest frame line", f"{r.largest_line:,} B", f"<= {MAX_LINE_BYTES:,} B (16 MiB)"),
        ("CPU whole run", f"{r.cpu_s:.1f} s in {r.wall_s:.1f} s", ""),
        ("CPU per frame (whole run)", f"{1000 * per_frame_cpu:.0f} ms", ""),
        (
            "CPU steady state",
            f"{steady_pct:.1f}% of one core = "
            f"{10 * steady_pct * r.interval_s:.0f} ms per {r.interval_s} s cycle",
            target,
        ),
        ("peak RSS (VmHWM)", f"{r.maxrss_mb:.1f} MB", f"< {TARGET_RSS_MB:.0f} MB"),
        ("peak RSS (sampled)", f"{r.sampled_rss_mb:.1f} MB", ""),
        (
            "frame gaps min/med/max",
            f"{min(gaps)} / {statistics.median(gaps):.0f} / {max(gaps)} ms",
            f"{1000 * r.interval_s} ms",
        ),
        ("worst distance from the grid", f"{r.grid_error_ms} ms", ""),
        ("stored bytes per frame", f"{r.file_bytes / max(r.frames, 1):,.0f} B (zstd)", ""),
        ("samples per frame", f"{r.samples_per_frame:,}", ""),
        (
            "stored bytes per sample",
            f"{r.file_bytes / max(r.frames * r.samples_per_frame, 1):.3f} B",
            "",
        ),
    ]
    title = f"allsmi record --source remote: {r.nodes} nodes, -i {r.interval_s}, {r.seconds} s"
    table(title, ("figure", "measured", "target"), rows)


# --------------------------------------------------------------------------- in-process


@attrs.frozen
class Collects:
    first_ms: float  # the cold collect: clients made, connections opened, endpoints chosen
    first_errors: int
    wall_ms: tuple[float, ...]
    cpu_ms: tuple[float, ...]
    gpus: int
    errors: int


async def time_collects(source: RemoteSource, runs: int) -> Collects:
    try:
        start = time.perf_counter()
        first = await source.collect(T0)
        first_ms = 1000 * (time.perf_counter() - start)
        walls, cpus = [], []
        frame = None
        for i in range(runs):
            wall, cpu = time.perf_counter(), time.process_time()
            frame = await source.collect(T0 + i)
            walls.append(1000 * (time.perf_counter() - wall))
            cpus.append(1000 * (time.process_time() - cpu))
        assert frame is not None
        gpus, errors = len(frame.gpus or ()), len(frame.errors)
        return Collects(first_ms, len(first.errors), tuple(walls), tuple(cpus), gpus, errors)
    finally:
        await source.aclose()


def collect_cases(hostfile: Path, interval_ms: int, runs: int) -> list[tuple[str, Collects]]:
    hosts = parse_hostfile(hostfile.read_text())
    config = remote_config(hosts, INCLUDE, interval_ms, None)

    def metrics_only() -> RemoteSource:
        source = build_remote_source(config)
        source._mode.update(dict.fromkeys(hosts, METRICS))  # as for all-smi exporters
        return source

    cases: list[tuple[str, Callable[[], RemoteSource]]] = [
        ("/snapshot JSON (as shipped)", lambda: build_remote_source(config)),
        ("/metrics text only (mode pre-set)", metrics_only),
    ]
    results = []
    for name, make in cases:
        results.append((name, anyio.run(time_collects, make(), runs)))
    return results


def print_collects(nodes: int, interval_s: int, results: list[tuple[str, Collects]]) -> None:
    rows = []
    for name, c in results:
        wall = f"{min(c.wall_ms):.0f} / {statistics.median(c.wall_ms):.0f} / {max(c.wall_ms):.0f}"
        cpu = f"{statistics.median(c.cpu_ms):.0f}"
        first = f"{c.first_ms:.0f} ({c.first_errors} errors)"
        rows.append((name, first, wall, cpu, f"{c.gpus}", f"{c.errors}"))
    runs = len(results[0][1].wall_ms)
    title = f"RemoteSource.collect in-process: {nodes} nodes, {runs} collects (deadline "
    title += f"{remote_config(('x',), INCLUDE, interval_s * 1000, None).cycle_deadline_s:g} s)"
    head = ("path", "first collect ms", "then wall min/med/max ms", "CPU med ms", "GPUs", "errors")
    table(title, head, rows)


def parse_cases(pages: int = 100, rounds: int = 5) -> None:
    sim = ClusterSimulator(ClusterSpec(nodes=1, gpus_per_node=8, base_port=10001))
    reading = sim.node_frame_parts(0, T0)
    assert reading is not None
    frame = node_frame(reading, T0)  # what one mock node serves, processes included
    text = render_metrics(frame, version=__version__)
    line = wire.encode_line(frame)

    def metrics() -> None:
        for _ in range(pages):
            parse_metrics(text, "127.0.0.1:10001")

    def snapshot() -> None:
        for _ in range(pages):
            wire.decode_object(orjson.loads(line), 0)

    def best(call: Callable[[], None]) -> tuple[float, float]:
        runs = []
        for _ in range(rounds):
            start = time.perf_counter()
            call()
            runs.append(1000 * (time.perf_counter() - start))
        return min(runs), statistics.median(runs)

    rows = []
    for name, size, call in (
        ("/metrics text: parse_metrics", len(text.encode()), metrics),
        ("/snapshot JSON: orjson + decode", len(line), snapshot),
    ):
        lo, mid = best(call)
        rows.append((name, f"{size:,}", f"{lo:.0f} / {mid:.0f}"))
    table(
        f"parsing {pages} pages of one mock node (8 GPUs, 64 cores, processes)",
        ("path", "bytes per page", f"ms per {pages} pages min/med"),
        rows,
    )


# --------------------------------------------------------------------------- output


def table(title: str, head: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip())
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    sys.stdout.flush()


def main() -> None:
    numbers = [a for a in sys.argv[1:] if a != "--processes"]
    seconds = int(numbers[0]) if numbers else 60
    collects = int(numbers[1]) if len(numbers) > 1 else COLLECTS
    work = OUT_DIR / "cluster"
    work.mkdir(parents=True, exist_ok=True)
    print(f"bench_cluster: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, {ALLSMI}")
    print(f"sections recorded: {','.join(INCLUDE)}")

    parse_cases()

    with mock_cluster(100, 1, work) as hostfile:
        result = record(hostfile, 100, 1, seconds, work)
        print_recording(result, f"<= ~{TARGET_CORE_PCT:.0f}% of one core")
        print_collects(100, 1, collect_cases(hostfile, 1000, collects))

    with mock_cluster(1000, 5, work) as hostfile:
        result = record(hostfile, 1000, 5, seconds, work)
        print_recording(result, "no missed cycle")
        print_collects(1000, 5, collect_cases(hostfile, 5000, max(2, collects // 10)))
    print(f"\nload average after the run: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
