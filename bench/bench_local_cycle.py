"""Cost of one local collection cycle (HostReader): wall time per read_* call and per full
cycle (min / median over N runs), and the CPU time of one cycle (``time.process_time``).

Run: ``PYTHONPATH=src .venv/bin/python bench/bench_local_cycle.py [runs]``. Prints a table;
asserts nothing (docs/architecture.md §9: figures go to the README, never into tests).
"""

from __future__ import annotations

import os
import platform
import socket
import statistics
import sys
import time
from collections.abc import Callable

import psutil

from allsmi.adapters.machine.host import HostReader


def _time(call: Callable[[], object], runs: int, clock: Callable[[], float]) -> list[float]:
    samples = []
    for _ in range(runs):
        start = clock()
        call()
        samples.append((clock() - start) * 1000.0)
    return samples


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    host = socket.gethostname()
    reader = HostReader(host, host)
    reader.prime()
    time.sleep(0.1)

    def cycle() -> None:
        reader.read_cpu()
        reader.read_memory()
        reader.read_storage()
        reader.read_chassis()

    cycle()  # the first cycle loads the static facts (cpuinfo, sysfs, DMI); not measured
    first = HostReader(host, host)
    start = time.perf_counter()
    first.read_cpu()
    first.read_chassis()
    cold_ms = (time.perf_counter() - start) * 1000.0

    rows: list[tuple[str, list[float]]] = [
        ("read_cpu", _time(reader.read_cpu, runs, time.perf_counter)),
        ("read_memory", _time(reader.read_memory, runs, time.perf_counter)),
        ("read_storage", _time(reader.read_storage, runs, time.perf_counter)),
        ("read_chassis", _time(reader.read_chassis, runs, time.perf_counter)),
        ("full cycle (wall)", _time(cycle, runs, time.perf_counter)),
        ("full cycle (CPU time)", _time(cycle, runs, time.process_time)),
    ]
    print(
        f"# {platform.machine()}, {os.cpu_count()} logical CPUs, psutil {psutil.__version__}, "
        f"Python {platform.python_version()}, {runs} runs each"
    )
    print(f"{'call':<24}{'min ms':>10}{'median ms':>12}")
    for name, samples in rows:
        print(f"{name:<24}{min(samples):>10.3f}{statistics.median(samples):>12.3f}")
    print(f"{'first cpu+chassis (cold)':<24}{cold_ms:>10.3f}{'':>12}")


if __name__ == "__main__":
    main()
