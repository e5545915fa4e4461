"""``allsmi demo``: a simulated cluster incident → a real recording → its replay.

It runs the real recorder root (:func:`allsmi.app.record.record_loop`) with the node
simulator as its source and a simulated clock, writing one hour of a 4-node × 8-GPU cluster
through the real sink in seconds. At 00:14:32 one node's GPUs collapse to idle and its
power drops. The banner and ``--help`` say only that there is an incident to find and which
keys look for it, never when or where (the README's tour tells). On a terminal the replay
opens paused on its first frame; without one, the recording's path and its ``verify``
summary are printed and the exit status is 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import anyio

from allsmi import __version__
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.adapters.recording.source import RecordingSource, discover
from allsmi.adapters.simulation.simulator import ClusterSimulator, ClusterSpec, Incident
from allsmi.app.clock import SimClock
from allsmi.app.record import RecordPlan, record_loop
from allsmi.app.verify import summary
from allsmi.domain.errors import RecordingUnreadable
from allsmi.domain.model import SECTIONS, Frame, Header

DEMO_START_MS = 1_776_513_600_000  # 2026-04-18T12:00:00Z
DEMO_LENGTH_MS = 3_601_000  # frames at 00:00:00 … 01:00:00 inclusive
DEMO_INTERVAL_MS = 1000
INCIDENT_AT_MS = (14 * 60 + 32) * 1000
INCIDENT_LENGTH_MS = 11 * 60 * 1000
INCIDENT_NODE = 2  # node-03
DEMO_INCLUDE = SECTIONS


class SimulatedCluster:
    """The node simulator as a recorder source: time moves as the simulated clock says."""

    def __init__(self, spec: ClusterSpec, include: tuple[str, ...]) -> None:
        self.sim = ClusterSimulator(spec)
        self.include = include
        self._last_t: int | None = None

    async def start(self) -> None:
        return None

    async def collect(self, t_ms: int) -> Frame:
        if self._last_t is not None and t_ms > self._last_t:
            self.sim.advance(t_ms - self._last_t)
        self._last_t = t_ms
        return self.sim.frame(t_ms, self.include)

    def hosts(self) -> tuple[str, ...]:
        return self.sim.hosts

    async def aclose(self) -> None:
        return None


def demo_spec() -> ClusterSpec:
    incident = Incident(
        host_index=INCIDENT_NODE,
        start_ms=DEMO_START_MS + INCIDENT_AT_MS,
        end_ms=DEMO_START_MS + INCIDENT_AT_MS + INCIDENT_LENGTH_MS,
        kind="gpu_idle",
    )
    # HGX nodes: each GPU's 18 NVLinks to the NVSwitches, for the Topology tab
    return ClusterSpec(nodes=4, gpus_per_node=8, seed=2, incidents=(incident,), nvlink=True)


def demo_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "allsmi" / "demo" / "cluster-incident.ndjson.zst"


def write_demo(path: Path) -> int:
    """Record the demo hour to ``path`` (replacing an earlier demo); returns frames."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        for old in discover(path):
            old.unlink()
    except RecordingUnreadable:
        pass
    source = SimulatedCluster(demo_spec(), DEMO_INCLUDE)
    plan = RecordPlan(DEMO_INTERVAL_MS, DEMO_LENGTH_MS, "remote", source.hosts())
    header = Header(
        source="remote", interval_ms=DEMO_INTERVAL_MS, hosts=plan.hosts, all_smi_version=__version__
    )
    sink = RecordingSink(SinkConfig(path=path, codec=Codec.ZSTD, max_size=0), header)
    result = anyio.run(record_loop, source, sink, SimClock(DEMO_START_MS), plan)
    return result.frames


def run(args: argparse.Namespace) -> int:
    path = demo_path()
    sys.stderr.write(
        "allsmi demo: simulating one hour of a 4-node x 8-GPU cluster; somewhere in that "
        "hour there is an incident to find. In the replay: n goes to the next event, e lists "
        "them; SPACE plays, + up to 8x, ] and [ step a frame, j/k jump 10 s, g goes to a "
        "time, h help…\n"
    )
    started = time.monotonic()
    frames = write_demo(path)
    sys.stderr.write(
        f"allsmi demo: recorded {frames} frames in {time.monotonic() - started:.1f} s\n"
    )
    if sys.stdin.isatty() and sys.stdout.isatty() and not args.no_replay:
        from allsmi.app import view

        return view.run_replay(
            argparse.Namespace(replay=str(path), speed=1.0, start=None, loop=False, follow=False)
        )
    sys.stdout.write(f"recording: {path}\n")
    sys.stdout.write(f"verify:    {summary(RecordingSource(path))}\n")
    sys.stdout.write(f"replay it: allsmi view --replay {path}\n")
    return 0
