"""The background index of a recording with no seek table (docs/recording-format.md §7.7, 3;
docs/architecture.md §3.1): how soon ``allsmi view --replay`` shows the first frame, how long
the bulk index takes, how the keys answer while it runs, against the old blocking open (the
exact scan), ``allsmi verify`` and the physical references ``zcat``/``cat`` in the same run.

Files, derived once from the cached 1M-frame zstd recording (``bench_reader.py`` writes it
if missing: 1,000,000 frames of ~1 KB) and cached in ``bench/out/`` (reused when present;
delete to rebuild):
- ``index-1m.ndjson``: ``zstd -dc`` of it — our lines, header and index lines included, the
  shape a user gets by decompressing (~1.06 GB);
- ``index-1m.ndjson.gz``: ``gzip -c`` of that, default level, one member — the shape ``gzip``
  and all-smi produce (~70-160 MB);
- ``index-1m-allsmi.ndjson``: the same frames written by allsmi's sink as a plain file
  (``record -o FILE.ndjson``): its index lines say where they sit, so the bulk index reads
  one stretch per 8 MiB instead of every byte (``plain-allsmi`` below). The sizes are printed.

Each measurement pass runs in a fresh child process (``--measure KIND FILE``, one JSON line),
timed from after its imports (interpreter start and imports are not counted):
- ``first``: ``ReplayDriver.open(path, background=True)`` + ``driver.frame()``;
- ``index``: the same, then ``driver.poll()`` every 10 ms (the TUI polls every 200 ms,
  ``FOLLOW_POLL_MS``; polling faster only takes the batches sooner) until
  ``source.indexing is None``: wall from before the open, and the child's CPU seconds;
- ``blocking``: the old blocking open, ``RecordingSource(path)`` (the exact scan) +
  ``frame(0)``;
- ``keys``: the open, then while indexing runs, ``]`` and ``k`` alternately every 20 ms,
  each ``driver.feed(KeyPressed)`` + ``driver.frame()`` timed (what a key costs the TUI before
  it can draw), and ``driver.poll()`` every 200 ms on the same thread as the TUI does (timed
  apart); keys answered while indexing, p50/p95/max of a key's call, max of a poll, and
  p50/p95/max from when a key was due until it was answered (a key pressed during a slow
  poll waits for it, as it does in the TUI).
The parent also times ``.venv/bin/allsmi verify FILE`` (a child, stdout and stderr to
/dev/null) and the references ``zcat FILE > /dev/null`` (gzip) and ``cat FILE > /dev/null``
(plain), best and median of 3. The page cache is warm (each file is read once before any
timing; the machine is shared, so it is never dropped): the figures are CPU, not disk.
Every figure is printed with its best and median over ``--passes`` and its ratio to the
reference; targets: index ÷ zcat ≤ 1.3, index ÷ cat ≤ 3, verify ÷ zcat ≤ 3, first frame
≤ 0.5 s, key p95 ≤ 100 ms.

Run:
  ``.venv/bin/python bench/bench_index.py [gzip] [plain] [plain-allsmi] [--passes N]
  [--json]`` — derive what is missing, measure, print the table (``--json``: also one JSON
  document at the end);
  ``.venv/bin/python bench/bench_index.py --measure KIND FILE`` — one pass, prints JSON;
  ``.venv/bin/python bench/bench_index.py --profile index|blocking FILE`` — cProfile of the
  bulk index (``bulk_scan`` run in the main thread, where cProfile sees it) or of the exact
  scan; prints the top lines by own time.
Asserts nothing (docs/architecture.md §9: figures go to the README, never into tests).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from allsmi import __version__
from common import (
    BENCH_DIR,
    OUT_DIR,
    child_cpu_s,
    child_json,
    min_med,
    own_cpu_s,
    own_peak_rss_mb,
    quantile,
)

SOURCE_ZST: Final = OUT_DIR / "reader-1m.ndjson.zst"
PLAIN: Final = OUT_DIR / "index-1m.ndjson"
GZIP: Final = OUT_DIR / "index-1m.ndjson.gz"
OURS: Final = OUT_DIR / "index-1m-allsmi.ndjson"
ALLSMI: Final = BENCH_DIR.parent / ".venv" / "bin" / "allsmi"
INDEX_POLL_S: Final = 0.010
KEY_EVERY_S: Final = 0.020
TUI_POLL_S: Final = 0.200  # allsmi.app.tui.FOLLOW_POLL_MS
KEYS: Final = ("]", "k")
REF_RUNS: Final = 3
TARGETS: Final = {
    "index_ratio_gzip": 1.3,
    "index_ratio_plain": 3.0,
    "index_ratio_plain-allsmi": 3.0,
    "verify_ratio_gzip": 3.0,
}
KINDS: Final = ("gzip", "plain", "plain-allsmi")
FIRST_TARGET_S: Final = 0.5
KEY_P95_TARGET_MS: Final = 100.0


# --------------------------------------------------------------------------- files


def _derive(path: Path, argv: Sequence[str], source: Path) -> None:
    """Write ``argv``'s stdout (reading ``source``) to ``path`` through a temporary name."""
    tmp = path.with_name("tmp-" + path.name)
    start = time.perf_counter()
    print(f"deriving {path.name}: {' '.join(argv)} {source.name} ...", flush=True)
    with open(tmp, "wb") as out:
        subprocess.run([*argv, str(source)], stdout=out, check=True)
    os.replace(tmp, path)
    print(f"  {time.perf_counter() - start:.1f} s", flush=True)


