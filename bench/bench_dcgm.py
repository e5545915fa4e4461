"""Recording clusters that already run dcgm-exporter and node_exporter (docs/architecture.md
§3.2): what ``allsmi record --source remote`` costs against ``allsmi mock --flavor dcgm,node``
(a dcgm-exporter page at the base port and a node_exporter page at the next, on each node's own
loopback address; the hostfile lists both, the recorder pairs them into one host), beside the
same recorder against ``allsmi mock --flavor allsmi --spread`` (``/snapshot`` JSON).

Cases:

1. 100 nodes of ``--flavor dcgm,node`` (100 dcgm + 100 node_exporter pages), ``-i 1``, 60 s:
   the recorder's CPU as % of one core over a steady window (``/proc/PID/stat`` utime + stime,
   sampled from ``WARMUP_S`` after start — imports and the first connections left out — to one
   second before the end), its whole-run CPU (``os.wait4`` rusage), frames, deadlines skipped,
   host errors, the hosts, GPUs and CPU rows per frame. The mock runs in its own process: its CPU
   is not the recorder's, but is printed, as both share the machine.
2. The same recorder against 100 nodes of ``--flavor allsmi --spread`` (``/snapshot``), and the
   ratio of the two steady CPU figures.
3. In-process, pages fetched once from each mock (two fetches one interval apart: the first
   primes the readers' state across scrapes — CPU counters, PCIe counters, the XID gauge — as a
   recorder's previous cycle would): one 100-node cycle's parse through the scraper's own
   readers — dcgm page → GPU rows, node_exporter page (``collect[]`` filtered, as the scraper
   asks) → CPU/memory rows, each split into text → samples folded (``fold_page``) and folded →
   rows — against a ``/snapshot`` body → rows (``read_snapshot``: ``orjson`` and decode), per
   node and per cycle, CPU time (``time.process_time``), min / median of ``ROUNDS``.

Target (printed beside the figure, ok / MISSED): 100 dcgm + 100 node_exporter pages at 1 s in
≤ 15 % of one core. When it is missed (or with ``--profile``), an in-process
``RemoteSource.collect`` loop against the dcgm,node mock (each collect followed by the frame's
encoding, as the recorder writes it) runs under ``cProfile`` and the functions that dominate are
printed.

Run: ``.venv/bin/python bench/bench_dcgm.py [seconds] [--profile]`` (default 60 s per recording;
about 3 minutes). Prints tables; asserts nothing (docs/architecture.md §9). The mock and the
recorder share the machine's cores: on a 2-core machine the mock's own CPU is a noticeable
part of the load the recorder runs beside.
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import os
import pstats
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Final

import anyio
import attrs
import orjson

from allsmi.adapters import wire
from allsmi.adapters.network import scrape
from allsmi.adapters.prometheus import dcgm, node
from allsmi.adapters.prometheus.parser import fold_page
from allsmi.adapters.recording.source import RecordingSource
from allsmi.app.remote import build_remote_source, remote_config
from allsmi.domain.hosts import host_part, parse_hostfile
from allsmi.domain.model import normalise_host_id
from bench_cluster import INCLUDE, WARMUP_S, free_base_port, skipped_in, table
from common import OUT_DIR, T0

ALLSMI: Final = str(Path(sys.executable).with_name("allsmi"))
NODES: Final = 100
INTERVAL_S: Final = 1
SAMPLE_S: Final = 0.25
ROUNDS: Final = 7
PROFILE_COLLECTS: Final = 20
TARGET_CORE_PCT: Final = 15.0
CLK_TCK: Final = os.sysconf("SC_CLK_TCK")
WANTED: Final = frozenset(scrape.SECTION_KEYS[s] for s in INCLUDE)
LIMITS: Final = scrape.HOST_LIMITS


# --------------------------------------------------------------------------- processes


def proc_cpu_s(pid: int) -> float | None:
    """utime + stime of ``pid`` in seconds (all its threads), from ``/proc/PID/stat``; None
    once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": field 3 on
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all cores from ``/proc/stat`` (idle and iowait are not busy)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(values[:8])  # user … steal; guest time is already in user
    return total - values[3] - values[4], total


@attrs.frozen
class Mock:
    flavor: str
    pid: int
    hostfile: Path
    hosts: tuple[str, ...]


