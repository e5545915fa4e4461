"""What one hostile scrape target costs the recorder (the per-host limits of
``allsmi.adapters.network.scrape``): a clean mock cluster recorded by ``allsmi record --source
remote``, then the same cluster plus one hostile peer at a time, in the same run.

Cases:

1. The cycle of 100 healthy nodes, in-process (``RemoteSource.collect`` x N against
   ``allsmi mock``, as bench_cluster.py case 2): wall and CPU ms per collect, through
   ``/snapshot`` and ``/metrics`` — the cost of the caps and the thread hop on the everyday
   path. Run it under the old code too (``PYTHONPATH=old/src``) for a before/after.
2. ``allsmi mock --nodes 10`` recorded at ``-i 1`` alone, then beside each hostile peer
   (served by a thread of this process): frames written of those scheduled, the frame gaps,
   deadlines skipped, the fewest good hosts in a frame, the hostile host's error, the
   recorder's CPU and its peak RSS (VmHWM) against the clean run's; then the cycle time
   (``RemoteSource.collect`` in-process, wall and CPU) of the same hosts.

The peers: the issue's three (a 100,000-GPU ``/snapshot``, a page of 1M series, 700k GPU
series streamed), one just past each other cap, and the costliest answers the caps still let
through (100,000 series the fast reader refuses, 100,000 CPU rows, 8 MiB of ``{}`` that
orjson turns into 2.7 million dicts) — the worst a hostile host can make the recorder spend.

Run: ``.venv/bin/python bench/bench_hostile.py [seconds [collects]] [--only cycle|hostile]``
(defaults 20 s per recording, 30 collects; about 4 minutes). Prints tables; asserts nothing.
"""

from __future__ import annotations

import os
import statistics
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Final

import anyio
import anyio.from_thread
import attrs
import orjson

from allsmi.adapters.network.server import Limits, Request, Response, Stream, serve_tcp
from allsmi.adapters.recording.source import RecordingSource
from allsmi.app.remote import build_remote_source, remote_config
from allsmi.domain.hosts import parse_hostfile
from bench_cluster import (
    INCLUDE,
    Collects,
    collect_cases,
    mock_cluster,
    print_collects,
    record,
    table,
    time_collects,
)
from common import OUT_DIR

NODES: Final = 10
PROM: Final = "text/plain; version=0.0.4; charset=utf-8"
JSON: Final = "application/json"
PEER_LIMITS: Final = Limits(write_timeout_s=5.0, max_connections=16)


# --------------------------------------------------------------------------- hostile peers


@attrs.frozen
class Peer:
    name: str
    body: bytes
    content_type: str
    chunked: bool = False  # streamed without a Content-Length

    async def handle(self, request: Request) -> Response | Stream:
        if self.chunked:
            return Stream(self.content_type, _pieces(self.body))
        return Response(200, self.body, content_type=self.content_type)


async def _pieces(body: bytes) -> AsyncIterator[bytes]:
    view = memoryview(body)
    for start in range(0, len(body), 256 * 1024):
        yield bytes(view[start : start + 256 * 1024])


def _snapshot(gpus: int) -> bytes:
    row = {"name": "H100", "device_type": "GPU", "host_id": "x", "hostname": "x", "instance": "x"}
    rows = [{"uuid": f"GPU-{i:08d}", **row, "utilization": 50.0} for i in range(gpus)]
    return orjson.dumps({"schema": 1, "t": "2026-04-18T12:00:00.000Z", "gpus": rows})


def _lines(template: str, count: int) -> bytes:
    return "".join(template.format(i=i) for i in range(count)).encode()


GPU_SERIES: Final = 'all_smi_gpu_utilization{{gpu="H100",gpu_uuid="GPU-{i}",gpu_index="{i}"}} 1\n'
PEERS: Final[tuple[tuple[str, Callable[[], Peer]], ...]] = (
    ("100,000-GPU /snapshot, 13 MB", lambda: Peer("snapshot", _snapshot(100_000), JSON)),
    ("1M series, 5 MB", lambda: Peer("series", b"up 1\n" * 1_000_000, PROM)),
    (
        "700k GPU series, 63 MB streamed",
        lambda: Peer("gpu", _lines(GPU_SERIES, 700_000), PROM, True),
    ),
    ("1,000-GPU /snapshot", lambda: Peer("snapshot-1k", _snapshot(1_000), JSON)),
    ("20,000 GPUs on /metrics", lambda: Peer("gpu-20k", _lines(GPU_SERIES, 20_000), PROM)),
    ("8 MiB of comment lines", lambda: Peer("comments", b"#\n" * (4 << 20), PROM)),
    (
        "rows escaping to 9 MB",
        lambda: Peer(
            "escape",
            f'all_smi_gpu_info{{gpu_uuid="G",x="{chr(1) * 1_500_000}"}} 1\n'.encode(),
            PROM,
        ),
    ),
    (
        "100,000 series not plain (vendor)",
        lambda: Peer("vendor", _lines('other{{i="{i}",a="b"}}\t1\n', 100_000), PROM),
    ),
    (
        "100,000 CPU rows",
        lambda: Peer("cpus", _lines('all_smi_cpu_utilization{{index="{i}"}} 1\n', 100_000), PROM),
    ),
    (
        "8 MiB of empty JSON objects",
        lambda: Peer("objects", b'{"schema":1,"x":[' + b"{}," * 2_700_000 + b"{}]}", JSON),
    ),
    (
        "8 MiB of small numbers",
        lambda: Peer("numbers", b'{"schema":1,"x":[' + b"7," * 4_000_000 + b"7]}", JSON),
    ),
)