def _derive_ours(path: Path, source: Path) -> None:
    """Write ``source``'s frames through allsmi's sink as a plain recording at ``path``."""
    from allsmi.adapters import wire
    from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
    from allsmi.adapters.recording.source import RecordingSource

    start = time.perf_counter()
    print(f"deriving {path.name}: the sink, codec none, from {source.name} ...", flush=True)
    tmp = path.with_name("tmp-" + path.name)
    tmp.unlink(missing_ok=True)
    header = RecordingSource(source).header
    assert header is not None
    sink = RecordingSink(SinkConfig(path=tmp, codec=Codec.NONE, max_size=0), header)
    with subprocess.Popen(["zstd", "-dc", str(source)], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            info = wire.slice_line(line.rstrip(b"\n"))
            if info is not None and info.kind == wire.KIND_DATA and info.t_ms is not None:
                sink.append(line, info.seq or 0, info.t_ms)
    sink.close()
    os.replace(tmp, path)
    print(f"  {time.perf_counter() - start:.1f} s", flush=True)


def ensure() -> dict[str, Path]:
    if not SOURCE_ZST.exists():
        subprocess.run([sys.executable, str(BENCH_DIR / "bench_reader.py"), "--write-only", "1m"])
    if not PLAIN.exists():
        _derive(PLAIN, ["zstd", "-dc"], SOURCE_ZST)
    if not GZIP.exists():
        _derive(GZIP, ["gzip", "-c"], PLAIN)
    if not OURS.exists():
        _derive_ours(OURS, SOURCE_ZST)
    for path in (SOURCE_ZST, PLAIN, GZIP, OURS):
        print(f"{path.name:<26}{path.stat().st_size:>15,} B", flush=True)
    return {"gzip": GZIP, "plain": PLAIN, "plain-allsmi": OURS}


# --------------------------------------------------------------------------- one pass


def measure(kind: str, path: Path) -> dict[str, Any]:
    """One pass of ``kind`` in this (fresh) process."""
    from allsmi.adapters.recording.source import RecordingSource
    from allsmi.app.replay_driver import ReplayDriver
    from allsmi.domain import replay as core

    clock = time.perf_counter
    cpu0 = own_cpu_s()
    start = clock()
    if kind == "blocking":
        src = RecordingSource(path)
        opened = clock() - start
        src.frame(0)
        return {
            "open_s": opened,
            "first_s": clock() - start,
            "cpu_s": own_cpu_s() - cpu0,
            "frames": src.frame_count,
            "rss_mb": own_peak_rss_mb(),
        }
    driver = ReplayDriver.open(path, background=True)
    driver.frame()
    first = clock() - start
    source = driver.source
    assert isinstance(source, RecordingSource)
    out: dict[str, Any] = {"first_s": first, "indexed_at_first": source.indexing}
    if kind == "first":
        driver.close()
        return out
    if kind == "index":
        polls = 0
        while source.indexing is not None:
            time.sleep(INDEX_POLL_S)
            driver.poll()
            polls += 1
        out.update(
            index_s=clock() - start,
            cpu_s=own_cpu_s() - cpu0,
            polls=polls,
            frames=source.frame_count,
            chunks=len(source.chunks),
            rss_mb=own_peak_rss_mb(),
        )
        driver.close()
        return out
    assert kind == "keys", kind
    keys_ms: list[float] = []
    waits_ms: list[float] = []  # from when the key was due (pressed) until it was answered
    polls_ms: list[float] = []
    n = 0
    next_key = next_poll = clock()
    while source.indexing is not None:
        now = clock()
        if now >= next_poll:
            driver.poll()
            polls_ms.append((clock() - now) * 1000)
            next_poll = now + TUI_POLL_S
            continue
        if now >= next_key:
            driver.feed(core.KeyPressed(KEYS[n % len(KEYS)]))
            driver.frame()
            done = clock()
            keys_ms.append((done - now) * 1000)
            waits_ms.append((done - next_key) * 1000)
            n += 1
            next_key += KEY_EVERY_S
            if next_key < now:  # a slow key: the next one comes 20 ms after it, not at once
                next_key = now + KEY_EVERY_S
            continue
        time.sleep(max(0.0, min(next_key, next_poll) - now))
    out.update(
        index_s=clock() - start,
        keys=len(keys_ms),
        key_p50_ms=quantile(keys_ms, 0.50),
        key_p95_ms=quantile(keys_ms, 0.95),
        key_max_ms=max(keys_ms, default=0.0),
        due_p50_ms=quantile(waits_ms, 0.50),
        due_p95_ms=quantile(waits_ms, 0.95),
        due_max_ms=max(waits_ms, default=0.0),
        poll_p95_ms=quantile(polls_ms, 0.95),
        poll_max_ms=max(polls_ms, default=0.0),
        cursor=driver.shown_index,
    )
    driver.close()
    return out


def profile(kind: str, path: Path, top: int = 14) -> None:
    """cProfile of the bulk index (in this thread) or the exact scan; top lines by own
    time."""
    import cProfile
    import pstats

    from allsmi.adapters.recording.bulk import bulk_scan
    from allsmi.adapters.recording.decoding import sniff
    from allsmi.adapters.recording.discovery import open_segment
    from allsmi.adapters.recording.source import RecordingSource

    def bulk() -> None:
        with open(path, "rb") as fh:
            codec = sniff(fh.read(8))
        with open_segment(path) as fh:
            for _ in bulk_scan(fh, codec, 0, key_before=None):
                pass

    run: Callable[[], object] = bulk if kind == "index" else lambda: RecordingSource(path)
    prof = cProfile.Profile()
    prof.runcall(run)
    stats = pstats.Stats(prof)
    stats.sort_stats("tottime").print_stats(top)


# --------------------------------------------------------------------------- the parent


def _reference(codec: str, path: Path) -> list[float]:
    argv = ["zcat", str(path)] if codec == "gzip" else ["cat", str(path)]
    walls = []
    for _ in range(REF_RUNS):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
        walls.append(time.perf_counter() - start)
    return walls


def _verify(path: Path) -> tuple[float, float, int]:
    cpu, wall, rc = child_cpu_s([str(ALLSMI), "verify", str(path)])
    return wall, cpu, rc


def run_codec(codec: str, path: Path, passes: int) -> dict[str, Any]:
    subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=True)  # warm the cache
    ref = _reference(codec, path)
    rows: dict[str, list[Any]] = {}
    for _ in range(passes):
        for kind in ("first", "index", "blocking", "keys"):
            print(f"  {codec} {kind} ...", end="", flush=True)
            rows.setdefault(kind, []).append(child_json(__file__, "--measure", kind, str(path)))
            print(" done", flush=True)
        print(f"  {codec} verify ...", end="", flush=True)
        rows.setdefault("verify", []).append(_verify(path))
        print(" done", flush=True)
    return {"ref_s": ref, **rows}


