"""The recording reader on big files (docs/recording-format.md §7.7): open, duration, seek, step and
peak RSS of ``RecordingSource``, against ``zstd -dc FILE > /dev/null`` in the same run.

Two recordings, written by the real sink through the real recorder root (``record_loop`` on a
``SimClock``, simulator-backed source advanced one interval per collect, zstd, flushed after
every frame, no rotation) and cached in ``bench/out/`` (reused when present; delete to rebuild):
- ``1m``: 1,000,000 frames of ~1 KB, 1 s apart (≈ 11.6 days): ``ClusterSpec(nodes=1,
  gpus_per_node=1, cores_per_node=2)`` with sections gpu,memory. (The brief's gpu,cpu,memory
  gives 1.8 KB even at 1 GPU and 2 cores, so the cpu section is left out to reach ~1 KB.)
- ``100host``: 2,000 frames of 100 nodes × 8 GPUs (~1 MB-1.5 MB a frame), 1 s apart.

Every measurement pass runs in a fresh child process (``--measure FILE``) so that peak RSS
(``ru_maxrss``) is that pass's own and no cache survives between passes: open + first frame
(``RecordingSource(path)`` + ``frame(0)``), ``duration_ms``, 200 seeks to random times
(``index_at_or_before(t)`` + ``frame(i)``), 200 steps (``frame(i+1)`` right after ``frame(i)``,
random ``i``), peak RSS. The parent runs several passes and, in the same run, the physical
reference ``zstd -dc FILE > /dev/null`` (wall, best and median of 3).

Run:
  ``.venv/bin/python bench/bench_reader.py [1m] [100host] [--passes N]`` — write what is
  missing, then measure and print the tables;
  ``.venv/bin/python bench/bench_reader.py --write-only [1m] [100host]`` — only write the files
  (the 1M file takes minutes: ``nohup … &`` it);
  ``.venv/bin/python bench/bench_reader.py --measure FILE [--seed S]`` — one pass, prints JSON.
Asserts nothing (docs/architecture.md §9: figures go to the README, never into tests).
"""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Final, NamedTuple

import zstandard

from allsmi import __version__
from allsmi.adapters.simulation.simulator import ClusterSimulator, ClusterSpec
from allsmi.adapters.wire import encode_line
from allsmi.domain.model import Source
from common import OUT_DIR, T0, child_json, min_med, own_peak_rss_mb, write_recording

SAMPLES: Final = 200


class Dataset(NamedTuple):
    key: str
    file: str
    spec: ClusterSpec
    include: tuple[str, ...]
    frames: int
    interval_ms: int
    source: Source
    targets: dict[str, float]  # open_s, seek_med_ms, rss_mb


DATASETS: Final = {
    "1m": Dataset(
        "1m",
        "reader-1m.ndjson.zst",
        ClusterSpec(nodes=1, gpus_per_node=1, cores_per_node=2),
        ("gpu", "memory"),
        1_000_000,
        1000,
        "local",
        {"open_s": 0.3, "seek_med_ms": 5.0, "rss_mb": 100.0},
    ),
    "100host": Dataset(
        "100host",
        "reader-100host.ndjson.zst",
        ClusterSpec(nodes=100, gpus_per_node=8),
        ("gpu", "cpu", "memory", "chassis", "process"),
        2000,
        1000,
        "remote",
        {"seek_med_ms": 50.0},
    ),
}


# --------------------------------------------------------------------------- writing


def _line_bytes(ds: Dataset) -> int:
    sim = ClusterSimulator(ds.spec)
    sim.advance(ds.interval_ms)
    return len(encode_line(sim.frame(T0, ds.include)))


def ensure(ds: Dataset) -> Path:
    """The dataset's file, written now if it is not cached; prints how writing went."""
    path = OUT_DIR / ds.file
    meta_path = path.with_name(path.name + ".json")
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        cached = " (cached)"
    else:
        OUT_DIR.mkdir(exist_ok=True)
        tmp = path.with_name("tmp-" + path.name)
        tmp.unlink(missing_ok=True)
        print(f"writing {path.name}: {ds.frames} frames ...", flush=True)
        result, seconds = write_recording(
            tmp, ds.spec, ds.include, ds.frames, ds.interval_ms, ds.source
        )
        os.replace(tmp, path)
        meta = {"frames": result.frames, "write_s": seconds, "line_bytes": _line_bytes(ds)}
        meta_path.write_text(json.dumps(meta))
        cached = ""
    size = path.stat().st_size
    print(
        f"{ds.key}: {path} — {meta['frames']} frames, {meta['line_bytes']} B/line, "
        f"{size / 1e6:.1f} MB stored; written in {meta['write_s']:.1f} s "
        f"({meta['frames'] / meta['write_s']:.0f} frames/s){cached}",
        flush=True,
    )
    return path


# --------------------------------------------------------------------------- one pass


