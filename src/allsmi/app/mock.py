"""``allsmi mock``: N simulated GPU nodes on loopback ports, in one process
(docs/architecture.md §3.6).

Each node serves ``/snapshot``, ``/metrics`` and ``/events`` from the node simulator (the
same model ``allsmi demo`` records), all advancing on one cadence. ``--failure-nodes K``
makes the last K nodes misbehave in turn: one answers 503, the next hangs without
answering, the next sends garbage. The open-file limit is raised to fit the sockets, and
a hostfile lists the nodes for ``record --hostfile`` and ``view --hostfile``: written only
once every node listens, so a port in use fails the command (one line naming the port)
with no hostfile written and an earlier one at that path left as it was.

``--flavor`` picks the page shape (docs/architecture.md §3.6): ``allsmi`` (the above),
``dcgm`` (dcgm-exporter's ``/metrics``, with GPU health and pod labels on some GPUs; every
other path 404, as dcgm-exporter answers), ``node`` (node_exporter's ``/metrics``, honouring
``collect[]``), or ``dcgm,node``: both on each node, dcgm's at the base port and
node_exporter's at the next, on each node's own address (so it implies ``--spread``: a reader
pairs the two pages of a host by the address), both in the hostfile. The pages' own counters
move at each simulation step, never on a request. ``--incident`` injects a throttle episode or
an XID at a time counted from the mock's start; it turns health readings on for the allsmi
flavor too (they are always on for dcgm).
"""

from __future__ import annotations

import argparse
import errno
import math
import resource
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

import anyio
import attrs

