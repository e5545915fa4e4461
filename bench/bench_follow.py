"""Follow latency: from a frame being flushed by the recorder to it being on screen.

A writer thread records through the real sink (zstd, flush per frame) at 4 frames/s; the
main thread follows the file the way ``allsmi view --replay --follow`` does: a poll every
FOLLOW_POLL_MS, then the newest frame is structured (what the TUI draws). Prints the
flush → shown latency (median, p95, max) and the cost of a poll that finds nothing.

    .venv/bin/python bench/bench_follow.py
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from pathlib import Path

import attrs

from allsmi.adapters import wire
from allsmi.adapters.recording.follow import FollowingSource
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.adapters.simulation.simulator import ClusterSimulator, ClusterSpec
from allsmi.app.tui import FOLLOW_POLL_MS
from allsmi.domain.model import Header

FRAMES = 60
INTERVAL_S = 0.25


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "live.ndjson.zst"
        sim = ClusterSimulator(ClusterSpec(nodes=4, gpus_per_node=8))
        sink = RecordingSink(SinkConfig(path=path, codec=Codec.ZSTD), Header(interval_ms=250))
        flushed: dict[int, float] = {}

        def write() -> None:
            for seq in range(FRAMES):
                t_ms = int(time.time() * 1000)
                frame = sim.frame(t_ms, ("gpu", "cpu", "memory", "chassis"))
                line = wire.encode_line(attrs.evolve(frame, seq=seq))
                sink.append(line, seq, t_ms)
                sink.flush()
                flushed[seq] = time.perf_counter()
                sim.advance(int(INTERVAL_S * 1000))
                time.sleep(INTERVAL_S)

        writer = threading.Thread(target=write)
        writer.start()
        while not path.exists() or not flushed:
            time.sleep(0.01)
        source = FollowingSource(path)
        latencies, idle_polls = [], []
        seen = source.frame_count
        while writer.is_alive() or seen < FRAMES:
            time.sleep(FOLLOW_POLL_MS / 1000)
            started = time.perf_counter()
            update = source.poll()
            if update.added:
                source.frame(source.frame_count - 1)  # what the screen structures
                now = time.perf_counter()
                for index in range(seen, source.frame_count):
                    latencies.append((now - flushed[index]) * 1000)
                seen = source.frame_count
            else:
                idle_polls.append((time.perf_counter() - started) * 1e6)
        writer.join()
        sink.close()
        source.close()
    latencies.sort()
    print(
        f"follow latency over {len(latencies)} frames (poll every {FOLLOW_POLL_MS} ms, "
        f"4x8-GPU frames, zstd):"
    )
    print(
        f"  flush -> shown  median {statistics.median(latencies):6.1f} ms   "
        f"p95 {latencies[int(0.95 * (len(latencies) - 1))]:6.1f} ms   max {latencies[-1]:6.1f} ms"
    )
    print(
        f"  idle poll cost  median {statistics.median(idle_polls):6.1f} us   "
        f"max {max(idle_polls):6.1f} us"
    )
    print(
        f"  bound: the poll period ({FOLLOW_POLL_MS} ms) + one decode; "
        "median ~ half the period is the physical expectation"
    )


if __name__ == "__main__":
    main()
