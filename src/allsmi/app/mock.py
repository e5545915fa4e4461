"""``allsmi mock``: N simulated GPU nodes on loopback ports, in one process
(docs/architecture.md §3.6).

Each node serves ``/snapshot``, ``/metrics`` and ``/events`` from the node simulator (the
same model ``allsmi demo`` records), all advancing on one cadence. ``--failure-nodes K``
makes the last K nodes misbehave in turn: one answers 503, the next hangs without
answering, the next sends garbage. The open-file limit is raised to fit the sockets, and
a hostfile lists the nodes for ``record --hostfile`` and ``view --hostfile``: written only
once every node listens, so a port in use fails the command (one line naming the port)
with no hostfile written and an earlier one at that path left as it was.
"""

from __future__ import annotations

import argparse
import errno
import resource
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

import anyio
import attrs

from allsmi import __version__
from allsmi.adapters.network.endpoints import FrameEndpoints, FrameFeed
from allsmi.adapters.network.server import Limits, Request, Response, Stream, serve_tcp
from allsmi.adapters.recording.files import atomic_write, require_writable_output
from allsmi.adapters.simulation.simulator import (
    ClusterSimulator,
    ClusterSpec,
    NodeReading,
    spread_address,
)
from allsmi.app.clock import Clock, RealClock, run_every
from allsmi.app.signals import STOP_SIGNALS, wait_for_signal
from allsmi.domain.errors import SourceUnavailable, UsageError
from allsmi.domain.model import Frame
from allsmi.domain.sections import build_frame

MAX_SPREAD: Final = 65_536  # nodes on their own loopback addresses: 127.0.0.2 … 127.1.0.1
FAILURE_MODES: Final = ("503", "hang", "garbage")
MOCK_LIMITS: Final = Limits(max_connections=8, keep_alive_timeout_s=60.0)
GARBAGE: Final = b'{"schema":1,"t":"\xff\xfe garbage \x00\x01 not json]]]\n'

Handler = Callable[[Request], Awaitable[Response | Stream]]


@attrs.frozen
class MockPlan:
    nodes: int
    base_port: int
    gpus: int
    seed: int
    failure_nodes: int
    interval_ms: int
    spread: bool = False  # each node on its own loopback address, all at base_port

    def address(self, index: int) -> tuple[str, int]:
        """Where node ``index`` listens."""
        if self.spread:
            return spread_address(index), self.base_port
        return "127.0.0.1", self.base_port + index


def node_frame(reading: NodeReading, t_ms: int) -> Frame:
    """One node's own view of itself, every section, as its exporter's ``/snapshot`` would
    serve it."""
    return build_frame(t_ms, reading.rows(), source="local")


def failure_handler(mode: str) -> Handler:
    async def handle(request: Request) -> Response | Stream:
        if mode == "503":
            return Response(503, b"Service temporarily unavailable\n")
        if mode == "hang":
            await anyio.sleep_forever()
        return Response(200, GARBAGE, content_type="application/json")

    return handle


def failure_mode(index: int, plan: MockPlan) -> str | None:
    """The last ``failure_nodes`` nodes fail, cycling through 503, hang and garbage."""
    first_failing = plan.nodes - plan.failure_nodes
    if index < first_failing:
        return None
    return FAILURE_MODES[(index - first_failing) % len(FAILURE_MODES)]


class MockCluster:
    """The simulator, one feed per node, and the loop that advances them."""

    def __init__(self, plan: MockPlan) -> None:
        self.plan = plan
        spec = ClusterSpec(
            nodes=plan.nodes,
            gpus_per_node=plan.gpus,
            seed=plan.seed,
            base_port=plan.base_port,
            spread=plan.spread,
        )
        self.sim = ClusterSimulator(spec)
        self.feeds = [FrameFeed() for _ in range(plan.nodes)]

    def publish(self, t_ms: int) -> None:
        for index, feed in enumerate(self.feeds):
            reading = self.sim.node_frame_parts(index, t_ms)
            if reading is not None:
                feed.publish(node_frame(reading, t_ms))

    def handler(self, index: int) -> Handler:
        mode = failure_mode(index, self.plan)
        if mode is not None:
            return failure_handler(mode)
        return FrameEndpoints(self.feeds[index], version=__version__).handle

    async def advance_forever(self, clock: Clock) -> None:
        """Advance and publish once per interval, from one interval after the call."""
        last = clock.wall_ms()

        async def advance(_missed: int) -> None:
            nonlocal last
            now = clock.wall_ms()
            self.sim.advance(max(0, now - last))
            last = now
            self.publish(now)

        await run_every(clock, self.plan.interval_ms, advance, at_start=False)