def measure(path: Path, seed: int) -> dict[str, Any]:
    """One pass in this (fresh) process."""
    from allsmi.adapters.recording.source import RecordingSource

    rss_base = own_peak_rss_mb()
    clock = time.perf_counter
    start = clock()
    src = RecordingSource(path)
    src.frame(0)
    open_s = clock() - start
    rss_open = own_peak_rss_mb()
    start = clock()
    duration_ms = src.duration_ms
    duration_s = clock() - start
    count = src.frame_count
    first, last = src.first_t_ms, src.last_t_ms
    rng = random.Random(seed)
    seeks = []
    for _ in range(SAMPLES):
        target = rng.randint(first, last)
        start = clock()
        src.frame(src.index_at_or_before(target))
        seeks.append((clock() - start) * 1000)
    steps = []
    for _ in range(SAMPLES):
        i = rng.randrange(count - 1)
        src.frame(i)
        start = clock()
        src.frame(i + 1)
        steps.append((clock() - start) * 1000)
    return {
        "open_s": open_s,
        "duration_s": duration_s,
        "duration_ms": duration_ms,
        "frames": count,
        "chunks": len(src.chunks),
        "opened_by": sorted({s.opened_by for s in src.segments}),
        "seeks_ms": seeks,
        "steps_ms": steps,
        "rss_base_mb": rss_base,
        "rss_open_mb": rss_open,
        "rss_peak_mb": own_peak_rss_mb(),
    }


def _zstd_dc(path: Path, runs: int = 3) -> list[float]:
    walls = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(["zstd", "-dc", str(path)], stdout=subprocess.DEVNULL, check=True)
        walls.append(time.perf_counter() - start)
    return walls


# --------------------------------------------------------------------------- report


def _verdict(value: float, target: float | None) -> str:
    if target is None:
        return ""
    if value <= target:
        return f"≤ {target:g}  ok"
    return f"≤ {target:g}  MISSED ×{value / target:.1f} (+{value - target:.3g})"


def report(ds: Dataset, path: Path, passes: int) -> None:
    ref = _zstd_dc(path)
    runs = [
        child_json(__file__, "--measure", str(path), "--seed", str(seed)) for seed in range(passes)
    ]
    seeks = [x for r in runs for x in r["seeks_ms"]]
    steps = [x for r in runs for x in r["steps_ms"]]
    opens = [r["open_s"] for r in runs]
    durs = [r["duration_s"] * 1000 for r in runs]
    rss = [r["rss_peak_mb"] for r in runs]
    first = runs[0]
    ref_lo, ref_mid = min_med(ref)
    print(
        f"\n## {ds.key}: {first['frames']} frames, {first['chunks']} chunks, opened by "
        f"{'/'.join(first['opened_by'])}, duration {first['duration_ms'] / 3_600_000:.1f} h; "
        f"{passes} fresh processes × {SAMPLES} seeks/steps"
    )
    print(f"{'measure':<34}{'min':>10}{'median':>10}{'worst':>10}   target")
    t = ds.targets
    rows: list[tuple[str, list[float], float | None, float]] = [
        ("open + frame(0)  s", opens, t.get("open_s"), statistics.median(opens)),
        ("duration_ms  ms", durs, None, 0.0),
        ("seek (index_at_or_before+frame) ms", seeks, t.get("seek_med_ms"), 0.0),
        ("step frame(i+1)  ms", steps, None, 0.0),
        ("peak RSS  MB", rss, t.get("rss_mb"), max(rss)),
        ("  RSS after imports  MB", [r["rss_base_mb"] for r in runs], None, 0.0),
        ("  RSS after open  MB", [r["rss_open_mb"] for r in runs], None, 0.0),
        ("zstd -dc FILE > /dev/null  s", ref, None, 0.0),
    ]
    for name, samples, target, judged in rows:
        lo, mid = min_med(samples)
        verdict = _verdict(judged or mid, target)
        print(f"{name:<34}{lo:>10.3f}{mid:>10.3f}{max(samples):>10.3f}   {verdict}")
    open_lo, open_mid = min_med(opens)
    print(
        f"{'open ÷ zstd -dc (min, median)':<34}{open_lo / ref_lo:>10.4f}{open_mid / ref_mid:>10.4f}"
    )


def main() -> None:
    argv = sys.argv[1:]
    if argv and argv[0] == "--measure":
        seed = int(argv[argv.index("--seed") + 1]) if "--seed" in argv else 0
        print(json.dumps(measure(Path(argv[1]), seed)))
        return
    passes = int(argv[argv.index("--passes") + 1]) if "--passes" in argv else 3
    keys = [a for a in argv if a in DATASETS] or list(DATASETS)
    print(
        f"# {platform.machine()}, {os.cpu_count()} logical CPUs, Python "
        f"{platform.python_version()}, zstandard {zstandard.__version__}, allsmi {__version__}"
    )
    paths = {key: ensure(DATASETS[key]) for key in keys}
    if "--write-only" in argv:
        return
    for key in keys:
        report(DATASETS[key], paths[key], passes)


if __name__ == "__main__":
    main()
