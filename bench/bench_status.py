"""``allsmi status`` (README "allsmi status"): what a monitoring script pays per check.

Files (written by the other benchmarks, never here): ``bench/out/map-1m.ndjson.zst``
(1,000,000 frames, our zstd with seek tables: ``bench_map_stored.py 1m``) and
``bench/out/index-1m.ndjson.gz`` (a 1,000,000-frame gzip file: ``bench_index.py``). A file
that is missing is named and skipped.

Figures: the wall time of the whole command, ``allsmi status FILE --format json`` in a fresh
process as cron would run it (interpreter start and imports included), min and median of
``--passes`` runs; for the gzip file, which status reads through, beside it the time of
``gzip -dc FILE > /dev/null`` in the same run: the floor of any reader that reads it through.
Against ``allsmi --version`` (the interpreter and import floor of any allsmi command).

Run: ``.venv/bin/python bench/bench_status.py [--passes N]``. Asserts nothing
(docs/architecture.md §9: figures go to the README, never into tests).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from common import OUT_DIR, fmt_min_med


def timed(argv: Sequence[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()
    allsmi = str(Path(sys.executable).with_name("allsmi"))
    gzip = shutil.which("gzip") or "gzip"
    floor = [timed([allsmi, "--version"]) for _ in range(args.passes)]
    print(f"{'allsmi --version (start-up floor)':44s} {fmt_min_med(floor)} s (min, median)")
    for name, floor_argv in (
        ("map-1m.ndjson.zst", None),
        ("index-1m.ndjson.gz", [gzip, "-dc"]),
    ):
        path = OUT_DIR / name
        if not path.exists():
            print(f"{name}: missing (see this file's docstring for the benchmark that writes it)")
            continue
        runs = [
            timed([allsmi, "status", str(path), "--format", "json"]) for _ in range(args.passes)
        ]
        line = f"{'status ' + name:44s} {fmt_min_med(runs)} s"
        if floor_argv is not None:
            through = [timed([*floor_argv, str(path)]) for _ in range(args.passes)]
            ratio = min(runs) / min(through)
            line += f"   gzip -dc {fmt_min_med(through)} s   ratio {ratio:.2f}x"
        print(line)


if __name__ == "__main__":
    main()
