"""The recording's map from the background pass (``allsmi.adapters.recording.mapscan``): how
long :class:`MapScan` takes over a whole recording without stored summaries, against the
physical reference measured in the same run, what it holds in memory, and what it costs the
UI thread's keys while it runs.

Files (cached in ``bench/out/``; ``bench_reader.py`` writes them if missing):
- ``reader-100host.ndjson.zst``: 2,000 frames of 100 hosts × 8 GPUs (~1.5 MB a line);
- ``reader-1m.ndjson.zst``: 1,000,000 frames of one GPU (~1 KB a line).

Figures, each in a fresh child process (``--measure KIND FILE``, one JSON line), timed from
after its imports:
- reference: ``zstd -dc FILE | python -c 'orjson.loads each line'`` (the two run side by side
  on two cores; its wall time, best and median of ``--passes``);
- ``scan``: ``MapScan(FILE)``, ``wait()`` for batches and ``merge`` each into the map until
  done: wall, peak RSS of the child, the map's ``nbytes``, frames;
- ``keys``: the same scan while the main thread acts as the UI: every 20 ms a "key" (a fixed
  ~1 ms of Python work, timed) and every 200 ms ``poll()`` + merging what came (timed apart);
  key p50/p95/max, and the same key measured idle before the scan (its cost without it).
Target: scan time ≤ 2 × reference (MapScan at ≥ 0.5 × the reference's speed).

Run: ``.venv/bin/python bench/bench_map.py [100host] [1m] [--passes N]``. Asserts nothing
(docs/architecture.md §9: figures go to the README, never into tests).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from allsmi import __version__
from common import BENCH_DIR, OUT_DIR, child_json, own_peak_rss_mb, quantile

FILES: Final = {
    "100host": OUT_DIR / "reader-100host.ndjson.zst",
    "1m": OUT_DIR / "reader-1m.ndjson.zst",
}
TARGET_RATIO: Final = 2.0
KEY_EVERY_S: Final = 0.020
POLL_EVERY_S: Final = 0.200
REFERENCE_PY: Final = (
    "import sys, orjson\nloads = orjson.loads\nfor line in sys.stdin.buffer:\n    loads(line)\n"
)


def _key() -> float:
    """One "key": a fixed piece of Python work (~1 ms); its wall seconds."""
    start = time.perf_counter()
    total = 0
    for i in range(20_000):
        total += i * i
    return time.perf_counter() - start


def measure(kind: str, path: Path) -> dict[str, Any]:
    from allsmi.adapters.recording.mapscan import MapScan
    from allsmi.domain.summary import Summary

    idle = [_key() for _ in range(200)] if kind == "keys" else []
    clock = time.perf_counter
    start = clock()
    scan = MapScan(path)
    the_map: Summary | None = None
    keys: list[float] = []
    polls: list[float] = []

    def take(batches: list[Any]) -> None:
        nonlocal the_map
        for batch in batches:
            if the_map is None:
                the_map = batch.summary
            else:
                the_map.merge(batch.summary)

    if kind == "scan":
        while not scan.done:
            take(scan.wait())
    else:
        next_key = next_poll = clock()
        while not scan.done:
            now = clock()
            if now >= next_poll:
                take(scan.poll())
                polls.append(clock() - now)
                next_poll = now + POLL_EVERY_S
            elif now >= next_key:
                keys.append(_key())
                next_key = max(next_key + KEY_EVERY_S, now)
            else:
                time.sleep(max(0.0, min(next_key, next_poll) - now))
    wall = clock() - start
    scan.close()
    assert the_map is not None
    return {
        "wall_s": wall,
        "frames": scan.frames,
        "rss_mb": own_peak_rss_mb(),
        "map_mb": the_map.nbytes() / 1e6,
        "buckets": len(the_map.buckets),
        "idle_key_ms": 1000 * statistics.median(idle) if idle else 0.0,
        "key_p50_ms": 1000 * quantile(keys, 0.5),
        "key_p95_ms": 1000 * quantile(keys, 0.95),
        "key_max_ms": 1000 * max(keys, default=0.0),
        "keys": len(keys),
        "poll_max_ms": 1000 * max(polls, default=0.0),
    }


def _reference(path: Path) -> float:
    start = time.perf_counter()
    with subprocess.Popen(["zstd", "-dc", str(path)], stdout=subprocess.PIPE) as zstd:
        subprocess.run([sys.executable, "-c", REFERENCE_PY], stdin=zstd.stdout, check=True)
        assert zstd.stdout is not None
        zstd.stdout.close()
    return time.perf_counter() - start


def _ensure(name: str, path: Path) -> None:
    if not path.exists():
        arg = "100host" if name == "100host" else "1m"
        subprocess.run([sys.executable, str(BENCH_DIR / "bench_reader.py"), "--write-only", arg])


def run(name: str, path: Path, passes: int) -> dict[str, list[Any]]:
    _ensure(name, path)
    subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=True)  # warm the cache
    rows: dict[str, list[Any]] = {"ref": [], "scan": [], "keys": []}
    for _ in range(passes):
        for kind in rows:
            print(f"  {name} {kind} ...", end="", flush=True)
            rows[kind].append(
                _reference(path)
                if kind == "ref"
                else child_json(__file__, "--measure", kind, str(path))
            )
            print(" done", flush=True)
    return rows


def report(name: str, path: Path, res: dict[str, list[Any]]) -> None:
    ref = res["ref"]
    ref_lo, ref_mid = min(ref), statistics.median(ref)
    scan = res["scan"]
    print(
        f"\n## {name}: {path.name}, {path.stat().st_size / 1e6:.1f} MB stored, "
        f"{scan[0]['frames']:,} frames, {scan[0]['buckets']:,} buckets; {len(ref)} passes"
    )
    print(f"{'measure':<44}{'best':>9}{'median':>9}{'÷ref best':>11}{'÷ref med':>10}   target")

    def row(label: str, values: Sequence[float], *, ratio: bool = False, digits: int = 2) -> None:
        lo, mid = min(values), statistics.median(values)
        rb = f"{lo / ref_lo:.2f}×" if ratio else ""
        rm = f"{mid / ref_mid:.2f}×" if ratio else ""
        verdict = ""
        if ratio:
            ok = mid / ref_mid <= TARGET_RATIO
            verdict = f"≤ {TARGET_RATIO:g}  " + (
                "ok" if ok else f"MISSED ×{mid / ref_mid / TARGET_RATIO:.2f}"
            )
        print(f"{label:<44}{lo:>9.{digits}f}{mid:>9.{digits}f}{rb:>11}{rm:>10}   {verdict}")

    row("zstd -dc | orjson.loads each line  s (ref)", ref)
    row("MapScan, whole map  s", [r["wall_s"] for r in scan], ratio=True)
    row("  speed ÷ reference speed", [ref_mid / r["wall_s"] for r in scan])
    row("  peak RSS of the child  MB", [r["rss_mb"] for r in scan], digits=1)
    row("  map nbytes  MB", [r["map_mb"] for r in scan], digits=1)
    keys = res["keys"]
    row("with keys every 20 ms + poll 200 ms  s", [r["wall_s"] for r in keys], ratio=True)
    row("  key idle (before the scan)  ms", [r["idle_key_ms"] for r in keys])
    row("  key p50 while scanning  ms", [r["key_p50_ms"] for r in keys])
    row("  key p95 while scanning  ms", [r["key_p95_ms"] for r in keys])
    row("  key max while scanning  ms", [r["key_max_ms"] for r in keys])
    row("  poll + merge max  ms", [r["poll_max_ms"] for r in keys])


def main() -> None:
    argv = sys.argv[1:]
    if argv and argv[0] == "--measure":
        print(json.dumps(measure(argv[1], Path(argv[2]))))
        return
    passes = int(argv[argv.index("--passes") + 1]) if "--passes" in argv else 3
    names = [a for a in argv if a in FILES] or list(FILES)
    print(
        f"# {platform.machine()}, {os.cpu_count()} logical CPUs, Python "
        f"{platform.python_version()}, allsmi {__version__}; {passes} passes"
    )
    results = {name: run(name, FILES[name], passes) for name in names}
    for name in names:
        report(name, FILES[name], results[name])


if __name__ == "__main__":
    main()
