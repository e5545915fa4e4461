"""The merged replay (docs/architecture.md §5.8): seeks, memory and open files of
``MergedSource`` against one recording of the same cluster.

Three setups of one simulated cluster (``ClusterSpec(nodes=1000, gpus_per_node=8)``, sections
gpu,cpu,memory,chassis as ``allsmi record`` stores them), each file written by the real
``RecordingSink`` (zstd, seek tables, stored summaries and events, flushed after every frame as
the recorder does at ≥ 1 s) and cached in ``bench/out/merged/`` (reused when present; delete the
folder to rebuild):

- ``one``: one 1,000-host recording, ``FRAMES`` frames ``INTERVAL_MS`` apart;
- ``shards``: the same rows split into 10 shard files of 100 hosts each, the same frames, each
  shard's times ``SHARD_SKEW_MS`` × its number later (ten recorders do not tick together);
- ``singles``: 1,000 single-node (``local``) recordings of the same nodes over the same period,
  ``SINGLE_FRAMES`` frames ``SINGLE_INTERVAL_MS`` apart, node *j*'s times ``j × 7 mod 50`` ms
  later. Written 200 nodes at a time, each batch from a fresh simulator of the same seed.

Each setup is measured in a fresh child process (``--measure SETUP DIR``) so that its peak
RSS (VmHWM) is its own: the source opened (``RecordingSource`` / ``MergedSource.open``), a
``ReplayDriver.of`` over it and the first frame built (``open``); then ``SEEKS`` seeks as the
replay does them — ``g``, a timecode, ``enter`` fed to the driver, then ``driver.frame()``
(the frame the screen needs) — to the same random offsets in every setup. A thread samples
``/proc/self/fd`` every 0.5 ms for the most files open at once (less the sampler's own). The
``singles`` child runs under ``RLIMIT_NOFILE`` = what it had open after imports + 64 (+1 for
the sampler), so a moment over 64 cannot hide between samples: it fails with EMFILE, and is
then measured again without the limit.

Targets (the merged-replay issue): the 10-shard seek ≤ 1.5× the one-file seek (medians); the
10-shard peak RSS ≤ 200 MB; the 1,000 single-node inputs seek in ≤ 2 s with ≤ 64 files open.

Run: ``.venv/bin/python bench/bench_merged.py [--dir DIR] [--passes N]`` — write what is
missing, measure, print the table (the last line is the figures as JSON);
``… --measure SETUP DIR [--seed S] [--fd-limit]`` — one pass, prints JSON;
``… --profile SETUP DIR`` — the seeks under cProfile, the top functions printed.
Asserts nothing (docs/architecture.md §9: figures go to the README, never into tests).
"""

from __future__ import annotations

import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC
from itertools import chain
from pathlib import Path
from typing import Any, Final

import zstandard

from allsmi import __version__
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.adapters.simulation.simulator import ClusterSimulator, ClusterSpec, NodeReading
from allsmi.app.record import fit_frame
from allsmi.domain.model import Header, Source
from allsmi.domain.sections import build_frame
from common import OUT_DIR, T0, own_peak_rss_mb, quantile

SPEC: Final = ClusterSpec(nodes=1000, gpus_per_node=8)
INCLUDE: Final = ("gpu", "cpu", "memory", "chassis")  # record's default sections
FRAMES: Final = 120  # 10 minutes at 5 s
INTERVAL_MS: Final = 5000
SHARDS: Final = 10
SHARD_SKEW_MS: Final = 3
SINGLE_FRAMES: Final = 60  # the same 10 minutes at 10 s
SINGLE_INTERVAL_MS: Final = 10_000
SINGLE_BATCH: Final = 200
SEEKS: Final = 20
SETUPS: Final = ("one", "shards", "singles")
FD_BUDGET: Final = 64
TARGET_RATIO: Final = 1.5
TARGET_RSS_MB: Final = 200.0
TARGET_SINGLES_SEEK_MS: Final = 2000.0


# --------------------------------------------------------------------------- writing


