"""Events (docs/recording-format.md §7.10; README "Events"): how soon a recording's events
are known, and what `n` costs once they are.

Files: ``bench/out/map-1m.ndjson.zst`` (1,000,000 frames of one GPU at 1 s, written by the
real recorder loop with its events stored: ``bench_map_stored.py`` writes it) and a gzip copy
of its first 100,000 frames (``bench/out/events-100k.ndjson.gz``, written here with the real
sink: no stored events).

Figures, each in a fresh process, timed from after its imports:
- ``stored``: ``RecordingSource(FILE)`` and the events the recorder stored
  (``stored_events``), every one, no frame read; target ≤ 0.5 s;
- ``scan``: the replay's background search over the gzip copy (``EventScan``, every line
  structured and fed to the detector) against the index scan of the same file
  (``RecordingSource(FILE)`` until indexed), measured side by side; target ≤ 2×;
- ``n``: the replay's model answering `n` (the core's seek to the next event and the frame
  drawn at 200×60) once the events are known, over 50 presses from the first frame of the
  1M file; target ≤ 100 ms.
The recorder's CPU with detection is ``bench_map_stored.py``'s ``events`` row.

Run: ``.venv/bin/python bench/bench_events.py [--passes N]``. Asserts nothing
(docs/architecture.md §9: figures go to the README, never into tests).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC
from pathlib import Path
from typing import Any, Final

from allsmi import __version__
from common import OUT_DIR, child_json

STORED_TARGET_S: Final = 0.5
SCAN_TARGET: Final = 2.0
N_TARGET_MS: Final = 100.0
SCAN_FRAMES: Final = 100_000


def big() -> Path:
    path = OUT_DIR / "map-1m.ndjson.zst"
    if not path.exists():
        raise SystemExit(f"{path} is missing: run bench/bench_map_stored.py 1m first")
    return path


def gzip_copy() -> Path:
    """The first SCAN_FRAMES frames of the 1M file, through the real sink as gzip."""
    from allsmi.adapters import wire
    from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
    from allsmi.adapters.recording.source import RecordingSource

    path = OUT_DIR / "events-100k.ndjson.gz"
    if path.exists():
        return path
    source = RecordingSource(big())
    assert source.header is not None
    tmp = path.with_name("tmp-" + path.name)
    tmp.unlink(missing_ok=True)
    sink = RecordingSink(SinkConfig(path=tmp, codec=Codec.GZIP, max_size=0), source.header)
    for i in range(SCAN_FRAMES):
        frame = source.frame(i)
        sink.append(wire.encode_line(frame), frame.seq or i, frame.t_ms, frame=frame)
    sink.close()
    os.replace(tmp, path)
    return path


def measure_stored(path: Path) -> dict[str, Any]:
    from allsmi.adapters.recording.source import RecordingSource
    from allsmi.adapters.recording.summaries import stored_events
    from allsmi.app.replay_map import stored_parts

    start = time.perf_counter()
    source = RecordingSource(path)
    parts = stored_parts(source)
    found = None if parts is None else stored_events(parts)
    return {"s": time.perf_counter() - start, "events": -1 if found is None else len(found)}


def measure_scan(path: Path) -> dict[str, Any]:
    from allsmi.adapters.recording.eventscan import EventScan

    start = time.perf_counter()
    scan = EventScan(path)
    while not scan.done:
        scan.poll()
        time.sleep(0.005)
    seconds = time.perf_counter() - start
    scan.close()
    return {"s": seconds, "events": len(scan.found)}


def measure_index(path: Path) -> dict[str, Any]:
    from allsmi.adapters.recording.source import RecordingSource

    start = time.perf_counter()
    source = RecordingSource(path)
    return {"s": time.perf_counter() - start, "frames": source.frame_count}


def measure_n(path: Path) -> dict[str, Any]:
    from allsmi.adapters.recording.source import RecordingSource
    from allsmi.adapters.recording.summaries import stored_events
    from allsmi.app.replay_driver import ReplayDriver
    from allsmi.app.replay_map import stored_parts
    from allsmi.app.tui import ReplayModel
    from allsmi.domain import replay as core
    from allsmi.domain.events import stops

    driver = ReplayDriver.open(path)
    source = driver.source
    assert isinstance(source, RecordingSource)
    parts = stored_parts(source)
    found = (None if parts is None else stored_events(parts)) or []
    driver.feed(core.EventsFound(stops(found, source.time_at(0)), True))
    model = ReplayModel(driver=driver, tz=UTC)
    model.lines(200, 60)
    times = []
    for _ in range(50):
        start = time.perf_counter()
        model.key("n")
        model.lines(200, 60)
        times.append((time.perf_counter() - start) * 1000)
    return {"ms": times, "events": len(found), "cursor": driver.state.cursor}


def main() -> None:
    argv = sys.argv[1:]
    modes = {"--stored": measure_stored, "--scan": measure_scan, "--index": measure_index}
    if argv[:1] == ["--n"]:
        print(json.dumps(measure_n(Path(argv[1]))))
        return
    if argv and argv[0] in modes:
        print(json.dumps(modes[argv[0]](Path(argv[1]))))
        return
    passes = int(argv[argv.index("--passes") + 1]) if "--passes" in argv else 3
    print(
        f"# {platform.machine()}, {os.cpu_count()} logical CPUs, Python "
        f"{platform.python_version()}, allsmi {__version__}; {passes} passes"
    )
    path, copy = big(), gzip_copy()
    stored = [child_json(__file__, "--stored", str(path)) for _ in range(passes)]
    scans, indexes = [], []
    for _ in range(passes):
        indexes.append(child_json(__file__, "--index", str(copy))["s"])
        scans.append(child_json(__file__, "--scan", str(copy))["s"])
    n = child_json(__file__, "--n", str(path))
    stored_s = statistics.median(s["s"] for s in stored)
    ratio = statistics.median(scans) / statistics.median(indexes)
    n_ms = statistics.median(n["ms"])
    print(f"\n## {path.name}: {path.stat().st_size / 1e6:.1f} MB; {copy.name}: "
          f"{copy.stat().st_size / 1e6:.1f} MB")  # fmt: skip
    verdict = "ok" if stored_s <= STORED_TARGET_S else "MISSED"
    print(f"events from stored ({stored[0]['events']:,})  s   median {stored_s:.3f}   "
          f"target ≤ {STORED_TARGET_S}  {verdict}")  # fmt: skip
    print(f"events by scan, gzip {SCAN_FRAMES:,} frames  s   {statistics.median(scans):.2f}  "
          f"index scan {statistics.median(indexes):.2f}  = {ratio:.1f}×   target ≤ "
          f"{SCAN_TARGET}×  {'ok' if ratio <= SCAN_TARGET else 'MISSED'}")  # fmt: skip
    print(f"n answered (seek + draw 200×60)  ms   median {n_ms:.1f}  worst {max(n['ms']):.1f}"
          f"   target ≤ {N_TARGET_MS:g}  {'ok' if n_ms <= N_TARGET_MS else 'MISSED'}"
          f"  ({n['events']:,} events)")  # fmt: skip


if __name__ == "__main__":
    main()