@contextlib.contextmanager
def mock_cluster(flavor: str, work: Path) -> Iterator[Mock]:
    """``allsmi mock --flavor FLAVOR`` with ``NODES`` nodes, each on its own loopback address,
    until the block ends. Ready once its hostfile exists (written only when every node
    listens), then one simulation step later."""
    name = flavor.replace(",", "-")
    hostfile = work / f"hosts-{name}"
    hostfile.unlink(missing_ok=True)
    base = free_base_port(2)
    log_path = work / f"mock-{name}.log"
    argv = [ALLSMI, "mock", "--nodes", str(NODES), "--interval", str(INTERVAL_S)]
    argv += ["--flavor", flavor, "--spread", "--base-port", str(base), "--hostfile", str(hostfile)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log)
        try:
            deadline = time.monotonic() + 120
            while not hostfile.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"allsmi mock did not start: {log_path.read_text()}")
                time.sleep(0.1)
            time.sleep(INTERVAL_S)  # one simulation step published everywhere
            yield Mock(flavor, proc.pid, hostfile, parse_hostfile(hostfile.read_text()))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# --------------------------------------------------------------------------- cases 1 and 2


@attrs.frozen
class Recording:
    flavor: str
    seconds: int
    rc: int
    wall_s: float
    cpu_s: float  # whole run, rusage
    steady_cpu_s: float  # /proc/PID/stat over the steady window
    steady_wall_s: float
    mock_steady_cpu_s: float  # the mock's, over the same window
    machine_busy_pct: float  # all cores over the same window, in % of one core
    steady_frames: int  # frames stamped inside the steady window
    frames: int
    skipped: int
    errors: int  # host errors in all frames
    header_hosts: int
    hosts_per_frame: int
    gpus_per_frame: int
    cpus_per_frame: int
    cpus_with_utilization: int
    file_bytes: int

    @property
    def steady_pct(self) -> float:
        return 100 * self.steady_cpu_s / self.steady_wall_s if self.steady_wall_s else float("nan")

    @property
    def cpu_per_frame_ms(self) -> float:
        return 1000 * self.steady_cpu_s / self.steady_frames if self.steady_frames else 0.0

    @property
    def mock_pct(self) -> float:
        wall = self.steady_wall_s
        return 100 * self.mock_steady_cpu_s / wall if wall else float("nan")