def _sink(path: Path, source: Source, interval_ms: int, hosts: tuple[str, ...]) -> RecordingSink:
    header = Header(
        source=source, interval_ms=interval_ms, hosts=hosts, all_smi_version=__version__
    )
    return RecordingSink(SinkConfig(path=path, codec=Codec.ZSTD, max_size=0, max_files=1), header)


def _append(
    sink: RecordingSink, readings: Sequence[NodeReading], seq: int, t_ms: int, source: Source
) -> None:
    rows = {name: tuple(chain.from_iterable(r.rows()[name] for r in readings)) for name in INCLUDE}
    line, written = fit_frame(build_frame(t_ms, rows, seq=seq, source=source))
    sink.append(line, seq, t_ms, frame=written)
    sink.flush()


def _readings(sim: ClusterSimulator, nodes: range, t_ms: int) -> list[NodeReading]:
    found = [sim.node_frame_parts(n, t_ms) for n in nodes]
    return [r for r in found if r is not None]


def _write_cluster(work: Path) -> None:
    """``one`` and ``shards`` from the same simulated rows, frame by frame."""
    sim = ClusterSimulator(SPEC)
    hosts = sim.hosts
    per = SPEC.nodes // SHARDS
    one = _sink(work / "one" / "cluster.ndjson.zst", "remote", INTERVAL_MS, hosts)
    shards = [
        _sink(
            work / "shards" / f"shard-{k:02d}.ndjson.zst",
            "remote",
            INTERVAL_MS,
            hosts[k * per : (k + 1) * per],
        )
        for k in range(SHARDS)
    ]
    for seq in range(FRAMES):
        if seq:
            sim.advance(INTERVAL_MS)
        t_ms = T0 + seq * INTERVAL_MS
        readings = _readings(sim, range(SPEC.nodes), t_ms)
        _append(one, readings, seq, t_ms, "remote")
        for k, sink in enumerate(shards):
            part = readings[k * per : (k + 1) * per]
            _append(sink, part, seq, t_ms + k * SHARD_SKEW_MS, "remote")
    for sink in (one, *shards):
        sink.close()


def _write_singles(work: Path) -> None:
    """``singles``: ``SINGLE_BATCH`` sinks open at a time, a fresh simulator per batch."""
    for first in range(0, SPEC.nodes, SINGLE_BATCH):
        nodes = range(first, min(SPEC.nodes, first + SINGLE_BATCH))
        sim = ClusterSimulator(SPEC)
        sinks = {
            n: _sink(
                work / "singles" / f"node-{n + 1:04d}.ndjson.zst",
                "local",
                SINGLE_INTERVAL_MS,
                (SPEC.host_id(n),),
            )
            for n in nodes
        }
        for seq in range(SINGLE_FRAMES):
            if seq:
                sim.advance(SINGLE_INTERVAL_MS)
            base = T0 + seq * SINGLE_INTERVAL_MS
            for reading, n in zip(_readings(sim, nodes, base), nodes, strict=True):
                _append(sinks[n], [reading], seq, base + n * 7 % 50, "local")
        for sink in sinks.values():
            sink.close()


def ensure(work: Path) -> dict[str, Any]:
    """The three setups under ``work``, written now unless ``meta.json`` says they are."""
    meta_path = work / "meta.json"
    if meta_path.exists():
        meta: dict[str, Any] = json.loads(meta_path.read_text())
        meta["cached"] = True
        return meta
    for name in SETUPS:
        (work / name).mkdir(parents=True, exist_ok=True)
        for stale in (work / name).iterdir():
            stale.unlink()
    print(f"writing {work}: 1 × {SPEC.nodes} hosts and {SHARDS} shards ...", flush=True)
    start = time.perf_counter()
    _write_cluster(work)
    cluster_s = time.perf_counter() - start
    print(f"  {cluster_s:.0f} s; {SPEC.nodes} single-node recordings ...", flush=True)
    start = time.perf_counter()
    _write_singles(work)
    meta = {"cluster_write_s": cluster_s, "singles_write_s": time.perf_counter() - start}
    meta_path.write_text(json.dumps(meta))
    meta["cached"] = False
    return meta


