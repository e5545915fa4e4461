"""Hostile peers beside a good host: ``allsmi record --source remote`` scraping one real
``allsmi mock`` node and scripted loopback peers sending the issue's payloads — a 1M-series
``/metrics`` page, a 100,000-GPU ``/snapshot`` (13 MB) and 700,000 GPU series (63 MB,
streamed) — and a 1,000-GPU ``/snapshot``. Each hostile peer must cost one ``errors`` entry
naming it and the cap it passed, never the good host's rows (in every frame), the cadence
(>= 18 of 20 frames at -i 0.5) or the memory: the recorder's peak RSS (VmHWM) within 1.5x
that of a clean run of the same good host, measured in the same test. Every other cap is
proved at the adapter (tests/adapters/test_remote.py) and the parser
(tests/adapters/test_page_limits.py)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Final

import anyio.from_thread
import attrs
import orjson
import pytest

from allsmi.adapters.network.scrape import MAX_BODY_BYTES, MAX_GPUS, MAX_SERIES
from allsmi.adapters.network.server import Limits, Request, Response, Stream, serve_tcp
from allsmi.adapters.recording.source import RecordingSource
from allsmi.domain.model import Frame

from .conftest import allsmi_path, peak_rss, user_env
from .test_cluster import Mock

INTERVAL_S: Final = 0.5
DURATION_S: Final = 10
SCHEDULED: Final = round(DURATION_S / INTERVAL_S)  # 20 frames
LEAST_FRAMES: Final = SCHEDULED - 2  # start-up and the last deadline may each cost one
RSS_FACTOR: Final = 1.5
PEER_LIMITS: Final = Limits(write_timeout_s=5.0, max_connections=16)
PROM_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
MIB: Final = 1 << 20


# --------------------------------------------------------------------------- hostile answers


def snapshot_of_gpus(count: int) -> bytes:
    """Our exporter's ``/snapshot`` shape, claiming ``count`` GPUs (~120 bytes each)."""
    gpu = {"name": "H100", "device_type": "GPU", "host_id": "evil", "hostname": "evil"}
    gpus = [{"uuid": f"GPU-{i:08d}", **gpu, "instance": "evil", "utilization": 50.0}
            for i in range(count)]  # fmt: skip
    return orjson.dumps({"schema": 1, "t": "2026-04-18T12:00:00.000Z", "gpus": gpus})


def gpu_series(count: int) -> bytes:
    """``count`` all-smi GPU series, one GPU each."""
    line = (
        'all_smi_gpu_utilization{gpu="H100",instance="evil",gpu_uuid="GPU-%d",gpu_index="%d"} 50\n'
    )
    return b"".join((line % (i, i)).encode() for i in range(count))


@attrs.frozen
class Peer:
    """A scripted host: the same answer to every path, like all-smi's exporter."""

    name: str
    body: bytes
    content_type: str
    chunked: bool  # streamed without a Content-Length, so only the cap can stop the reader
    error: str  # its errors entry after "host: "

    async def handle(self, request: Request) -> Response | Stream:
        if not self.chunked:
            return Response(200, self.body, content_type=self.content_type)
        return Stream(self.content_type, pieces(self.body))


async def pieces(body: bytes) -> AsyncIterator[bytes]:
    view = memoryview(body)
    for start in range(0, len(body), 256 * 1024):
        yield bytes(view[start : start + 256 * 1024])


BODY_CAP: Final = f"over the {MAX_BODY_BYTES // MIB} MiB cap"


def million_series() -> list[Peer]:
    """The issue's 1M-series page (5 MB: under the body cap, past the series cap)."""
    page = b"up 1\n" * 1_000_000
    return [Peer("1M series", page, PROM_TYPE, chunked=False, error=f"over {MAX_SERIES} series")]


def big_answers() -> list[Peer]:
    """The issue's 100,000-GPU ``/snapshot`` (13 MB, declared) and 700k GPU series (63 MB,
    streamed), and a 1,000-GPU ``/snapshot`` small enough to be parsed inline."""
    snapshot = snapshot_of_gpus(100_000)
    return [
        Peer(
            "100,000-GPU /snapshot",
            snapshot,
            "application/json",
            chunked=False,
            error=f"body of {len(snapshot)} bytes {BODY_CAP}",
        ),
        Peer(
            "700k GPU series",
            gpu_series(700_000),
            PROM_TYPE,
            chunked=True,
            error=f"body {BODY_CAP}",
        ),
        Peer(
            "1,000-GPU /snapshot",
            snapshot_of_gpus(1_000),
            "application/json",
            chunked=False,
            error=f"over {MAX_GPUS} GPUs",
        ),
    ]


# One group per recorder run, like the runs: a hostile host may cost about its body
# twice over (the bytes, then the text) while it is read and parsed, and two 8 MiB answers at
# once would be within the caps but not within 1.5x of a 36 MB recorder.
GROUPS: Final[dict[str, Callable[[], list[Peer]]]] = {
    "1M-series page": million_series,
    "13 MB, 63 MB and 1,000-GPU answers": big_answers,
}