from allsmi import __version__
from allsmi.adapters.network.endpoints import METRICS_TYPE, FrameEndpoints, FrameFeed
from allsmi.adapters.network.server import Limits, Request, Response, Stream, serve_tcp
from allsmi.adapters.prometheus.exporter_pages import (
    DcgmPage,
    NodePage,
    Workload,
    node_collectors,
)
from allsmi.adapters.recording.files import atomic_write, require_writable_output
from allsmi.adapters.simulation.simulator import (
    ClusterSimulator,
    ClusterSpec,
    Incident,
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
FLAVORS: Final = {  # --flavor → the pages each node serves, in port order
    "allsmi": ("allsmi",),
    "dcgm": ("dcgm",),
    "node": ("node",),
    "dcgm,node": ("dcgm", "node"),
    "node,dcgm": ("dcgm", "node"),
}
PAGE_NAMES: Final = {"allsmi": "allsmi", "dcgm": "dcgm-exporter", "node": "node_exporter"}
NOT_FOUND: Final = b"404 page not found\n"  # what the Go exporters answer
INCIDENT_FORMS: Final = "throttle:NODE:GPU:START_S:LEN_S or xid:NODE:GPU:AT_S:CODE"

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
    pages: tuple[str, ...] = ("allsmi",)  # what each node serves, one port each (FLAVORS)
    incidents: tuple[Incident, ...] = ()  # times in ms from the mock's start

    def address(self, index: int, page: int = 0) -> tuple[str, int]:
        """Where node ``index`` serves its ``page``-th page (a second page needs spread)."""
        if self.spread:
            return spread_address(index), self.base_port + page
        return "127.0.0.1", self.base_port + index

    @property
    def health(self) -> bool:
        return "dcgm" in self.pages or bool(self.incidents)


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


def mock_workloads(index: int, gpus: int) -> dict[int, Workload]:
    """The pods holding node ``index``'s GPUs on a dcgm page: every third node runs one
    training pod on all its GPUs, the next serves a model from half of them, the third has
    none (its labels are empty strings)."""
    if index % 3 == 0:
        work = Workload("ml", f"train-llama3-{index + 1:04d}-0", "trainer")
        return dict.fromkeys(range(gpus), work)
    if index % 3 == 1:
        work = Workload("serving", f"vllm-{index + 1:04d}-0", "vllm")
        return dict.fromkeys(range(max(gpus // 2, 1)), work)
    return {}


def dcgm_handler(feed: FrameFeed, page: DcgmPage) -> Handler:
    """dcgm-exporter: ``/metrics`` only."""

    async def handle(request: Request) -> Response | Stream:
        if request.path != "/metrics":
            return Response(404, NOT_FOUND)
        body = feed.rendered("dcgm", lambda _frame: page.render())
        if body is None:
            return Response(503, b"no collection yet\n")
        return Response(200, body, content_type=METRICS_TYPE)

    return handle


def node_handler(feed: FrameFeed, page: NodePage) -> Handler:
    """node_exporter: ``/metrics``, ``collect[]`` keeping only the named collectors."""

    async def handle(request: Request) -> Response | Stream:
        if request.path != "/metrics":
            return Response(404, NOT_FOUND)
        try:
            collectors = node_collectors(request.query)
        except ValueError as err:
            return Response(400, f"{err}\n".encode())
        kind = "node" if collectors is None else "node:" + ",".join(sorted(collectors))
        body = feed.rendered(kind, lambda _frame: page.render(collectors))
        if body is None:
            return Response(503, b"no collection yet\n")
        return Response(200, body, content_type=METRICS_TYPE)

    return handle


def parse_incident(text: str, nodes: int, gpus: int) -> Incident:
    """``throttle:NODE:GPU:START_S:LEN_S`` (GPU a number or ``all``) or
    ``xid:NODE:GPU:AT_S:CODE`` as an incident with times in ms from the mock's start. NODE
    counts from 1 as the hostnames do (node-0001), GPU from 0; UsageError in one line."""
    parts = text.split(":")
    if len(parts) != 5 or parts[0] not in ("throttle", "xid"):
        raise UsageError(f"--incident {text!r}: expected {INCIDENT_FORMS}")
    kind, node_text, gpu_text, at_text, last = parts
    node = _whole_in(text, "NODE", node_text, 1, nodes)
    gpu = (
        None
        if kind == "throttle" and gpu_text == "all"
        else _whole_in(text, "GPU", gpu_text, 0, gpus - 1)
    )
    start_ms = _ms(text, "the time", at_text, allow_zero=True)
    if kind == "throttle":
        length_ms = _ms(text, "LEN_S", last, allow_zero=False)
        return Incident(node - 1, start_ms, start_ms + length_ms, "throttle", gpu_index=gpu)
    code = _whole_in(text, "CODE", last, 1, 65535)
    return Incident(node - 1, start_ms, None, "xid", gpu_index=gpu, xid=code)


def _whole_in(text: str, what: str, value: str, low: int, high: int) -> int:
    if not value.isdecimal() or not low <= int(value) <= high:
        raise UsageError(f"--incident {text!r}: {what} must be a whole number in {low}..{high}")
    return int(value)


def _ms(text: str, what: str, value: str, *, allow_zero: bool) -> int:
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (seconds >= 0 if allow_zero else seconds > 0) or seconds > 10**9:
        bound = "at least 0" if allow_zero else "more than 0"
        raise UsageError(f"--incident {text!r}: {what} must be seconds, {bound}")
    return round(seconds * 1000)


def failure_mode(index: int, plan: MockPlan) -> str | None:
    """The last ``failure_nodes`` nodes fail, cycling through 503, hang and garbage."""
    first_failing = plan.nodes - plan.failure_nodes
    if index < first_failing:
        return None
    return FAILURE_MODES[(index - first_failing) % len(FAILURE_MODES)]


class MockCluster:
    """The simulator, one feed per node (and its pages), and the loop that advances them.
    ``start_ms``: the instant the plan's incident times count from."""

    def __init__(self, plan: MockPlan, start_ms: int = 0) -> None:
        self.plan = plan
        spec = ClusterSpec(
            nodes=plan.nodes,
            gpus_per_node=plan.gpus,
            seed=plan.seed,
            base_port=plan.base_port,
            spread=plan.spread,
            health=plan.health,
            incidents=tuple(_shifted(incident, start_ms) for incident in plan.incidents),
        )
        self.sim = ClusterSimulator(spec)
        self.feeds = [FrameFeed() for _ in range(plan.nodes)]
        self.dcgm = [
            DcgmPage(mock_workloads(i, plan.gpus)) if "dcgm" in plan.pages else None
            for i in range(plan.nodes)
        ]
        self.node = [
            NodePage(spec.hostname(i)) if "node" in plan.pages else None for i in range(plan.nodes)
        ]

    def publish(self, t_ms: int) -> None:
        for index, feed in enumerate(self.feeds):
            reading = self.sim.node_frame_parts(index, t_ms)
            if reading is not None:
                dcgm, node = self.dcgm[index], self.node[index]
                if dcgm is not None:
                    dcgm.update(reading.gpus, t_ms)
                if node is not None:
                    node.update(reading.cpus, reading.memory, reading.storage, t_ms)
                feed.publish(node_frame(reading, t_ms))

    def handler(self, index: int, page: int = 0) -> Handler:
        mode = failure_mode(index, self.plan)
        if mode is not None:
            return failure_handler(mode)
        feed, dcgm, node = self.feeds[index], self.dcgm[index], self.node[index]
        kind = self.plan.pages[page]
        if kind == "dcgm" and dcgm is not None:
            return dcgm_handler(feed, dcgm)
        if kind == "node" and node is not None:
            return node_handler(feed, node)
        return FrameEndpoints(feed, version=__version__).handle

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


def _shifted(incident: Incident, start_ms: int) -> Incident:
    end = incident.end_ms
    return attrs.evolve(
        incident,
        start_ms=incident.start_ms + start_ms,
        end_ms=None if end is None else end + start_ms,
    )


def hostfile_text(plan: MockPlan) -> str:
    addresses = (
        plan.address(index, page) for index in range(plan.nodes) for page in range(len(plan.pages))
    )
    return "# allsmi mock nodes\n" + "".join(f"{host}:{port}\n" for host, port in addresses)


async def serve_cluster(
    cluster: MockCluster, clock: Clock, *, task_status: anyio.abc.TaskStatus[None]
) -> None:
    """Every node's server and the simulation, until cancelled (or a signal)."""
    cluster.publish(clock.wall_ms())
    async with anyio.create_task_group() as tg:
        for index in range(cluster.plan.nodes):
            for page in range(len(cluster.plan.pages)):
                host, port = cluster.plan.address(index, page)
                handler = cluster.handler(index, page)
                try:
                    await tg.start(serve_tcp, host, port, handler, MOCK_LIMITS)
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
    flavor = getattr(args, "flavor", "allsmi")
    pages = FLAVORS.get(flavor.replace(" ", ""))
    if pages is None:
        raise UsageError(f"--flavor {flavor!r}: expected allsmi, dcgm, node or dcgm,node")
    incidents = tuple(
        parse_incident(text, args.nodes, args.gpus) for text in getattr(args, "incident", [])
    )
    plan = MockPlan(
        nodes=args.nodes,
        base_port=args.base_port,
        gpus=args.gpus,
        seed=args.seed,
        failure_nodes=args.failure_nodes,
        interval_ms=args.interval_ms,
        spread=args.spread or len(pages) > 1,
        pages=pages,
        incidents=incidents,
    )
    if plan.spread and plan.nodes > MAX_SPREAD:
        raise UsageError(f"--spread places at most {MAX_SPREAD} nodes (127.0.0.2 on)")
    if plan.spread and plan.base_port + len(pages) - 1 > 65535:
        raise UsageError(f"--flavor {flavor}: ports from {plan.base_port} run past port 65535")
    if not plan.spread and plan.base_port + plan.nodes - 1 > 65535:
        raise UsageError(f"{plan.nodes} nodes from port {plan.base_port} run past port 65535")
    if plan.failure_nodes > plan.nodes:
        raise UsageError("--failure-nodes cannot exceed --nodes")
    hostfile = Path(args.hostfile)
    require_writable_output(hostfile, "hostfile")  # exit 2 before any port is bound
    raise_open_file_limit(len(pages) * plan.nodes * (MOCK_LIMITS.max_connections + 2) + 64)
    cluster = MockCluster(plan, RealClock().wall_ms())
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
        ports = "/".join(str(plan.base_port + page) for page in range(len(plan.pages)))
        where = (
            f"{first[0]}-{last[0]} port {ports}"
            if plan.spread
            else f"127.0.0.1:{plan.base_port}-{last[1]}"
        )
        shape = (
            ""
            if plan.pages == ("allsmi",)
            else f" ({' + '.join(PAGE_NAMES[p] for p in plan.pages)} pages)"
        )
        sys.stderr.write(
            f"allsmi mock: {plan.nodes} nodes x {plan.gpus} GPUs{shape} on {where}"
            f" ({plan.failure_nodes} failing); hosts in {hostfile}; "
            "Ctrl-C stops\n"
        )
        sys.stderr.flush()
        await wait_for_signal(*STOP_SIGNALS)
        tg.cancel_scope.cancel()