def paths_of(work: Path, setup: str) -> list[Path]:
    return sorted((work / setup).glob("*.ndjson.zst"))


# --------------------------------------------------------------------------- one pass


def _fds() -> list[int]:
    return [int(name) for name in os.listdir("/proc/self/fd")]


def _alive(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


class FdSampler:
    """The most file descriptors open at once, sampled every 0.5 ms by a thread, less the
    ``base`` open before and the sampler's own directory descriptor."""

    def __init__(self, base: int) -> None:
        self.base = base
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.most = max(self.most, len(os.listdir("/proc/self/fd")) - 1 - self.base)
            except OSError:  # EMFILE under the limit: the main thread holds every slot
                self.most = max(self.most, FD_BUDGET + 1)
            time.sleep(0.0005)

    def __enter__(self) -> FdSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _open(setup: str, work: Path) -> Any:
    from allsmi.adapters.recording.merged import MergedSource
    from allsmi.adapters.recording.source import RecordingSource

    paths = paths_of(work, setup)
    if setup == "one":
        return RecordingSource(paths[0])
    return MergedSource.open(paths)


def _timecode(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _seek(driver: Any, seconds: int) -> tuple[float, float]:
    """One seek as the replay does it: (ms to land, ms to build the frame shown)."""
    from allsmi.domain import replay as core

    start = time.perf_counter()
    driver.feed(core.KeyPressed("g"))
    for key in [*_timecode(seconds), "enter"]:
        driver.feed(core.KeyPressed(key))
    landed = time.perf_counter()
    driver.frame()
    return (landed - start) * 1000, (time.perf_counter() - landed) * 1000


def offsets(seed: int, duration_ms: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(0, duration_ms // 1000) for _ in range(SEEKS)]


def measure(setup: str, work: Path, seed: int, fd_limit: bool) -> dict[str, Any]:
    """One pass in this (fresh) process."""
    from allsmi.app.replay_driver import ReplayDriver

    base = set(filter(_alive, _fds()))  # less the listing's own, closed by now
    held = len(base)
    limit = None
    if fd_limit:  # new descriptors take the lowest free numbers: leave 64 (+ the sampler's)
        limit = FD_BUDGET + 1
        while limit - sum(fd < limit for fd in base) < FD_BUDGET + 1:
            limit += 1
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    rss_base = own_peak_rss_mb()
    result: dict[str, Any] = {"setup": setup, "fd_limit": limit, "error": None}
    with FdSampler(held) as fds:
        try:
            start = time.perf_counter()
            source = _open(setup, work)
            driver = ReplayDriver.of(source, tz=UTC)
            frame = driver.frame()
            result["open_s"] = time.perf_counter() - start
            result["rss_open_mb"] = own_peak_rss_mb()
            result["fds_open"] = fds.most
            result["frames"] = driver.state.frame_count
            result["inputs"] = len(getattr(source, "inputs", [source]))
            lands, builds, hosts = [], [], []
            for seconds in offsets(seed, driver.state.duration_ms):
                land_ms, build_ms = _seek(driver, seconds)
                lands.append(land_ms)
                builds.append(build_ms)
                hosts.append(len(driver.frame().hosts()))
            frame = driver.frame()
            result |= {"land_ms": lands, "build_ms": builds, "hosts": hosts}
            result["seeks_ms"] = [a + b for a, b in zip(lands, builds, strict=True)]
            result["last_hosts"] = len(frame.hosts())
            driver.close()
        except Exception as err:  # reported as the pass's figure
            result["error"] = f"{type(err).__name__}: {err}"
    result["fds_most"] = fds.most
    result["rss_base_mb"] = rss_base
    result["rss_peak_mb"] = own_peak_rss_mb()
    return result


def profile(setup: str, work: Path) -> None:
    """The open and the seeks of one pass under cProfile; the top functions printed."""
    import cProfile
    import pstats

    from allsmi.app.replay_driver import ReplayDriver

    prof = cProfile.Profile()
    prof.enable()
    source = _open(setup, work)
    driver = ReplayDriver.of(source, tz=UTC)
    driver.frame()
    prof.disable()
    pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
    prof = cProfile.Profile()
    prof.enable()
    for seconds in offsets(0, driver.state.duration_ms):
        _seek(driver, seconds)
    prof.disable()
    stats = pstats.Stats(prof)
    stats.sort_stats("cumulative").print_stats(40)
    stats.sort_stats("tottime").print_stats(25)


def _child(setup: str, work: Path, seed: int, fd_limit: bool) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--measure", setup, str(work), "--seed", str(seed)]
    out = subprocess.run(
        [*argv, *(["--fd-limit"] if fd_limit else [])],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


# --------------------------------------------------------------------------- report


def _mark(value: float, target: float) -> str:
    return "ok" if value <= target else f"MISSED ×{value / target:.2f}"


def _stored_mb(work: Path, setup: str) -> float:
    return sum(p.stat().st_size for p in paths_of(work, setup)) / 1e6


def report(work: Path, passes: int) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in SETUPS}
    for seed in range(passes):
        for name in SETUPS:
            run = _child(name, work, seed, fd_limit=name == "singles")
            if run["error"] and run["fd_limit"]:
                print(f"singles under {run['fd_limit']} descriptors: {run['error']}", flush=True)
                run = _child(name, work, seed, fd_limit=False) | {"limited_error": run["error"]}
            if run["error"]:
                print(f"{name}: {run['error']}", flush=True)
            runs[name].append(run)
    figures: dict[str, Any] = {}
    for name, found in runs.items():
        good = [r for r in found if not r["error"]]
        seeks = [x for r in good for x in r["seeks_ms"]]
        figures[name] = {
            "files": len(paths_of(work, name)),
            "stored_mb": _stored_mb(work, name),
            "frames": good[0]["frames"] if good else 0,
            "open_s": statistics.median(r["open_s"] for r in good) if good else None,
            "seek_med_ms": statistics.median(seeks) if seeks else None,
            "seek_p95_ms": quantile(seeks, 0.95) if seeks else None,
            "seek_max_ms": max(seeks) if seeks else None,
            "land_med_ms": statistics.median(x for r in good for x in r["land_ms"])
            if good
            else None,
            "build_med_ms": statistics.median(x for r in good for x in r["build_ms"])
            if good
            else None,
            "hosts_shown": sorted({h for r in good for h in r["hosts"]}),
            "rss_peak_mb": max(r["rss_peak_mb"] for r in found),
            "rss_base_mb": max(r["rss_base_mb"] for r in found),
            "fds_most": max(r["fds_most"] for r in found),
            "fd_limit_error": next((r.get("limited_error") for r in found), None),
            "errors": [r["error"] for r in found if r["error"]],
        }
    one, shards, singles = (figures[n] for n in SETUPS)
    print(
        f"\n{passes} fresh process(es) per setup × {SEEKS} seeks (g + timecode + enter, then "
        "the frame built); ms unless said"
    )
    head = f"{'setup':<34}{'files':>6}{'frames':>8}{'MB':>7}{'open s':>8}"
    print(f"{head}{'seek med':>10}{'p95':>9}{'land':>8}{'build':>8}{'RSS MB':>8}{'fds':>5}")
    labels = {
        "one": f"one file, {SPEC.nodes} hosts",
        "shards": f"{SHARDS} shards × {SPEC.nodes // SHARDS} hosts, merged",
        "singles": f"{SPEC.nodes} single-node files, merged",
    }
    for name in SETUPS:
        f = figures[name]
        if f["seek_med_ms"] is None:
            print(f"{labels[name]:<34} failed: {f['errors'][0]}")
            continue
        print(
            f"{labels[name]:<34}{f['files']:>6}{f['frames']:>8}{f['stored_mb']:>7.1f}"
            f"{f['open_s']:>8.2f}{f['seek_med_ms']:>10.1f}{f['seek_p95_ms']:>9.1f}"
            f"{f['land_med_ms']:>8.1f}{f['build_med_ms']:>8.1f}{f['rss_peak_mb']:>8.0f}"
            f"{f['fds_most']:>5}"
        )
    print(f"\n{'target':<52}{'measured':>12}   verdict")
    checks: list[tuple[str, float | None, float, str]] = []
    if one["seek_med_ms"] and shards["seek_med_ms"]:
        ratio = shards["seek_med_ms"] / one["seek_med_ms"]
        checks.append(("10-shard seek ÷ one-file seek (medians) ≤ 1.5", ratio, TARGET_RATIO, "×"))
        p95 = shards["seek_p95_ms"] / one["seek_p95_ms"]
        checks.append(("  the same at p95 (not a target)", p95, float("inf"), "×"))
    checks.append(("10-shard peak RSS ≤ 200 MB", shards["rss_peak_mb"], TARGET_RSS_MB, " MB"))
    limit = TARGET_SINGLES_SEEK_MS
    checks.append(("1,000 single-node seek, median ≤ 2 s", singles["seek_med_ms"], limit, " ms"))
    checks.append(("1,000 single-node seek, p95 ≤ 2 s", singles["seek_p95_ms"], limit, " ms"))
    fds = float(singles["fds_most"])
    checks.append(("1,000 single-node files open at once ≤ 64", fds, FD_BUDGET, ""))
    for text, value, target, unit in checks:
        if value is None:
            print(f"{text:<52}{'—':>12}   MISSED (failed)")
            continue
        verdict = "" if target == float("inf") else _mark(value, target)
        print(f"{text:<52}{value:>10.2f}{unit:<3}  {verdict}")
    if singles["fd_limit_error"]:
        print(f"  under RLIMIT_NOFILE base+64: {singles['fd_limit_error']}")
    elif not singles["errors"]:
        print("  (held under RLIMIT_NOFILE = base + 64: never more than 64 at once)")
    print(
        f"{'singles open (' + str(singles['files']) + ' inputs), s':<52}"
        f"{singles['open_s'] or float('nan'):>10.2f}"
    )
    return figures


def main() -> None:
    argv = sys.argv[1:]
    if argv and argv[0] == "--measure":
        seed = int(argv[argv.index("--seed") + 1]) if "--seed" in argv else 0
        print(json.dumps(measure(argv[1], Path(argv[2]), seed, "--fd-limit" in argv)))
        return
    if argv and argv[0] == "--profile":
        profile(argv[1], Path(argv[2]))
        return
    work = Path(argv[argv.index("--dir") + 1]) if "--dir" in argv else OUT_DIR / "merged"
    passes = int(argv[argv.index("--passes") + 1]) if "--passes" in argv else 1
    print(
        f"# {platform.machine()}, {os.cpu_count()} logical CPUs, Python "
        f"{platform.python_version()}, zstandard {zstandard.__version__}, allsmi {__version__}"
    )
    meta = ensure(work)
    print(
        f"data: {work} — one: {SPEC.nodes} hosts × {SPEC.gpus_per_node} GPUs, {FRAMES} frames "
        f"at {INTERVAL_MS // 1000} s; shards: {SHARDS} × {SPEC.nodes // SHARDS} hosts, the same "
        f"frames, +{SHARD_SKEW_MS} ms per shard; singles: {SPEC.nodes} × 1 host, "
        f"{SINGLE_FRAMES} frames at {SINGLE_INTERVAL_MS // 1000} s; written in "
        f"{meta['cluster_write_s']:.0f} s + {meta['singles_write_s']:.0f} s"
        f"{' (cached)' if meta['cached'] else ''}",
        flush=True,
    )
    figures = report(work, passes)
    print(json.dumps({"passes": passes, **figures}))


if __name__ == "__main__":
    main()