def record(mock: Mock, seconds: int, work: Path) -> Recording:
    out = work / f"{mock.flavor.replace(',', '-')}.ndjson.zst"
    for old in work.glob(out.name + "*"):
        old.unlink()
    argv = [ALLSMI, "record", "--source", "remote", "--hostfile", str(mock.hostfile)]
    argv += ["-o", str(out), "-i", str(INTERVAL_S), "--duration", f"{seconds}s"]
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # (seconds since start, recorder CPU s, mock CPU s), inside the steady window only
    window: list[tuple[float, float, float]] = []
    epochs: list[float] = []  # wall clock of those samples
    busy: list[tuple[int, int]] = []
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        at = time.monotonic() - started
        own, theirs = proc_cpu_s(proc.pid), proc_cpu_s(mock.pid)
        if WARMUP_S <= at <= seconds - 1 and own is not None and theirs is not None:
            window.append((at, own, theirs))
            epochs.append(time.time())
            busy.append(machine_busy())
        time.sleep(SAMPLE_S)
    wall = time.monotonic() - started
    rc = os.waitstatus_to_exitcode(status)
    first, last = (window[0], window[-1]) if len(window) > 1 else ((0.0, 0.0, 0.0),) * 2

    with RecordingSource(out) as recording:
        count = recording.frame_count
        frames = [recording.frame(i) for i in range(count)]
        header = recording.header
    middle = frames[count // 2] if frames else None
    cores = os.cpu_count() or 1
    jiffies = (busy[-1][1] - busy[0][1]) if len(busy) > 1 else 0
    machine = 100 * cores * (busy[-1][0] - busy[0][0]) / jiffies if jiffies else float("nan")
    inside = [f for f in frames if epochs and 1000 * epochs[0] < f.t_ms <= 1000 * epochs[-1]]
    cpus = (middle.cpus or ()) if middle else ()
    return Recording(
        flavor=mock.flavor,
        seconds=seconds,
        rc=rc,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        steady_cpu_s=last[1] - first[1],
        steady_wall_s=last[0] - first[0],
        mock_steady_cpu_s=last[2] - first[2],
        machine_busy_pct=machine,
        steady_frames=len(inside),
        frames=count,
        skipped=sum(skipped_in(f.errors) for f in frames),
        errors=sum(len([e for e in f.errors if not e.startswith("recorder:")]) for f in frames),
        header_hosts=len(header.hosts or ()) if header else 0,
        hosts_per_frame=len(middle.hosts()) if middle else 0,
        gpus_per_frame=len(middle.gpus or ()) if middle else 0,
        cpus_per_frame=len(cpus),
        cpus_with_utilization=sum(1 for c in cpus if c.utilization is not None),
        file_bytes=sum(p.stat().st_size for p in work.glob(out.name + "*")),
    )


def print_recordings(runs: Sequence[Recording]) -> None:
    def row(label: str, value: Callable[[Recording], str], target: str = "") -> tuple[str, ...]:
        return (label, *(value(r) for r in runs), target)

    dcgm_run = runs[0]
    ok = "ok" if dcgm_run.steady_pct <= TARGET_CORE_PCT else "MISSED"
    rows = [
        row("exit status", lambda r: f"{r.rc}"),
        row("frames written", lambda r: f"{r.frames} of {r.seconds // INTERVAL_S}"),
        row("deadlines skipped", lambda r: f"{r.skipped}", "0"),
        row("host errors (all frames)", lambda r: f"{r.errors}", "0"),
        row("hosts in header / in a frame", lambda r: f"{r.header_hosts} / {r.hosts_per_frame}"),
        row("GPUs per frame", lambda r: f"{r.gpus_per_frame}", f"{8 * NODES}"),
        row(
            "CPU rows (with utilization)",
            lambda r: f"{r.cpus_per_frame} ({r.cpus_with_utilization})",
            f"{NODES}",
        ),
        row("recorder CPU, whole run", lambda r: f"{r.cpu_s:.1f} s in {r.wall_s:.1f} s"),
        row(
            "recorder CPU, steady",
            lambda r: f"{r.steady_pct:.1f}% ({10 * r.steady_pct * INTERVAL_S:.0f} ms/cycle)",
            f"dcgm,node <= {TARGET_CORE_PCT:.0f}%: {ok}",
        ),
        row(
            "recorder CPU per frame (steady)",
            lambda r: f"{r.cpu_per_frame_ms:.0f} ms x {r.steady_frames} frames",
        ),
        row("steady window", lambda r: f"{r.steady_wall_s:.1f} s"),
        row("mock CPU, same window", lambda r: f"{r.mock_pct:.1f}% (not counted)"),
        row(
            "machine busy, same window",
            lambda r: f"{r.machine_busy_pct:.0f}% of {os.cpu_count()} x 100%",
        ),
        row("stored bytes per frame", lambda r: f"{r.file_bytes / max(r.frames, 1):,.0f} B"),
    ]
    head = ("figure", *(f"--flavor {r.flavor}" for r in runs), "target")
    title = f"allsmi record --source remote: {NODES} nodes, -i {INTERVAL_S}, {runs[0].seconds} s"
    table(title, head, rows)
    if len(runs) > 1 and runs[1].steady_pct:
        ratio = runs[0].steady_pct / runs[1].steady_pct
        print(f"ratio of steady recorder CPU, dcgm,node / snapshot: {ratio:.2f}x")


# --------------------------------------------------------------------------- case 3


def fetch(url: str, accept: str = "*/*") -> bytes:
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=10) as reply:
        body: bytes = reply.read()
        return body


@attrs.frozen
class Pages:
    """Each target's body, twice, one simulation step apart; ``path`` as the scraper asks."""

    hosts: tuple[str, ...]
    before: tuple[bytes, ...]
    after: tuple[bytes, ...]


def fetch_pages(mock: Mock) -> Pages:
    def path(host: str) -> str:
        if mock.flavor == "allsmi":
            return "/snapshot"
        # the dcgm page is at the even ports of the hostfile's pairs, node_exporter's next
        return node.NODE_PATH if mock.hosts.index(host) % 2 else "/metrics"

    def once() -> tuple[bytes, ...]:
        accept = "application/json, text/plain;q=0.5"
        return tuple(fetch(f"http://{h}{path(h)}", accept) for h in mock.hosts)

    before = once()
    time.sleep(INTERVAL_S + 0.2)
    return Pages(mock.hosts, before, once())


@attrs.frozen
class Parse:
    label: str
    pages: int  # pages per cycle
    bytes_per_page: float
    cpu_ms: tuple[float, ...]  # per cycle
    rows: str  # what one cycle yields


def cpu_rounds(prime: Callable[[], Any], run: Callable[[], Any]) -> tuple[tuple[float, ...], Any]:
    """CPU ms of ``run`` (after an untimed ``prime``), ``ROUNDS`` times; and run's last result."""
    out: list[float] = []
    result = None
    for _ in range(ROUNDS):
        prime()
        start = time.process_time()
        result = run()
        out.append(1000 * (time.process_time() - start))
    return tuple(out), result