@contextmanager
def serving(peers: Sequence[Peer]) -> Iterator[list[str]]:
    """Each peer on its own loopback port, served by a thread of this process."""
    with anyio.from_thread.start_blocking_portal() as portal:
        futures, hosts = [], []
        try:
            for peer in peers:
                serve = partial(serve_tcp, "127.0.0.1", 0, peer.handle, PEER_LIMITS)
                future, port = portal.start_task(serve)
                futures.append(future)
                hosts.append(f"127.0.0.1:{port}")
            yield hosts
        finally:
            for future in futures:
                future.cancel()


# --------------------------------------------------------------------------- the recorder


@attrs.frozen
class Run:
    frames: tuple[Frame, ...]
    peak_rss: int  # bytes, VmHWM
    stderr: str


def record(hosts: Sequence[str], out: Path) -> Run:
    """``allsmi record`` of ``hosts`` for DURATION_S at INTERVAL_S, its peak RSS read from
    /proc while it runs (``ru_maxrss`` would carry this test process's own peak)."""
    hostfile = out.with_suffix(".hosts")
    hostfile.write_text("".join(f"{host}\n" for host in hosts))
    argv = [allsmi_path(), "record", "--source", "remote", "--hostfile", str(hostfile)]
    argv += ["-o", str(out), "-i", str(INTERVAL_S), "--duration", f"{DURATION_S}s"]
    err_path = out.with_suffix(".err")
    with err_path.open("w") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=user_env())
    peak, deadline = 0, time.monotonic() + DURATION_S + 30
    try:
        while True:
            peak = max(peak, peak_rss(proc.pid))  # before the exit check: never a reaped pid
            if proc.poll() is not None:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"allsmi record still running {DURATION_S + 30} s after it started")
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    stderr = err_path.read_text()
    assert proc.returncode == 0, stderr
    with RecordingSource(out) as recording:
        frames = tuple(recording.frame(i) for i in range(recording.frame_count))
    return Run(frames, peak, stderr)


@attrs.frozen
class Hostile:
    peers: tuple[Peer, ...]
    hosts: tuple[str, ...]  # the peers' scrape targets, in order
    run: Run


@attrs.frozen
class Recorded:
    good: str  # the mock node
    clean: Run  # the good host alone
    hostile: dict[str, Hostile]  # the good host beside each group of GROUPS


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    tmp = tmp_path_factory.mktemp("hostile")
    mock = Mock(tmp, nodes=1, failing=0)
    try:
        good = mock.host(0)
        clean = record([good], tmp / "clean.ndjson.zst")
        hostile = {}
        for n, (name, make) in enumerate(GROUPS.items()):
            peers = tuple(make())
            with serving(peers) as hosts:
                run = record([good, *hosts], tmp / f"hostile-{n}.ndjson.zst")
            hostile[name] = Hostile(peers, tuple(hosts), run)
        assert mock.stop() == 0
    finally:
        if mock.proc.poll() is None:
            mock.proc.kill()
            mock.proc.communicate(timeout=10)
    return Recorded(good, clean, hostile)


@pytest.mark.parametrize("group", GROUPS)
def test_the_cadence_holds_and_the_good_host_is_in_every_frame(
    recorded: Recorded, group: str
) -> None:
    run = recorded.hostile[group].run
    assert len(run.frames) >= LEAST_FRAMES, (len(run.frames), run.stderr)
    assert not [e for f in run.frames for e in f.errors if e.startswith("recorder:")]
    for frame in run.frames:
        assert set(frame.hosts()) == {recorded.good}, (frame.seq, frame.errors)
        assert frame.gpus, (frame.seq, frame.errors)


@pytest.mark.parametrize("group", GROUPS)
def test_each_hostile_peer_is_one_error_naming_it_and_its_cap_in_every_frame(
    recorded: Recorded, group: str
) -> None:
    hostile = recorded.hostile[group]
    frames = hostile.run.frames
    for peer, host in zip(hostile.peers, hostile.hosts, strict=True):
        named = 0
        for frame in frames:
            mine = [e for e in frame.errors if e.startswith(f"{host}: ")]
            assert len(mine) == 1, (peer.name, frame.seq, frame.errors)
            named += mine[0] == f"{host}: {peer.error}"
        # A stalled machine may turn a frame's cap into "timeout after 0.45s", no more.
        assert named >= len(frames) - 2, (peer.name, named, len(frames))


@pytest.mark.parametrize("group", GROUPS)
def test_the_recorder_s_peak_rss_stays_within_1_5x_a_clean_run(
    recorded: Recorded, group: str
) -> None:
    peak, clean = recorded.hostile[group].run.peak_rss, recorded.clean.peak_rss
    assert len(recorded.clean.frames) >= LEAST_FRAMES, recorded.clean.stderr
    assert peak <= RSS_FACTOR * clean, f"peak RSS {peak / MIB:.1f} MiB, clean {clean / MIB:.1f} MiB"