@contextmanager
def serving(peer: Peer) -> Iterator[str]:
    with anyio.from_thread.start_blocking_portal() as portal:
        serve = partial(serve_tcp, "127.0.0.1", 0, peer.handle, PEER_LIMITS)
        future, port = portal.start_task(serve)
        try:
            yield f"127.0.0.1:{port}"
        finally:
            future.cancel()


# --------------------------------------------------------------------------- one run


@attrs.frozen
class Outcome:
    frames: str
    gaps: str
    skipped: int
    fewest_good: int
    error: str
    cpu: str
    rss_mb: float
    cycle: str


def outcome(hostfile: Path, good: int, seconds: int, collects: int, work: Path) -> Outcome:
    result = record(hostfile, NODES, 1, seconds, work)
    with RecordingSource(work / f"cluster-{NODES}.ndjson.zst") as recording:
        frames = [recording.frame(i) for i in range(recording.frame_count)]
    hosts = parse_hostfile(hostfile.read_text())
    hostile = set(hosts[good:])
    errors = {
        e.split(": ", 1)[1] for f in frames for e in f.errors if e.split(": ", 1)[0] in hostile
    }
    gaps = result.gaps_ms or (0,)
    collected = anyio.run(
        time_collects, build_remote_source(remote_config(hosts, INCLUDE, 1000, None)), collects
    )
    return Outcome(
        frames=f"{result.frames}/{seconds}",
        gaps=f"{statistics.median(gaps):.0f} / {max(gaps)}",
        skipped=result.skipped,
        fewest_good=min(len(set(f.hosts()) - hostile) for f in frames),
        error="; ".join(sorted(errors)) or "-",
        cpu=f"{result.cpu_s:.1f}",
        rss_mb=result.maxrss_mb,
        cycle=_cycle(collected),
    )


def _cycle(c: Collects) -> str:
    wall, cpu = statistics.median(c.wall_ms), statistics.median(c.cpu_ms)
    return f"{wall:.0f} / {max(c.wall_ms):.0f} / {cpu:.0f}"


def hostile_cases(seconds: int, collects: int, work: Path) -> None:
    rows = []
    with mock_cluster(NODES, 1, work) as hostfile:
        good = len(parse_hostfile(hostfile.read_text()))
        clean = outcome(hostfile, good, seconds, collects, work)
        rows.append(_row("clean", clean, clean))
        for name, make in PEERS:
            peer = make()
            with serving(peer) as host:
                mixed = work / "hosts-hostile"
                mixed.write_text(hostfile.read_text() + f"{host}\n")
                rows.append(_row(name, outcome(mixed, good, seconds, collects, work), clean))
    head = (
        *("peer", "frames", "gap med/max ms", "skipped", "good hosts", "CPU s", "peak RSS MB"),
        *("cycle wall med/max, CPU med ms", "the peer's error"),
    )
    table(
        f"{NODES} mock nodes at -i 1 for {seconds} s, alone and beside one hostile peer", head, rows
    )


def _row(name: str, o: Outcome, clean: Outcome) -> tuple[str, ...]:
    rss = f"{o.rss_mb:.0f} ({o.rss_mb / clean.rss_mb:.2f}x)"
    return (
        name,
        o.frames,
        o.gaps,
        str(o.skipped),
        f"{o.fewest_good}/{NODES}",
        o.cpu,
        rss,
        o.cycle,
        o.error,
    )


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    only = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--only=")), "")
    seconds = int(args[0]) if args else 20
    collects = int(args[1]) if len(args) > 1 else 30
    work = OUT_DIR / "hostile"
    work.mkdir(parents=True, exist_ok=True)
    print(f"bench_hostile: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    if only in ("", "cycle"):
        with mock_cluster(100, 1, work) as hostfile:
            print_collects(100, 1, collect_cases(hostfile, 1000, collects))
    if only in ("", "hostile"):
        hostile_cases(seconds, collects, work)
    print(f"\nload average after the run: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