def exporter_cases(pages: Pages) -> list[Parse]:
    """dcgm and node_exporter pages through the scraper's reader (``_Page.read``: detection,
    line filter, fold, rows with the state of the previous fetch), and its two steps apart."""
    pair = scrape.pair_ids(pages.hosts)
    states: dict[str, dcgm.DcgmState | node.NodeState] = {}
    t1 = T0 + 1000 * INTERVAL_S

    def reader(host: str, t_ms: int) -> scrape._Page:
        return scrape._Page(host, pair[host], WANTED, LIMITS, t_ms)

    def prime() -> None:
        states.clear()
        for host, body in zip(pages.hosts, pages.before, strict=True):
            reader(host, T0).read(body.decode(), states, False)

    def kind(index: int) -> list[int]:
        return list(range(index, len(pages.hosts), 2))  # 0: dcgm, 1: node_exporter

    def full(which: list[int]) -> Callable[[], list[dict[str, list[Any]]]]:
        def run() -> list[dict[str, list[Any]]]:
            return [
                reader(pages.hosts[i], t1).read(pages.after[i].decode(), states, False)[1]
                for i in which
            ]

        return run

    def fold_only(which: list[int], fold: Callable[..., Any], names: frozenset[str]) -> Any:
        def run() -> list[Any]:
            return [
                fold_page(pages.after[i].decode(), LIMITS, partial(fold, limits=LIMITS), names)
                for i in which
            ]

        return run

    dcgm_ix, node_ix = kind(0), kind(1)
    folded_dcgm = fold_only(dcgm_ix, dcgm.fold_dcgm, dcgm.DCGM_NAMES)()
    folded_node = fold_only(node_ix, node.fold_node, node.NODE_NAMES)()

    def dcgm_rows() -> list[Any]:
        out = []
        for i, page in zip(dcgm_ix, folded_dcgm, strict=True):
            host = pages.hosts[i]
            state = states[host]
            assert isinstance(state, dcgm.DcgmState)
            out.append(page.rows(pair[host], normalise_host_id(host), host_part(host), state, t1))
        return out

    def node_rows() -> list[Any]:
        out = []
        for i, page in zip(node_ix, folded_node, strict=True):
            host = pages.hosts[i]
            state = states[host]
            assert isinstance(state, node.NodeState)
            out.append(page.rows_of(pair[host], normalise_host_id(host), host_part(host), state))
        return out

    def size(which: list[int]) -> float:
        return statistics.mean(len(pages.after[i]) for i in which)

    def count(result: list[dict[str, list[Any]]]) -> str:
        totals: dict[str, int] = {}
        for sections in result:
            for key, rows in sections.items():
                if rows:
                    totals[key] = totals.get(key, 0) + len(rows)
        return ", ".join(f"{n} {key}" for key, n in totals.items())

    both = dcgm_ix + node_ix
    cases: list[Parse] = []
    for label, which, run, rows in (
        ("dcgm page -> GPU rows (scraper's read)", dcgm_ix, full(dcgm_ix), None),
        ("  of which text -> folded (fold_page)", dcgm_ix, fold_only(dcgm_ix, dcgm.fold_dcgm,
                                                                     dcgm.DCGM_NAMES), ""),
        ("  of which folded -> rows", dcgm_ix, dcgm_rows, ""),
        ("node page -> CPU/memory rows (scraper's read)", node_ix, full(node_ix), None),
        ("  of which text -> folded (fold_page)", node_ix, fold_only(node_ix, node.fold_node,
                                                                     node.NODE_NAMES), ""),
        ("  of which folded -> rows", node_ix, node_rows, ""),
        ("dcgm + node pages, one cycle", both, full(both), None),
    ):  # fmt: skip
        cpu_ms, result = cpu_rounds(prime, run)
        cases.append(
            Parse(label, len(which), size(which), cpu_ms, count(result) if rows is None else rows)
        )
    return cases


def snapshot_cases(pages: Pages) -> list[Parse]:
    """``/snapshot`` bodies through ``read_snapshot`` (the scraper's reader), and ``orjson``
    alone."""

    def read() -> list[dict[str, list[Any]]]:
        return [
            scrape.read_snapshot(body, normalise_host_id(host), WANTED, LIMITS, False)
            for host, body in zip(pages.hosts, pages.after, strict=True)
        ]

    def loads() -> list[Any]:
        return [orjson.loads(body) for body in pages.after]

    def rows(result: list[dict[str, list[Any]]]) -> str:
        totals: dict[str, int] = {}
        for sections in result:
            for key, found in sections.items():
                if found:
                    totals[key] = totals.get(key, 0) + len(found)
        return ", ".join(f"{n} {key}" for key, n in totals.items())

    size = statistics.mean(len(b) for b in pages.after)
    read_ms, result = cpu_rounds(lambda: None, read)
    loads_ms, _ = cpu_rounds(lambda: None, loads)
    return [
        Parse("/snapshot -> rows (read_snapshot)", len(pages.hosts), size, read_ms, rows(result)),
        Parse("  of which orjson.loads", len(pages.hosts), size, loads_ms, ""),
    ]