def _ratio(value: float, ref: float) -> str:
    return f"{value / ref:.2f}×" if ref > 0 else "-"


def _verdict(value: float, target: float | None) -> str:
    if target is None:
        return ""
    return f"≤ {target:g}  ok" if value <= target else f"≤ {target:g}  MISSED ×{value / target:.1f}"


def report(codec: str, path: Path, res: dict[str, Any]) -> None:
    ref_name = "zcat" if codec == "gzip" else "cat"
    ref_lo, ref_mid = min_med(res["ref_s"])
    passes = len(res["first"])
    print(
        f"\n## {codec}: {path.name}, {path.stat().st_size / 1e6:.1f} MB, "
        f"{res['index'][0]['frames']:,} frames, {res['index'][0]['chunks']} chunks; "
        f"{passes} fresh processes per figure"
    )
    head = f"{'measure':<40}{'best':>9}{'median':>9}{'÷ref best':>11}{'÷ref med':>10}   target"
    print(head)

    def row(
        name: str,
        samples: Sequence[float],
        *,
        ratio: bool = False,
        target: float | None = None,
        judge_ratio: bool = False,
        digits: int = 3,
    ) -> None:
        lo, mid = min_med(samples)
        rb = _ratio(lo, ref_lo) if ratio else ""
        rm = _ratio(mid, ref_mid) if ratio else ""
        judged = mid / ref_mid if judge_ratio else mid
        verdict = _verdict(judged, target)
        print(f"{name:<40}{lo:>9.{digits}f}{mid:>9.{digits}f}{rb:>11}{rm:>10}   {verdict}")

    row(f"{ref_name} FILE > /dev/null  s (reference)", res["ref_s"], ratio=True)
    row("first frame (open bg + frame)  s", [r["first_s"] for r in res["first"]],
        ratio=True, target=FIRST_TARGET_S)  # fmt: skip
    row("  indexed at first frame  %",
        [100 * (r["indexed_at_first"] or 1.0) for r in res["first"]], digits=1)  # fmt: skip
    index_target = TARGETS.get(f"index_ratio_{codec}")
    row("full index (poll 10 ms)  s", [r["index_s"] for r in res["index"]],
        ratio=True, target=index_target, judge_ratio=True)  # fmt: skip
    row("  its CPU (both threads)  s", [r["cpu_s"] for r in res["index"]], ratio=True)
    row("  its peak RSS  MB", [r["rss_mb"] for r in res["index"]], digits=1)
    row("old blocking open (exact scan)  s", [r["first_s"] for r in res["blocking"]], ratio=True)
    row("  its peak RSS  MB", [r["rss_mb"] for r in res["blocking"]], digits=1)
    row("keys ] k every 20 ms: index  s", [r["index_s"] for r in res["keys"]], ratio=True)
    row("  keys answered while indexing", [r["keys"] for r in res["keys"]], digits=0)
    row("  key p50  ms", [r["key_p50_ms"] for r in res["keys"]], digits=2)
    row("  key p95  ms", [r["key_p95_ms"] for r in res["keys"]], digits=2,
        target=KEY_P95_TARGET_MS)  # fmt: skip
    row("  key max  ms", [r["key_max_ms"] for r in res["keys"]], digits=2)
    row("  poll (200 ms) max  ms", [r["poll_max_ms"] for r in res["keys"]], digits=2)
    row("  key due→answered p50  ms", [r["due_p50_ms"] for r in res["keys"]], digits=2)
    row("  key due→answered p95  ms", [r["due_p95_ms"] for r in res["keys"]], digits=2,
        target=KEY_P95_TARGET_MS)  # fmt: skip
    row("  key due→answered max  ms", [r["due_max_ms"] for r in res["keys"]], digits=2)
    row("allsmi verify FILE  s", [v[0] for v in res["verify"]], ratio=True,
        target=TARGETS.get(f"verify_ratio_{codec}"), judge_ratio=True)  # fmt: skip
    row("  its CPU  s", [v[1] for v in res["verify"]], ratio=True)
    rcs = sorted({v[2] for v in res["verify"]})
    print(f"  verify exit status: {', '.join(map(str, rcs))}")


def main() -> None:
    argv = sys.argv[1:]
    if argv and argv[0] == "--measure":
        print(json.dumps(measure(argv[1], Path(argv[2]))))
        return
    if argv and argv[0] == "--profile":
        profile(argv[1], Path(argv[2]))
        return
    passes = int(argv[argv.index("--passes") + 1]) if "--passes" in argv else 3
    codecs = [a for a in argv if a in KINDS] or list(KINDS)
    print(
        f"# {platform.machine()}, {os.cpu_count()} logical CPUs, Python "
        f"{platform.python_version()}, allsmi {__version__}; {passes} passes"
    )
    paths = ensure()
    results = {codec: run_codec(codec, paths[codec], passes) for codec in codecs}
    for codec in codecs:
        report(codec, paths[codec], results[codec])
    if "--json" in argv:
        print(json.dumps({"passes": passes, **results}))


if __name__ == "__main__":
    main()
