"""Cost of the node simulator: ``advance`` and ``frame`` wall time (min / median over N runs) for
4×8 and 100×8 GPU clusters, and the size of one encoded frame line, raw and inside a zstd chunk
of 60 consecutive frames (how it will sit in a recording).

``frame`` is timed twice: right after an ``advance`` (rows are built) and again at the same
state (rows come from the per-node cache, as when ``mock`` serves one state many times).

Run: ``PYTHONPATH=src .venv/bin/python bench/bench_simulator.py [runs]``. Prints a table;
asserts nothing (docs/architecture.md §9: figures go to the README, never into tests).
"""

from __future__ import annotations

import statistics
import sys
import time

import zstandard

from allsmi.adapters.simulation.simulator import ClusterSimulator, ClusterSpec
from allsmi.adapters.wire import encode_line
from allsmi.domain.model import DEFAULT_SECTIONS, SECTIONS

T0 = 1_776_513_600_000
STEP_MS = 1000
CHUNK = 60


def _ms(samples: list[float]) -> str:
    return f"{min(samples):7.2f} / {statistics.median(samples):7.2f}"


def _bench(nodes: int, include: tuple[str, ...], runs: int) -> None:
    start = time.perf_counter()
    sim = ClusterSimulator(ClusterSpec(nodes=nodes, gpus_per_node=8))
    built_ms = (time.perf_counter() - start) * 1000.0
    advance, cold, warm, lines = [], [], [], []
    for k in range(runs):
        t0 = time.perf_counter()
        sim.advance(STEP_MS)
        t1 = time.perf_counter()
        frame = sim.frame(T0 + k * STEP_MS, include)
        t2 = time.perf_counter()
        sim.frame(T0 + k * STEP_MS, include)
        t3 = time.perf_counter()
        advance.append((t1 - t0) * 1000.0)
        cold.append((t2 - t1) * 1000.0)
        warm.append((t3 - t2) * 1000.0)
        lines.append(encode_line(frame))
    chunk = b"".join(lines[:CHUNK])
    packed = len(zstandard.ZstdCompressor(level=3).compress(chunk)) / min(CHUNK, len(lines))
    label = f"{nodes}x8 {'all' if include == SECTIONS else 'default'}"
    print(
        f"{label:<14} {built_ms:8.1f} {_ms(advance)} {_ms(cold)} {_ms(warm)}"
        f" {statistics.median(len(x) for x in lines) / 1024:9.1f} {packed / 1024:9.1f}"
    )


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    print(f"{runs} runs, dt {STEP_MS} ms; times in ms as min / median; sizes in KiB per frame")
    print(
        f"{'cluster':<14} {'init':>8} {'advance':>17} {'frame (built)':>17}"
        f" {'frame (cached)':>17} {'line':>9} {'zstd-3':>9}"
    )
    for nodes in (4, 100):
        for include in (DEFAULT_SECTIONS, SECTIONS):
            _bench(nodes, include, runs)


if __name__ == "__main__":
    main()
