"""The map from stored summaries (docs/recording-format.md §7.10): how soon the whole map is
ready after opening one of our zstd recordings, what the summaries cost in bytes, and what
they cost the recorder per frame.

Files, written by the real sink through the real recorder root (``record_loop`` on a
simulated clock, so every chunk stores its summary and its events) and cached in
``bench/out/``:
- ``map-1m.ndjson.zst``: 1,000,000 frames of one GPU at 1 s (the local shape);
- ``map-100host.ndjson.zst``: 2,000 frames of 100 hosts × 8 GPUs at 5 s.

Figures, each in a fresh child process, timed from after its imports:
- ``open``: ``RecordingSource(FILE)`` + ``open_map(source)`` (returns at once: the summaries
  are read in a thread), then polled every 5 ms until the map holds every frame (no
  background pass was needed: it is checked); best / median of ``--passes``;
- stored summaries: the bytes of every summary frame (the table's ``summaries`` sizes) as a
  share of the file;
- the recorder: the CPU seconds of the whole recorder loop per frame in three modes — the
  sink given no frame (it stores nothing beside the lines), storing the summaries, storing
  the summaries and the events its detection finds — alternating, each in a fresh process.
  Twice: with the simulator as the collection (100,000 local frames and 200 100-host frames
  a pass; far cheaper than a real collection, so its ratios are upper bounds), and with a
  real one: ``allsmi mock``'s 100 nodes scraped over loopback (60 frames a pass; the mock in
  its own process, not counted) and this machine's own collection (2,000 frames a pass).
Targets: map ready ≤ 0.5 s; summaries ≤ 3 % of the file; recorder CPU with the summaries ≤
1.03× without, with the events too ≤ 1.05×, against the real collections.

Run: ``.venv/bin/python bench/bench_map_stored.py [1m] [100host] [--passes N]``. Asserts
nothing (docs/architecture.md §9: figures go to the README, never into tests).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

import anyio
import attrs

from allsmi import __version__
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.adapters.simulation.simulator import ClusterSpec
from allsmi.app.clock import SimClock
from allsmi.app.record import RecordPlan, record_loop
from allsmi.domain.model import Frame, Header, Source
from common import OUT_DIR, T0, SimSource, child_json, own_cpu_s

SHAPES: Final[dict[str, tuple[ClusterSpec, tuple[str, ...], int, Source, int, int]]] = {
    # spec, sections, interval, source, frames in the file, frames per recorder pass
    "1m": (
        ClusterSpec(nodes=1, gpus_per_node=1, cores_per_node=2),
        ("gpu", "memory"),
        1000,
        "local",
        1_000_000,
        100_000,
    ),
    "100host": (
        ClusterSpec(nodes=100, gpus_per_node=8),
        ("gpu", "cpu", "memory", "chassis", "process"),
        5000,
        "remote",
        2000,
        200,
    ),
}
OPEN_TARGET_S: Final = 0.5
SHARE_TARGET: Final = 0.03
RECORDER_TARGET: Final = 1.03
EVENTS_TARGET: Final = 1.05  # with the event detection too


class _NoFrameSink:
    """The real sink, given no frame: it stores no summaries (the recorder without them)."""

    def __init__(self, sink: RecordingSink) -> None:
        self.sink = sink

    def append(self, line: bytes, seq: int, t_ms: int, frame: Frame | None = None) -> None:
        self.sink.append(line, seq, t_ms)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sink, name)


MODES: Final = ("without", "summaries", "events")  # what the sink stores beside the frames


def _sink(path: Path, header: Header, mode: str) -> Any:
    """The real sink: given no frame (it stores nothing beside the lines), storing the
    summaries, or the summaries and the events its detection finds."""
    config = SinkConfig(path=path, codec=Codec.ZSTD, max_size=0, max_files=1)
    sink = RecordingSink(attrs.evolve(config, events=mode == "events"), header)
    return _NoFrameSink(sink) if mode == "without" else sink


def record(path: Path, shape: str, frames: int, mode: str) -> float:
    """Record ``frames`` frames of ``shape`` (:data:`MODES`); the CPU seconds of the loop."""
    spec, include, interval, source, _, _ = SHAPES[shape]
    sim = SimSource(spec, include, interval, source)
    hosts = sim.hosts() if source == "remote" else (spec.host_id(0),)
    plan = RecordPlan(interval, frames * interval, source, hosts)
    header = Header(source=source, interval_ms=interval, hosts=hosts, all_smi_version=__version__)
    target = _sink(path, header, mode)
    before = own_cpu_s()
    anyio.run(record_loop, sim, target, SimClock(T0), plan)
    return own_cpu_s() - before


def record_real(path: Path, kind: str, frames: int, mode: str, hostfile: str) -> float:
    """Record ``frames`` frames through a real collector (the scrape of ``allsmi mock``'s 100
    nodes, or this machine's own collection) on a simulated clock (no waiting between
    cycles); the CPU seconds of the recorder loop, the collection included."""
    from allsmi.app.local import build_local_source
    from allsmi.app.remote import build_remote_source, remote_config
    from allsmi.domain.hosts import parse_hostfile
    from allsmi.domain.ports import FrameSource

    source: FrameSource
    if kind == "remote":
        include = SHAPES["100host"][1]
        hosts = tuple(parse_hostfile(Path(hostfile).read_text()))
        source = build_remote_source(remote_config(hosts, include, 5000, None))
        interval = 5000
    else:
        source, hosts, interval = build_local_source(("gpu", "cpu", "memory")), ("local",), 1000
    src: Source = "remote" if kind == "remote" else "local"
    plan = RecordPlan(interval, frames * interval, src, hosts)
    header = Header(source=src, interval_ms=interval, hosts=hosts, all_smi_version=__version__)
    target = _sink(path, header, mode)

    async def run() -> float:
        await source.start()
        try:
            await source.collect(T0)  # the cold one: clients made, connections opened
            before = own_cpu_s()
            await record_loop(source, target, SimClock(T0), plan)
            return own_cpu_s() - before
        finally:
            await source.aclose()

    return anyio.run(run)


def medians(argv: list[str], frames: int, passes: int) -> dict[str, float]:
    """Median CPU seconds per frame of each mode, the modes alternating pass by pass, each
    run in a fresh process: ``argv`` + mode."""
    found: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(passes):
        for mode in MODES:
            found[mode].append(child_json(__file__, *argv, mode)["cpu_s"] / frames)
    return {mode: statistics.median(values) for mode, values in found.items()}


def print_ratios(what: str, per_frame: dict[str, float], targets: bool) -> None:
    """The recorder rows: summaries (target 1.03×) and summaries with events (1.05×)."""
    base = per_frame["without"]
    for mode, target in (("summaries", RECORDER_TARGET), ("events", EVENTS_TARGET)):
        ratio = per_frame[mode] / base
        verdict = (
            f"target ≤ {target}  {'ok' if ratio <= target else 'MISSED'}"
            if targets
            else "(the simulator as the collection: an upper bound)"
        )
        label = "summaries" if mode == "summaries" else "summaries + events"
        print(f"recorder CPU per frame, {what}, {label}  µs   without {base * 1e6:.1f}  with "
              f"{per_frame[mode] * 1e6:.1f}  = {ratio:.3f}×   {verdict}")  # fmt: skip


def ensure(shape: str) -> Path:
    path = OUT_DIR / f"map-{shape}.ndjson.zst"
    if not path.exists():
        OUT_DIR.mkdir(exist_ok=True)
        tmp = path.with_name("tmp-" + path.name)
        tmp.unlink(missing_ok=True)
        frames = SHAPES[shape][4]
        print(f"writing {path.name}: {frames:,} frames ...", flush=True)
        start = time.perf_counter()
        record(tmp, shape, frames, "events")
        os.replace(tmp, path)
        print(f"  {time.perf_counter() - start:.1f} s", flush=True)
    return path


def measure_open(path: Path) -> dict[str, Any]:
    from allsmi.adapters.recording.source import RecordingSource
    from allsmi.app.replay_map import open_map

    start = time.perf_counter()
    source = RecordingSource(path)
    replay_map = open_map(source)  # the first frame can be drawn now; the map is read behind
    opened = time.perf_counter() - start
    while replay_map.building:
        replay_map.poll()
        time.sleep(0.005)  # the TUI polls every 200 ms; this only takes the map sooner
    seconds = time.perf_counter() - start
    counted = sum(c.frames for c in replay_map.summary.cells(
        source.time_at(0), source.time_at(source.frame_count - 1) + 1, 1))  # fmt: skip
    stored = sum(ref.size or 0 for s in source.segments for ref in s.summaries if ref is not None)
    return {
        "opened_s": opened,
        "open_s": seconds,
        "complete": not replay_map.building and counted == source.frame_count,
        "frames": source.frame_count,
        "stored_bytes": stored,
        "file_bytes": path.stat().st_size,
        "map_mb": replay_map.summary.nbytes() / 1e6,
    }


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["--open"]:
        print(json.dumps(measure_open(Path(argv[1]))))
        return
    if argv[:1] == ["--record-real"]:
        kind, frames, hostfile, mode = argv[1], int(argv[2]), argv[3], argv[4]
        with tempfile.TemporaryDirectory() as tmp:
            cpu = record_real(Path(tmp) / "r.ndjson.zst", kind, frames, mode, hostfile)
        print(json.dumps({"cpu_s": cpu}))
        return
    if argv[:1] == ["--record"]:
        with tempfile.TemporaryDirectory() as tmp:
            cpu = record(Path(tmp) / "r.ndjson.zst", argv[1], int(argv[2]), argv[3])
        print(json.dumps({"cpu_s": cpu}))
        return
    passes = int(argv[argv.index("--passes") + 1]) if "--passes" in argv else 3
    shapes = [a for a in argv if a in SHAPES] or list(SHAPES)
    print(
        f"# {platform.machine()}, {os.cpu_count()} logical CPUs, Python "
        f"{platform.python_version()}, allsmi {__version__}; {passes} passes"
    )
    for shape in shapes:
        path = ensure(shape)
        opens = [child_json(__file__, "--open", str(path)) for _ in range(passes)]
        per_pass = SHAPES[shape][5]
        simulated = medians(["--record", shape, str(per_pass)], per_pass, passes)
        first = opens[0]
        share = first["stored_bytes"] / first["file_bytes"]
        times = [o["open_s"] for o in opens]
        print(f"\n## {shape}: {path.name}, {first['file_bytes'] / 1e6:.1f} MB, "
              f"{first['frames']:,} frames; map {first['map_mb']:.1f} MB in memory")  # fmt: skip
        print(f"open + whole map ready  s       best {min(times):.3f}  median "
              f"{statistics.median(times):.3f}   target ≤ {OPEN_TARGET_S}  "
              f"{'ok' if statistics.median(times) <= OPEN_TARGET_S else 'MISSED'}"
              f"  (complete: {all(o['complete'] for o in opens)}; open_map returned after "
              f"{statistics.median(o['opened_s'] for o in opens):.3f} s)")  # fmt: skip
        print(f"stored summaries                {first['stored_bytes'] / 1e6:.2f} MB = "
              f"{100 * share:.2f} % of the file   target ≤ {100 * SHARE_TARGET:g} %  "
              f"{'ok' if share <= SHARE_TARGET else 'MISSED'}")  # fmt: skip
        print_ratios("the simulator", simulated, targets=False)
        real_recorder(shape, passes)
        cost = in_process(shape)
        print(f"in one process, per frame  µs   Summary.add {cost['summary_us']:.1f}  "
              f"Detector.feed {cost['detection_us']:.1f}")  # fmt: skip


def in_process(shape: str, frames: int = 200) -> dict[str, float]:
    """The summary's and the detection's CPU per frame of ``shape``, measured in this
    process around their calls alone (the ratios above carry the noise of whole runs)."""
    from allsmi.domain.events import Detector
    from allsmi.domain.summary import Summary

    spec, include, interval, source, _, _ = SHAPES[shape]
    sim = SimSource(spec, include, interval, source)
    hosts = sim.hosts() if source == "remote" else (spec.host_id(0),)
    batch = [anyio.run(sim.collect, T0 + i * interval) for i in range(frames)]
    summary, detector = Summary(expected_hosts=hosts, interval_ms=interval), Detector(hosts)
    summary.add(batch[0])  # its keys learnt: a recorder's steady state
    start = time.process_time()
    for frame in batch:
        summary.add(frame)
    added = time.process_time() - start
    start = time.process_time()
    for frame in batch:
        detector.feed(frame)
    fed = time.process_time() - start
    return {"summary_us": added / frames * 1e6, "detection_us": fed / frames * 1e6}


def real_recorder(shape: str, passes: int) -> None:
    """The recorder row against a real collection: 100-host, the scrape of ``allsmi mock``
    (its 100 nodes in their own process, so only the recorder's CPU counts); local, this
    machine's own collection (a GPU-less machine collects no GPU: its summary is the host's)."""
    if shape == "100host":
        from bench_cluster import mock_cluster

        with tempfile.TemporaryDirectory() as tmp, mock_cluster(100, 5, Path(tmp)) as hostfile:
            found = medians(["--record-real", "remote", "60", str(hostfile)], 60, passes + 2)
        print_ratios("scraping allsmi mock's 100 nodes", found, targets=True)
    else:
        found = medians(["--record-real", "local", "2000", "-"], 2000, passes + 2)
        print_ratios("this machine's own collection", found, targets=True)


if __name__ == "__main__":
    main()
