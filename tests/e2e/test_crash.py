"""``kill -9`` of the recorder at random moments: nothing older than a second is lost.

54 trials across the three codecs, with a tiny ``--max-size`` so kills land during rotation
too. After each kill: every frame collected more than a second before it is recovered, the
frames are contiguous, every segment opens on its own, and a restart with the same ``-o``
keeps every earlier segment and continues ``seq``.
"""

from __future__ import annotations

import random
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from allsmi.adapters.recording.source import RecordingSource, discover
from allsmi.domain.errors import RecordingUnreadable

from .conftest import allsmi_path, run_allsmi, user_env

TRIALS = 54
NAMES = ("c.ndjson.zst", "c.ndjson.gz", "c.ndjson")
INTERVAL_MS = 100


def _frames_on_disk(path: Path) -> int:
    try:
        return RecordingSource(path).frame_count
    except RecordingUnreadable:
        return 0


def one_trial(directory: Path, name: str, seed: int) -> None:
    rng = random.Random(seed)
    directory.mkdir()
    out = directory / name
    # Not start_allsmi: trials run three at a time in worker threads and read no output, so
    # the recorder writes to DEVNULL (a pipe nobody reads could fill and stall it).
    proc = subprocess.Popen(
        [
            allsmi_path(),
            "record",
            "-o",
            str(out),
            "-i",
            str(INTERVAL_MS / 1000),
            "--max-size",
            rng.choice(["2K", "5K", "100M"]),
            "--max-files",
            "1000",
            "--include",
            "cpu,memory",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=user_env(),
    )
    try:
        deadline = time.monotonic() + 20
        while _frames_on_disk(out) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.5))
        killed_at = time.time_ns() // 1_000_000
        proc.kill()
    finally:
        proc.wait(timeout=10)
    check_after_kill(out, killed_at)


def check_after_kill(out: Path, killed_at: int) -> None:
    for segment in discover(out):
        assert RecordingSource(segment).frame_count > 0, f"{segment.name} unreadable"
    source = RecordingSource(out)
    seqs = [source.frame(i).seq for i in range(source.frame_count)]
    assert seqs == list(range(len(seqs))), "frames lost or doubled"
    last_t = source.time_at(source.frame_count - 1)
    assert last_t >= killed_at - 1000 - INTERVAL_MS, "more than the last second was lost"
    before = {p.name for p in discover(out)}
    result = run_allsmi(
        "record", "-o", str(out), "-i", "0.1", "--duration", "0.5s", "--include", "cpu,memory"
    )
    assert result.returncode == 0, result.stderr
    after = {p.name for p in discover(out)}
    assert before - {out.name} <= after, "a restart lost an earlier segment"
    resumed = RecordingSource(out)
    everything = [resumed.frame(i).seq for i in range(resumed.frame_count)]
    assert len(everything) > len(seqs), "the restart recorded nothing"
    assert everything == list(range(len(everything))), "seq did not continue after the restart"


@pytest.mark.parametrize("batch", range(3))
def test_kill_9_at_random_moments_loses_at_most_the_last_second(tmp_path: Path, batch: int) -> None:
    trials = range(batch * TRIALS // 3, (batch + 1) * TRIALS // 3)
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [
            pool.submit(one_trial, tmp_path / f"trial{n}", NAMES[n % len(NAMES)], n) for n in trials
        ]
        for future in futures:
            future.result()
