"""Cost of writing a recording (docs/recording-format.md §6–§8): the sink's throughput and
size per codec, the CPU of one real local collection cycle, and what that makes of
``allsmi record -i 1``.

1. Sink. Frames come from the simulator, advanced 1 s between frames so values move like real
   data: a *local* frame (1 node × 8 GPUs, gpu,cpu,memory,chassis,process; ~14 KB) and a
   *100-host* frame (100 nodes × 8 GPUs, same sections; ~1.4 MB). Lines are encoded first
   (``encode_line``, timed on its own), then each is appended to a ``RecordingSink`` and
   flushed — the recorder's policy at intervals ≥ 1 s — and that append+flush is timed per
   frame. Printed per codec: µs per frame (min / median), MB/s of raw line bytes through
   append+flush, stored bytes per frame (the whole closed file, footer included, ÷ frames)
   and the compression ratio (raw line bytes ÷ stored bytes).
2. One real local collection cycle (``build_local_source``; NVML if present), CPU time
   (``time.process_time``, all threads) of ``collect`` × N after ``start``, and the implied
   share of one core at ``-i 1``: (collect CPU + encode + zstd append+flush) per frame / 1 s.
   The encode and sink figures are those of the simulated 8-GPU local frame (an upper bound
   on a machine with fewer GPUs).
3. The real thing: ``allsmi record -o TMP/x.ndjson.zst -i 1 --duration 30s`` as a child
   process; its user+sys CPU (``os.wait4``) over the 30 s, nothing subtracted; the CPU of
   process start-up alone (``allsmi --version``) is printed separately, and so is the CPU of
   the same command with ``--duration 1s``, whose difference to the 30 s run gives the
   marginal (steady-state) share. Target: < 1 % of one core.

Run: ``.venv/bin/python bench/bench_sink.py [local_frames] [cluster_frames] [cycles]``
(defaults 2000 60 50; ``--no-real`` skips the 30 s child; ``--no-processes`` records every
section but the processes, in the sink frames, the collection and the child). Prints tables;
asserts nothing (docs/architecture.md §9: figures go to the README, never into tests).
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import zstandard

from allsmi import __version__
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.adapters.recording.source import RecordingSource
from allsmi.adapters.simulation.simulator import ClusterSimulator, ClusterSpec
from allsmi.adapters.wire import encode_line
from allsmi.app.local import build_local_source
from allsmi.app.record import RECORD_SECTIONS
from allsmi.domain.model import SECTIONS as ALL_SECTIONS
from allsmi.domain.model import Header
from common import OUT_DIR, T0, child_cpu_s

# Every section, as `allsmi record` collects by default; --no-processes leaves the process
# rows out (the figures before record collected them by default).
_WITH_PROCESSES = "--no-processes" not in sys.argv[1:]
SECTIONS = tuple(s for s in ALL_SECTIONS if _WITH_PROCESSES or s != "process")
LOCAL_INCLUDE = tuple(s for s in RECORD_SECTIONS if _WITH_PROCESSES or s != "process")
STEP_MS = 1000
REAL_DURATION_S = 30
TARGET_CORE_PCT = 1.0
ALLSMI = str(Path(sys.executable).with_name("allsmi"))


def _lines(nodes: int, frames: int) -> tuple[list[bytes], list[float]]:
    """``frames`` encoded lines of a ``nodes``×8 cluster, 1 s apart; encode µs per line."""
    sim = ClusterSimulator(ClusterSpec(nodes=nodes, gpus_per_node=8))
    lines, encode_us = [], []
    for k in range(frames):
        if k:
            sim.advance(STEP_MS)
        frame = sim.frame(T0 + k * STEP_MS, SECTIONS)
        start = time.perf_counter()
        line = encode_line(frame)
        encode_us.append((time.perf_counter() - start) * 1e6)
        lines.append(line)
    return lines, encode_us


def _sink_run(lines: list[bytes], codec: Codec, directory: Path) -> dict[str, float]:
    path = directory / f"x-{codec.value}.ndjson"
    header = Header(source="local", interval_ms=STEP_MS, hosts=("node-01",), all_smi_version="b")
    sink = RecordingSink(SinkConfig(path=path, codec=codec, max_size=0, max_files=1), header)
    per_frame = []
    clock = time.perf_counter
    for seq, line in enumerate(lines):
        start = clock()
        sink.append(line, seq, T0 + seq * STEP_MS)
        sink.flush()
        per_frame.append((clock() - start) * 1e6)
    sink.close()
    stored = path.stat().st_size
    path.unlink()
    raw = sum(len(x) for x in lines)
    return {
        "min": min(per_frame),
        "median": statistics.median(per_frame),
        "mb_s": raw / 1e6 / (sum(per_frame) / 1e6),
        "stored": stored / len(lines),
        "ratio": raw / stored,
    }


def _cli_reference(raw_path: Path, codec: Codec) -> tuple[float, float] | None:
    """The physical reference: the codec's own CLI compressing the same lines as one stream
    (no per-frame flush) at the sink's level. (MB/s of raw input, compression ratio);
    the best of 3 runs, process start-up included."""
    argv = {Codec.ZSTD: ["zstd", "-q", "-3", "-c"], Codec.GZIP: ["gzip", "-6", "-c"]}.get(codec)
    if argv is None or shutil.which(argv[0]) is None:
        return None
    best, stored = float("inf"), 0
    for _ in range(3):
        with open(raw_path, "rb") as src:
            start = time.perf_counter()
            out = subprocess.run([*argv], stdin=src, capture_output=True, check=True).stdout
            best = min(best, time.perf_counter() - start)
            stored = len(out)
    raw = raw_path.stat().st_size
    return raw / 1e6 / best, raw / stored


def bench_sink(local_frames: int, cluster_frames: int) -> float:
    """Print the sink table; return the median µs of encode + zstd append+flush (local)."""
    print(
        f"\n## sink: append+flush per frame (flushed after every frame), {local_frames} local / "
        f"{cluster_frames} 100-host frames, 1 s apart"
    )
    print(
        f"{'frame':<9}{'codec':<6}{'raw KB':>7}{'encode µs min/med':>21}"
        f"{'append+flush µs min/med':>26}{'MB/s':>8}{'B/frame':>10}{'ratio':>7}"
        f"{'CLI MB/s':>10}{'CLI ratio':>10}{'MB/s÷CLI':>10}"
    )
    result = 0.0
    OUT_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=OUT_DIR) as tmp:
        for label, nodes, frames in (("local", 1, local_frames), ("100-host", 100, cluster_frames)):
            lines, encode_us = _lines(nodes, frames)
            raw_kb = statistics.median(len(x) for x in lines) / 1024
            raw_path = Path(tmp) / "lines.ndjson"
            raw_path.write_bytes(b"".join(lines))
            for codec in (Codec.ZSTD, Codec.GZIP, Codec.NONE):
                r = _sink_run(lines, codec, Path(tmp))
                ref = _cli_reference(raw_path, codec)
                if label == "local" and codec is Codec.ZSTD:
                    result = r["median"] + statistics.median(encode_us)
                refs = (
                    f"{ref[0]:>10.1f}{ref[1]:>10.1f}{r['mb_s'] / ref[0]:>10.2f}"
                    if ref
                    else f"{'-':>10}{'-':>10}{'-':>10}"
                )
                print(
                    f"{label:<9}{codec.value:<6}{raw_kb:>7.1f}"
                    f"{_pair(min(encode_us), statistics.median(encode_us)):>21}"
                    f"{_pair(r['min'], r['median']):>26}"
                    f"{r['mb_s']:>8.1f}{r['stored']:>10.0f}{r['ratio']:>7.1f}{refs}"
                )
            raw_path.unlink()
            del lines
    print(
        "(MB/s: raw line bytes ÷ total append+flush time; B/frame: closed file size ÷ frames; "
        "ratio: raw ÷ stored; CLI: `zstd -3` / `gzip -6` on the same lines as one stream)"
    )
    return result


def _pair(lo: float, mid: float) -> str:
    return f"{lo:.1f} / {mid:.1f}"


def bench_collect(cycles: int) -> float:
    """Print the CPU of real local collection cycles; return the median CPU ms."""

    async def measure() -> tuple[list[float], list[float], int]:
        source = build_local_source(LOCAL_INCLUDE)
        await source.start()
        cpu_ms, wall_ms, errors = [], [], 0
        try:
            for k in range(cycles):
                c0, w0 = time.process_time(), time.perf_counter()
                frame = await source.collect(T0 + k * STEP_MS)
                cpu_ms.append((time.process_time() - c0) * 1000)
                wall_ms.append((time.perf_counter() - w0) * 1000)
                errors = len(frame.errors)
        finally:
            await source.aclose()
        return cpu_ms, wall_ms, errors

    cpu_ms, wall_ms, errors = anyio.run(measure)
    print(f"\n## one real local collection cycle ({', '.join(LOCAL_INCLUDE)}), {cycles} cycles")
    print(f"{'':<22}{'min ms':>10}{'median ms':>12}")
    print(f"{'collect CPU time':<22}{min(cpu_ms):>10.3f}{statistics.median(cpu_ms):>12.3f}")
    print(f"{'collect wall time':<22}{min(wall_ms):>10.3f}{statistics.median(wall_ms):>12.3f}")
    print(f"(errors in the last frame: {errors}; a machine without NVML reports one)")
    return statistics.median(cpu_ms)


def bench_real() -> None:
    print(f"\n## the real thing: allsmi record -i 1 --duration {REAL_DURATION_S}s (zstd)")
    startup = [child_cpu_s([ALLSMI, "--version"])[0] for _ in range(5)]
    OUT_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=OUT_DIR) as tmp:
        out = Path(tmp) / "x.ndjson.zst"
        log = Path(tmp) / "stderr.txt"
        argv = [ALLSMI, "record", "-o", str(out), "-i", "1", "--duration", f"{REAL_DURATION_S}s"]
        argv += ["--include", ",".join(LOCAL_INCLUDE)]
        cpu_s, wall_s, rc = child_cpu_s(argv, log)
        size = out.stat().st_size if out.exists() else 0
        frames = RecordingSource(out).frame_count if size else 0
        one_frame = []  # the same command for 1 s: start-up + one frame + close
        for n in range(3):
            short = Path(tmp) / f"one-{n}.ndjson.zst"
            one = [*argv[:2], "-o", str(short), *argv[4:7], "1s", *argv[8:]]
            one_frame.append(child_cpu_s(one)[0])
        said = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
        tail = [x for x in said if "retention" in x or "grows" in x][:1] + said[-1:]
    pct = cpu_s / REAL_DURATION_S * 100
    print(f"{'':<36}{'value':>12}")
    print(f"{'exit status':<36}{rc:>12}")
    print(f"{'wall s':<36}{wall_s:>12.2f}")
    print(f"{'frames written':<36}{frames:>12}")
    print(f"{'stored bytes':<36}{size:>12}")
    print(f"{'CPU s (user+sys), whole process':<36}{cpu_s:>12.3f}")
    print(f"{'% of one core over 30 s':<36}{pct:>11.2f}%   target < {TARGET_CORE_PCT:g}%")
    lo, mid = min(startup), statistics.median(startup)
    print(f"{'start-up CPU s (allsmi --version)':<36}{mid:>12.3f}   (min {lo:.3f}, 5 runs)")
    print(f"{'  → start-up as % of 30 s':<36}{mid / REAL_DURATION_S * 100:>11.2f}%")
    one_lo, one_mid = min(one_frame), statistics.median(one_frame)
    print(f"{'CPU s of record --duration 1s':<36}{one_mid:>12.3f}   (min {one_lo:.3f}, 3 runs)")
    marginal = max(0.0, cpu_s - one_mid) / (REAL_DURATION_S - 1) * 100
    print(
        f"{'marginal: (30 s − 1 s run) ÷ 29 s':<36}{marginal:>11.2f}%   "
        "(steady-state estimate, for reading)"
    )
    for line in tail:
        print(f"(record said: {line})")


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    local_frames = int(args[0]) if len(args) > 0 else 2000
    cluster_frames = int(args[1]) if len(args) > 1 else 60
    cycles = int(args[2]) if len(args) > 2 else 50
    print(
        f"# {platform.machine()}, {os.cpu_count()} logical CPUs, Python "
        f"{platform.python_version()}, zstandard {zstandard.__version__}, allsmi {__version__}"
    )
    encode_sink_us = bench_sink(local_frames, cluster_frames)
    collect_ms = bench_collect(cycles)
    per_frame_ms = collect_ms + encode_sink_us / 1000
    print("\n## implied cost of `allsmi record -i 1` (medians)")
    print(f"{'collect CPU + encode + zstd append+flush':<44}{per_frame_ms:>9.3f} ms/frame")
    print(
        f"{'share of one core at 1 frame/s':<44}{per_frame_ms / 10:>8.3f} %"
        f"   target < {TARGET_CORE_PCT:g}%"
    )
    if "--no-real" not in sys.argv:
        bench_real()


if __name__ == "__main__":
    main()