def raise_open_file_limit(needed: int) -> int:
    """Raise the soft RLIMIT_NOFILE towards ``needed`` (within the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def hostfile_text(plan: MockPlan) -> str:
    addresses = (plan.address(index) for index in range(plan.nodes))
    return "# allsmi mock nodes\n" + "".join(f"{host}:{port}\n" for host, port in addresses)


async def serve_cluster(
    cluster: MockCluster, clock: Clock, *, task_status: anyio.abc.TaskStatus[None]
) -> None:
    """Every node's server and the simulation, until cancelled (or a signal)."""
    cluster.publish(clock.wall_ms())
    async with anyio.create_task_group() as tg:
        for index in range(cluster.plan.nodes):
            host, port = cluster.plan.address(index)
            try:
                await tg.start(serve_tcp, host, port, cluster.handler(index), MOCK_LIMITS)
            except OSError as err:
                tg.cancel_scope.cancel()
                raise _bind_error(host, port, err) from None
        tg.start_soon(cluster.advance_forever, clock)
        task_status.started()


def _bind_error(host: str, port: int, err: OSError) -> SourceUnavailable:
    if err.errno == errno.EADDRINUSE:
        return SourceUnavailable(f"port {port} is already in use on {host} (try --base-port)")
    if err.errno == errno.EMFILE:
        return SourceUnavailable("too many open files for this many nodes (ulimit -n)")
    return SourceUnavailable(f"cannot listen on {host}:{port}: {err.strerror}")


def run(args: argparse.Namespace) -> int:
    plan = MockPlan(
        nodes=args.nodes,
        base_port=args.base_port,
        gpus=args.gpus,
        seed=args.seed,
        failure_nodes=args.failure_nodes,
        interval_ms=args.interval_ms,
        spread=args.spread,
    )
    if plan.spread and plan.nodes > MAX_SPREAD:
        raise UsageError(f"--spread places at most {MAX_SPREAD} nodes (127.0.0.2 on)")
    if not plan.spread and plan.base_port + plan.nodes - 1 > 65535:
        raise UsageError(f"{plan.nodes} nodes from port {plan.base_port} run past port 65535")
    if plan.failure_nodes > plan.nodes:
        raise UsageError("--failure-nodes cannot exceed --nodes")
    hostfile = Path(args.hostfile)
    require_writable_output(hostfile, "hostfile")  # exit 2 before any port is bound
    raise_open_file_limit(plan.nodes * (MOCK_LIMITS.max_connections + 2) + 64)
    cluster = MockCluster(plan)
    anyio.run(_main, cluster, hostfile)
    return 0


async def _main(cluster: MockCluster, hostfile: Path) -> None:
    plan = cluster.plan
    async with anyio.create_task_group() as tg:
        await tg.start(serve_cluster, cluster, RealClock())
        # Every node listens now: only then is the hostfile written (a failed bind leaves
        # no hostfile, and an earlier one at that path untouched).
        atomic_write(hostfile, hostfile_text(plan).encode())
        first, last = plan.address(0), plan.address(plan.nodes - 1)
        where = (
            f"{first[0]}-{last[0]} port {plan.base_port}"
            if plan.spread
            else f"127.0.0.1:{plan.base_port}-{last[1]}"
        )
        sys.stderr.write(
            f"allsmi mock: {plan.nodes} nodes x {plan.gpus} GPUs on {where}"
            f" ({plan.failure_nodes} failing); hosts in {hostfile}; "
            "Ctrl-C stops\n"
        )
        sys.stderr.flush()
        await wait_for_signal(*STOP_SIGNALS)
        tg.cancel_scope.cancel()
