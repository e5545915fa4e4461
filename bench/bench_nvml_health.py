"""Cost of the local cycle's NVML reads with the health signals (docs/recording-format.md
§5.3.3), for 8 GPUs through the real pynvml over the fake C library (tests/fixtures/
fake_nvml.c, built here with gcc): wall and CPU time of one ``NvmlReader.read`` (min / median
over N runs) with 18 active NVLinks to NVSwitches per GPU (an HGX board), the same cycle when it
re-reads the topology (links, MIG mode: a device's first cycle and every ``topology_every``-th),
the same with every health call refused (so the difference is what health
costs), the C calls per cycle, and one ``nvmlDeviceGetPcieThroughput`` call for scale (the
fake sleeps 20 ms in it, as the real one samples; the reader never calls it).

Run: ``PYTHONPATH=src .venv/bin/python bench/bench_nvml_health.py [runs] [--real]``.
``--real`` reads this machine's own GPUs through its ``libnvidia-ml.so.1`` instead (no
refused variant, no call counts). Prints a table; asserts nothing (docs/architecture.md §9:
figures go to the README, never into tests). Target: ≤ 5 ms per cycle for 8 GPUs.
"""

from __future__ import annotations

import ctypes
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pynvml

from allsmi.adapters.machine.nvml import (
    DYNAMIC_CALLS,
    HEALTH_CALLS,
    TOPOLOGY_CALLS,
    NvmlReader,
    load_nvml,
)

SOURCE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "fake_nvml.c"
GPUS = 8
NOT_SUPPORTED = 3
LINKS = 18  # per GPU, active, to NVSwitches (nvmlIntNvLinkDeviceType_t 2)
SWITCH = 2


def _build(directory: Path) -> Path:
    gcc = shutil.which("gcc")
    if gcc is None:
        sys.exit("bench_nvml_health: gcc not found: cannot build the fake libnvidia-ml.so.1")
    target = directory / "libnvidia-ml.so.1"
    command = [gcc, "-shared", "-fPIC", "-O2", "-pthread", "-o", str(target), str(SOURCE)]
    subprocess.run(command, check=True)
    return target


def _install(path: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(path))
    lib.fake_reset()
    lib.fake_set_device_count(ctypes.c_uint(GPUS))
    for index in range(GPUS):
        for link in range(LINKS):
            lib.fake_set_nvlink(
                ctypes.c_uint(index), ctypes.c_uint(link), ctypes.c_int(1), ctypes.c_uint(SWITCH)
            )
    pynvml.nvmlLib = lib
    pynvml._nvmlGetFunctionPointer_cache.clear()
    return lib


def _time(call: Callable[[], object], runs: int, clock: Callable[[], float]) -> list[float]:
    samples = []
    for _ in range(runs):
        start = clock()
        call()
        samples.append((clock() - start) * 1000.0)
    return samples


def _cycle_rows(label: str, reader: NvmlReader, runs: int) -> list[tuple[str, list[float]]]:
    reader.read()  # the first cycle reads static values and registers XID events
    reader.read()  # …and the second has counter baselines: rates from here on
    return [
        (f"{label} (wall)", _time(reader.read, runs, time.perf_counter)),
        (f"{label} (CPU time)", _time(reader.read, runs, time.process_time)),
    ]


def _calls(lib: ctypes.CDLL) -> int:
    counter = lib.fake_call_count
    counter.argtypes = [ctypes.c_char_p]
    counter.restype = ctypes.c_uint
    names = {name for name in (*DYNAMIC_CALLS, *HEALTH_CALLS, *TOPOLOGY_CALLS)}
    names |= {name + suffix for name in names for suffix in ("_v2", "_v3")}
    return sum(int(counter(name.encode())) for name in names)


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    runs = int(args[0]) if args else 300
    real = "--real" in sys.argv[1:]
    rows: list[tuple[str, list[float]]] = []
    notes: list[str] = []
    if real:
        reader = NvmlReader(load_nvml(), "bench", "bench")
        reader.open()
        try:
            gpus = len(reader.read().gpus)
            rows += _cycle_rows(f"read(), {gpus} real GPUs", reader, runs)
        finally:
            reader.close()
    else:
        with tempfile.TemporaryDirectory() as tmp:
            lib = _install(_build(Path(tmp)))
            reader = NvmlReader(load_nvml(), "bench", "bench")
            reader.open()
            try:
                rows += _cycle_rows(f"read(), {GPUS} GPUs, health", reader, runs)
                before = _calls(lib)
                reader.read()
                notes.append(f"C calls per cycle with health: {_calls(lib) - before}")
            finally:
                reader.close()
            reader = NvmlReader(load_nvml(), "bench", "bench", topology_every=1)
            reader.open()
            try:
                rows += _cycle_rows(f"read(), {GPUS} GPUs, health, topology re-read", reader, runs)
                before = _calls(lib)
                reader.read()
                notes.append(f"C calls of a cycle re-reading topology: {_calls(lib) - before}")
            finally:
                reader.close()

            lib = _install(Path(tmp) / "libnvidia-ml.so.1")
            for index in range(GPUS):
                # all but nvmlDeviceGetClockInfo: its graphics clock is no health reading
                refused = [name for name in HEALTH_CALLS if name != "nvmlDeviceGetClockInfo"]
                for name in (*refused, "nvmlDeviceGetCurrentClocksThrottleReasons"):
                    lib.fake_set_unsupported(
                        ctypes.c_uint(index), name.encode(), ctypes.c_int(NOT_SUPPORTED)
                    )
                lib.fake_set_unsupported(
                    ctypes.c_uint(index), b"nvmlDeviceRegisterEvents", ctypes.c_int(NOT_SUPPORTED)
                )
            reader = NvmlReader(load_nvml(), "bench", "bench")
            reader.open()
            try:
                rows += _cycle_rows(f"read(), {GPUS} GPUs, health refused", reader, runs)
                before = _calls(lib)
                reader.read()
                notes.append(f"C calls per cycle without health: {_calls(lib) - before}")
                handle = pynvml.nvmlDeviceGetHandleByIndex(0)
                start = time.perf_counter()
                pynvml.nvmlDeviceGetPcieThroughput(handle, pynvml.NVML_PCIE_UTIL_TX_BYTES)
                one = (time.perf_counter() - start) * 1000.0
                notes.append(
                    f"one nvmlDeviceGetPcieThroughput: {one:.1f} ms; TX+RX on {GPUS} GPUs "
                    f"would add {one * 2 * GPUS:.0f} ms a cycle"
                )
            finally:
                reader.close()
    print(
        f"# {platform.machine()}, {os.cpu_count()} logical CPUs, Python "
        f"{platform.python_version()}, {runs} runs each, "
        f"{'real libnvidia-ml' if real else 'fake libnvidia-ml (tests/fixtures/fake_nvml.c)'}"
    )
    print(f"{'cycle':<52}{'min ms':>10}{'median ms':>12}")
    for name, samples in rows:
        print(f"{name:<52}{min(samples):>10.3f}{statistics.median(samples):>12.3f}")
    for note in notes:
        print(f"# {note}")


if __name__ == "__main__":
    main()