def print_parses(cases: Sequence[Parse]) -> None:
    rows = []
    for c in cases:
        lo, mid = min(c.cpu_ms), statistics.median(c.cpu_ms)
        per_node = 1000 * mid / NODES  # µs: a cycle's pages are one node's pages x NODES
        rows.append(
            (c.label, f"{c.pages}", f"{c.bytes_per_page:,.0f}", f"{lo:.1f} / {mid:.1f}",
             f"{per_node:,.0f}", c.rows)
        )  # fmt: skip
    head = ("parse", "pages", "bytes/page", "ms/cycle min/med", "µs/node", "rows per cycle")
    table(
        f"one {NODES}-node cycle's parse, in-process CPU ({ROUNDS} rounds; state primed by the "
        "previous fetch)",
        head,
        rows,
    )
    by = {c.label: statistics.median(c.cpu_ms) for c in cases}
    exporters = by["dcgm + node pages, one cycle"]
    snapshot = by["/snapshot -> rows (read_snapshot)"]
    print(f"parse ratio, dcgm + node / snapshot: {exporters / snapshot:.2f}x")


# --------------------------------------------------------------------------- profile


def profile_collects(mock: Mock, collects: int, top: int = 30) -> str:
    """``collects`` ``RemoteSource.collect`` calls (one a second, as the recorder) plus the
    frame's encoding, under cProfile: the report of the functions with the most own time, and
    the most cumulative."""
    config = remote_config(mock.hosts, INCLUDE, 1000 * INTERVAL_S, None)
    source = build_remote_source(config)
    profiler = cProfile.Profile()
    cpu: list[float] = []
    late: list[int] = []  # targets without an answer in each profiled cycle

    async def loop() -> None:
        try:
            await source.collect(T0)  # cold: connections opened, kinds found
            for i in range(collects):
                next_tick = time.monotonic() + INTERVAL_S
                start = time.process_time()
                profiler.enable()
                frame = await source.collect(T0 + (i + 1) * 1000 * INTERVAL_S)
                wire.encode_line(frame)
                profiler.disable()
                late.append(sum(1 for e in frame.errors if "no answer within" in e))
                cpu.append(1000 * (time.process_time() - start))
                await anyio.sleep(max(0.0, next_tick - time.monotonic()))
        finally:
            await source.aclose()

    anyio.run(loop)
    report = [
        f"\ncProfile: {collects} collects + encode_line of {NODES} nodes ({len(mock.hosts)} "
        f"targets), CPU per cycle median {statistics.median(cpu):.0f} ms (profiler overhead "
        f"included); targets cut by the cycle deadline per cycle, median "
        f"{statistics.median(late):.0f} of {len(mock.hosts)}"
    ]
    for order in ("tottime", "cumulative"):
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.strip_dirs().sort_stats(order).print_stats(top)
        lines = text.getvalue().splitlines()
        start = next(i for i, line in enumerate(lines) if "ncalls" in line)
        report.append(f"\n-- by {order} (top {top}) --")
        report.append("\n".join(lines[start:]).rstrip())
    return "\n".join(report)


# --------------------------------------------------------------------------- main


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    seconds = int(args[0]) if args else 60
    want_profile = "--profile" in sys.argv[1:]
    work = OUT_DIR / "dcgm"
    work.mkdir(parents=True, exist_ok=True)
    print(
        f"bench_dcgm: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, {ALLSMI}; the mock "
        "runs in its own process on the same cores as the recorder (its CPU is not counted)"
    )

    runs: list[Recording] = []
    with mock_cluster("dcgm,node", work) as mock:
        runs.append(record(mock, seconds, work))
        exporter_pages = fetch_pages(mock)
        missed = runs[0].steady_pct > TARGET_CORE_PCT
        profile = profile_collects(mock, PROFILE_COLLECTS) if missed or want_profile else ""
    with mock_cluster("allsmi", work) as mock:
        runs.append(record(mock, seconds, work))
        snapshot_pages = fetch_pages(mock)
    print_recordings(runs)
    print_parses(exporter_cases(exporter_pages) + snapshot_cases(snapshot_pages))
    if profile:
        print(f"{profile}\n(cProfile: in-process, against the dcgm,node mock)")
    print(f"\nload average after the run: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
