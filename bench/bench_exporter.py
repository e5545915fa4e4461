"""The exporter side of docs/architecture.md §3.2 against a real Prometheus, in one run.

1. Side by side: one ``allsmi mock --nodes 100 --interval 1`` cluster (8 GPUs, processes and
   disks per node) is scraped for SECONDS s by a real Prometheus (every node's ``/metrics``
   at 1 s; its scrape config generated from the mock's hostfile) and by ``allsmi record
   --source remote --hostfile … -i 1`` with every section the nodes export. For each process:
   CPU over the window (user+sys, psutil; seconds and % of one core) and peak RSS (VmHWM).
   Bytes per sample on disk:
   - ours: the closed recording (zstd) ÷ its samples. A sample is a numeric value leaf of a
     frame's JSON; identity numbers (index, pid, core_id, socket_id, id, device_id,
     link_index) are labels, not samples, so they are not counted — the conservative count
     (all numeric leaves are shown too);
   - Prometheus WAL + head: du of its data dir's ``wal/`` and ``chunks_head/`` after it
     stopped ÷ the samples its TSDB then holds (``promtool tsdb dump``; its own
     ``prometheus_tsdb_head_samples_appended_total``, read just before the stop, is shown);
   - compacted block, from Prometheus's samples: ``promtool tsdb dump`` of its data dir,
     rewritten as OpenMetrics, ``promtool tsdb create-blocks-from openmetrics``, du ÷ samples;
   - compacted block, from our samples: every value leaf of our recording's frames as one
     OpenMetrics sample (name from the JSON path, labels from host and row identity), same
     promtool import, du ÷ samples. A block holding only SECONDS s carries its whole index
     for few samples per series; the chunks-only figure is given beside it.
2. ``/metrics`` requests per second against a local ``allsmi api -i 1``: CLIENTS concurrent
   keep-alive loops (httpx, one process) for RPS_SECONDS s; the client shares the machine's
   cores, so the figure is a floor. The api's CPU over the run is printed.
3. ``/events`` subscribers on one ``allsmi api -i 1``: SUBSCRIBERS streams opened at once and
   held HOLD_SECONDS s; how many received a frame after the one they got on connecting; the
   api's RSS and CPU while holding them; whether a ``/metrics`` scrape is answered meanwhile.

Run: ``.venv/bin/python bench/bench_exporter.py [seconds]`` (default 60). Needs
``prometheus`` and ``promtool`` (scripts/setup-system). Prints tables; asserts nothing
(docs/architecture.md §9: figures go to the README, never into tests).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import anyio
import httpx
import orjson
import psutil

from allsmi.adapters.recording.decoding import iter_file_lines as iter_lines
from allsmi.domain.parse import parse_rfc3339_ms
from common import peak_rss

ALLSMI: Final = str(Path(sys.executable).with_name("allsmi"))
NODES: Final = 100
SECONDS: Final = int(sys.argv[1]) if len(sys.argv) > 1 else 60
SECTIONS: Final = "gpu,cpu,memory,chassis,process,storage"  # all a mock node exports
CLIENTS: Final = 8
RPS_SECONDS: Final = 10
SUBSCRIBERS: Final = 200
HOLD_SECONDS: Final = 10
PROBE_TIMEOUT_S: Final = 4.0
# Identity numbers: labels of a series, not samples.
ID_KEYS: Final = ("index", "pid", "device_id", "core_id", "socket_id", "id", "link_index")
ID_TEXT: Final = ("host_id", "uuid", "mount_point")
TOP_SKIP: Final = ("schema", "seq", "t", "source", "errors")
REFERENCE: Final = "refs: Prometheus chunks ~4.9 B/sample, WAL ~8.5 B/sample (noisy GPU data)"


# --- processes and ports ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_port_range(count: int) -> int:
    """A base port with ``count`` free ports from it."""
    for base in range(20000, 60000 - count, count):
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise SystemExit("no free port range")


def spawn(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )


def stop(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(timeout=10)


def wait_until(what: str, check: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (httpx.TransportError, OSError):
            pass
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def ok(url: str, headers: dict[str, str] | None = None) -> bool:
    return httpx.get(url, timeout=2.0, trust_env=False, headers=headers).status_code == 200


def cpu_s(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def du(*paths: Path) -> int:
    """Bytes allocated on disk (du's figure) under ``paths``."""
    total = 0
    for path in paths:
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        total += sum(p.stat().st_blocks * 512 for p in files)
    return total


def apparent(*paths: Path) -> int:
    total = 0
    for path in paths:
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        total += sum(p.stat().st_size for p in files)
    return total


# --- samples ----------------------------------------------------------------------------


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def leaves(
    obj: object, name: str, labels: tuple[tuple[str, str], ...]
) -> Iterator[tuple[str, tuple[tuple[str, str], ...], float]]:
    """(series name, labels, value) for every value leaf under ``obj``."""
    if isinstance(obj, dict):
        ids = tuple((k, str(obj[k])) for k in (*ID_TEXT, *ID_KEYS) if k in obj)
        for key, value in obj.items():
            if key not in ID_KEYS and key not in ID_TEXT:
                yield from leaves(value, f"{name}_{key}", labels + ids)
    elif isinstance(obj, list):
        for pos, item in enumerate(obj):
            keyed = isinstance(item, dict) and any(k in item for k in (*ID_TEXT, *ID_KEYS))
            yield from leaves(item, name, labels if keyed else (*labels, ("i", str(pos))))
    elif is_number(obj):
        yield name, labels, float(obj)  # type: ignore[arg-type]


def all_numeric(obj: object) -> int:
    if isinstance(obj, dict):
        return sum(all_numeric(v) for v in obj.values())
    if isinstance(obj, list):
        return sum(all_numeric(v) for v in obj)
    return 1 if is_number(obj) else 0


def recording_frames(path: Path) -> Iterator[dict[str, Any]]:
    for raw in iter_lines(path):
        line = orjson.loads(raw)
        if "t" in line and not line.get("header") and not line.get("index"):
            yield line


def frame_ms(frame: dict[str, Any]) -> int:
    return parse_rfc3339_ms(frame["t"])


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def write_openmetrics_from_recording(path: Path, out: Path) -> tuple[int, int, int]:
    """Our recording's value leaves as OpenMetrics; (samples, all numeric leaves, frames)."""
    series: dict[str, dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    samples = numeric = frames = 0
    for frame in recording_frames(path):
        frames += 1
        t_ms = frame_ms(frame)
        for key, value in frame.items():
            if key in TOP_SKIP:
                continue
            numeric += all_numeric(value)
            for name, labels, number in leaves(value, f"allsmi_{key}", ()):
                series[name][labels].append((t_ms, number))
                samples += 1
    with out.open("w") as fh:
        for name in sorted(series):
            fh.write(f"# TYPE {name} gauge\n")
            for labels, points in series[name].items():
                block = ",".join(f'{k}="{escape(v)}"' for k, v in labels)
                head = f"{name}{{{block}}}" if block else name
                for t_ms, number in points:
                    fh.write(f"{head} {number!r} {t_ms / 1000:.3f}\n")
        fh.write("# EOF\n")
    return samples, numeric, frames


DUMP_LINE: Final = re.compile(r"^\{(.*)\} (\S+) (-?\d+)$")
DUMP_LABEL: Final = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def write_openmetrics_from_dump(data_dir: Path, out: Path) -> int:
    """``promtool tsdb dump`` of Prometheus's data as OpenMetrics; the sample count."""
    dump = subprocess.Popen(
        ["promtool", "tsdb", "dump", str(data_dir)], stdout=subprocess.PIPE, text=True
    )
    assert dump.stdout is not None
    samples = 0
    last_name = None
    with out.open("w") as fh:
        for line in dump.stdout:
            match = DUMP_LINE.match(line.rstrip("\n"))
            if match is None:
                continue
            labels = dict(DUMP_LABEL.findall(match[1]))
            name = labels.pop("__name__")
            if name != last_name:
                fh.write(f"# TYPE {name} unknown\n")
                last_name = name
            block = ",".join(f'{k}="{v}"' for k, v in labels.items())
            value = match[2]
            value = {"+Inf": "+Inf", "-Inf": "-Inf"}.get(value, value)
            fh.write(f"{name}{{{block}}} {value} {int(match[3]) / 1000:.3f}\n")
            samples += 1
        fh.write("# EOF\n")
    if dump.wait() != 0:
        raise SystemExit("promtool tsdb dump failed")
    return samples


def build_block(openmetrics: Path, out_dir: Path) -> tuple[int, int]:
    """Import ``openmetrics`` as TSDB blocks; (bytes of the blocks, bytes of their chunks)."""
    out_dir.mkdir()
    subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(openmetrics), str(out_dir)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    blocks = [p for p in out_dir.iterdir() if p.is_dir()]
    return du(*blocks), du(*(b / "chunks" for b in blocks))


def prom_metric(port: int, name: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5, trust_env=False).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name)] in " {":
            total += float(line.rsplit(" ", 1)[1])
    return total


def prom_query(port: int, query: str) -> list[dict[str, Any]]:
    reply = httpx.get(
        f"http://127.0.0.1:{port}/api/v1/query",
        params={"query": query},
        timeout=5,
        trust_env=False,
    )
    result: list[dict[str, Any]] = reply.json()["data"]["result"]
    return result


# --- 1. side by side ---------------------------------------------------------------------


def side_by_side(tmp: Path) -> dict[str, Any]:
    base = free_port_range(NODES)
    hostfile = tmp / "hosts.txt"
    mock = spawn(
        [ALLSMI, "mock", "--nodes", str(NODES), "--interval", "1", "--base-port", str(base),
         "--hostfile", str(hostfile)],
        tmp / "mock.log",
    )  # fmt: skip
    procs = [mock]
    try:
        wait_until("the mock hostfile", hostfile.exists)
        targets = [
            line.strip()
            for line in hostfile.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ]
        wait_until("every mock node", lambda: all(ok(f"http://{t}/-/ready") for t in targets))

        data = tmp / "prometheus-data"
        data.mkdir()
        config = tmp / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: allsmi-mock\n    honor_labels: true\n"
            "    static_configs:\n      - targets:\n"
            + "".join(f"          - '{t}'\n" for t in targets)
        )
        prom_port = free_port()
        recording = tmp / "cluster.ndjson.zst"
        prom = spawn(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={data}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            tmp / "prometheus.log",
        )  # fmt: skip
        procs.append(prom)
        record = spawn(
            [ALLSMI, "record", "--source", "remote", "--hostfile", str(hostfile), "-i", "1",
             "--include", SECTIONS, "-o", str(recording)],
            tmp / "record.log",
        )  # fmt: skip
        procs.append(record)
        wait_until("prometheus ready", lambda: ok(f"http://127.0.0.1:{prom_port}/-/ready"))
        wait_until("the recording", recording.exists)

        watched = {
            "prometheus": psutil.Process(prom.pid),
            "allsmi record": psutil.Process(record.pid),
            "allsmi mock": psutil.Process(mock.pid),
        }
        before = {name: cpu_s(p) for name, p in watched.items()}
        started = time.monotonic()
        time.sleep(SECONDS)
        wall = time.monotonic() - started
        cpu = {name: cpu_s(p) - before[name] for name, p in watched.items()}
        peak = {name: peak_rss(p.pid) for name, p in watched.items()}
        up = prom_query(prom_port, "sum(up)")
        targets_up = int(float(up[0]["value"][1])) if up else 0
        appended = prom_metric(prom_port, "prometheus_tsdb_head_samples_appended_total")
        series = prom_metric(prom_port, "prometheus_tsdb_head_series")
        failed_scrapes = prom_query(prom_port, "count_over_time(up[1h]) - sum_over_time(up[1h])")
        missed = sum(int(float(r["value"][1])) for r in failed_scrapes)
        total_scrapes = prom_query(prom_port, "sum(count_over_time(up[1h]))")
        scrapes = int(float(total_scrapes[0]["value"][1])) if total_scrapes else 0

        record_rc = stop(record)
        prom_rc = stop(prom)
        stop(mock)
        wal = du(data / "wal") if (data / "wal").exists() else 0
        head = du(data / "chunks_head") if (data / "chunks_head").exists() else 0

        ours_samples, ours_numeric, frames = write_openmetrics_from_recording(
            recording, tmp / "ours.om"
        )
        hosts_per_frame = [
            len({g["host_id"] for g in f.get("memory", [])}) for f in recording_frames(recording)
        ]
        ours_block, ours_chunks = build_block(tmp / "ours.om", tmp / "ours-blocks")
        dumped = write_openmetrics_from_dump(data, tmp / "prom.om")
        prom_block, prom_chunks = build_block(tmp / "prom.om", tmp / "prom-blocks")
        return {
            "wall": wall,
            "cpu": cpu,
            "peak": peak,
            "recording_bytes": du(recording),
            "recording_apparent": apparent(recording),
            "ours_samples": ours_samples,
            "ours_numeric": ours_numeric,
            "frames": frames,
            "hosts_per_frame": hosts_per_frame,
            "appended": appended,
            "series": series,
            "targets_up": targets_up,
            "scrapes": scrapes,
            "missed": missed,
            "wal": wal,
            "head": head,
            "dumped": dumped,
            "prom_block": prom_block,
            "prom_chunks": prom_chunks,
            "ours_block": ours_block,
            "ours_chunks": ours_chunks,
            "record_rc": record_rc,
            "prom_rc": prom_rc,
        }
    finally:
        for proc in reversed(procs):
            stop(proc)


# --- 2. /metrics requests per second, 3. /events subscribers ----------------------------


def start_api(tmp: Path, name: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    api = spawn([ALLSMI, "api", "--port", str(port), "-i", "1"], tmp / f"{name}.log")
    wait_until("allsmi api ready", lambda: ok(f"http://127.0.0.1:{port}/-/ready"))
    return api, port


async def hammer(port: int) -> tuple[int, int, list[float]]:
    done = errors = 0
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=10, trust_env=False
    ) as client:

        async def loop(until: float) -> None:
            nonlocal done, errors
            while time.monotonic() < until:
                started = time.perf_counter()
                try:
                    reply = await client.get("/metrics")
                    await reply.aread()
                    ok = reply.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - started)
                if ok:
                    done += 1
                else:
                    errors += 1

        until = time.monotonic() + RPS_SECONDS
        async with anyio.create_task_group() as tg:
            for _ in range(CLIENTS):
                tg.start_soon(loop, until)
    return done, errors, latencies


def requests_per_second(tmp: Path) -> dict[str, Any]:
    api, port = start_api(tmp, "api-rps")
    try:
        proc = psutil.Process(api.pid)
        body = httpx.get(f"http://127.0.0.1:{port}/metrics", trust_env=False).content
        before, client_before = cpu_s(proc), time.process_time()
        started = time.monotonic()
        done, errors, latencies = anyio.run(hammer, port)
        wall = time.monotonic() - started
        latencies.sort()
        return {
            "rps": done / wall,
            "errors": errors,
            "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": latencies[int(0.99 * (len(latencies) - 1))] * 1000,
            "api_cpu_pct": (cpu_s(proc) - before) / wall * 100,
            "client_cpu_pct": (time.process_time() - client_before) / wall * 100,
            "body_bytes": len(body),
            "peak": peak_rss(api.pid),
        }
    finally:
        stop(api)


async def subscribe(port: int, probe: list[str]) -> tuple[list[int], int]:
    """SUBSCRIBERS streams held HOLD_SECONDS s: the frames each got, and the failures. Half
    way through, one ``/metrics`` request (a scrape) is tried; ``probe`` gets its outcome."""
    received = [0] * SUBSCRIBERS
    failures = 0
    limits = httpx.Limits(max_connections=SUBSCRIBERS + 10, max_keepalive_connections=0)
    timeout = httpx.Timeout(HOLD_SECONDS + 20.0, connect=10.0)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=timeout, trust_env=False
    ) as client:

        async def one(n: int) -> None:
            nonlocal failures
            try:
                async with client.stream("GET", "/events") as reply:
                    async for line in reply.aiter_lines():
                        if line.startswith("event: snapshot"):
                            received[n] += 1
            except httpx.HTTPError:
                failures += 1

        async def scrape() -> None:
            await anyio.sleep(HOLD_SECONDS / 2)
            started = time.perf_counter()
            try:
                async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S, trust_env=False) as other:
                    reply = await other.get(f"http://127.0.0.1:{port}/metrics")
                took = (time.perf_counter() - started) * 1000
                probe.append(f"HTTP {reply.status_code} in {took:.0f} ms")
            except httpx.TimeoutException:
                probe.append(f"no answer within {PROBE_TIMEOUT_S:g} s")

        async with anyio.create_task_group() as tg:
            for n in range(SUBSCRIBERS):
                tg.start_soon(one, n)
            tg.start_soon(scrape)
            await anyio.sleep(HOLD_SECONDS)
            tg.cancel_scope.cancel()
    return received, failures


def subscribers(tmp: Path) -> dict[str, Any]:
    api, port = start_api(tmp, "api-events")
    try:
        proc = psutil.Process(api.pid)
        rss_idle = proc.memory_info().rss
        before = cpu_s(proc)
        started = time.monotonic()
        rss_held: list[int] = []
        probe: list[str] = []

        async def run() -> tuple[list[int], int]:
            async with anyio.create_task_group() as tg:

                async def sample() -> None:
                    while True:
                        await anyio.sleep(1.0)
                        rss_held.append(proc.memory_info().rss)

                tg.start_soon(sample)
                result = await subscribe(port, probe)
                tg.cancel_scope.cancel()
            return result

        received, failures = anyio.run(run)
        wall = time.monotonic() - started
        served = sum(1 for count in received if count >= 1)
        got_next = sum(1 for count in received if count >= 2)
        return {
            "served": served,
            "got_next": got_next,
            "failures": failures,
            # over the subscribers that were served (the others got 503 and no frame at all)
            "frames_median": statistics.median([c for c in received if c] or [0]),
            "rss_idle": rss_idle,
            "rss_held": max(rss_held or [0]),
            "peak": peak_rss(api.pid),
            "api_cpu_pct": (cpu_s(proc) - before) / wall * 100,
            "connections": len(proc.net_connections(kind="tcp")),
            "probe": probe[0] if probe else "not tried",
        }
    finally:
        stop(api)


# --- report --------------------------------------------------------------------------------


def mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def verdict(good: bool) -> str:
    return "met" if good else "NOT met"


def report(side: dict[str, Any], rps: dict[str, Any], subs: dict[str, Any]) -> None:
    wall = side["wall"]
    print(
        f"allsmi exporter vs Prometheus — {NODES}-node mock (8 GPUs, processes, disks each), "
        f"{wall:.0f} s at 1 s, machine: {os.cpu_count()} CPUs (shared)"
    )
    print()
    print(f"  {'process':<16}{'CPU s':>8}{'% core':>9}{'peak RSS':>12}")
    for name in ("prometheus", "allsmi record", "allsmi mock"):
        cpu = side["cpu"][name]
        print(f"  {name:<16}{cpu:>8.1f}{cpu / wall * 100:>8.1f}%{mib(side['peak'][name]):>12}")
    hosts = side["hosts_per_frame"]
    print(
        f"  prometheus: {side['series']:.0f} head series, {side['appended']:.0f} samples "
        f"appended before stop ({side['dumped']} in its TSDB after), targets up "
        f"{side['targets_up']}/{NODES}, "
        f"{side['missed']} of {side['scrapes']} scrapes failed"
    )
    print(
        f"  allsmi record: {side['frames']} frames, {hosts.count(NODES)} with all {NODES} "
        f"hosts, min {min(hosts or [0])}; exit {side['record_rc']}; "
        f"prometheus exit {side['prom_rc']}"
    )
    print()
    ours_bps = side["recording_bytes"] / side["ours_samples"]
    rows = [
        (
            "allsmi recording (zstd)",
            side["recording_bytes"],
            side["ours_samples"],
            f"all numeric leaves: {side['ours_numeric']} → "
            f"{side['recording_bytes'] / side['ours_numeric']:.3f} B; "
            f"apparent {mib(side['recording_apparent'])}",
        ),
        (
            "prometheus WAL + head",
            side["wal"] + side["head"],
            side["dumped"],
            f"wal {mib(side['wal'])}, chunks_head {mib(side['head'])}",
        ),
        (
            "prom block, its samples",
            side["prom_block"],
            side["dumped"],
            f"chunks only {side['prom_chunks'] / max(side['dumped'], 1):.2f} B/sample",
        ),
        (
            "prom block, our samples",
            side["ours_block"],
            side["ours_samples"],
            f"chunks only {side['ours_chunks'] / max(side['ours_samples'], 1):.2f} B/sample",
        ),
    ]
    print(f"  {'bytes on disk':<26}{'bytes':>12}{'samples':>11}{'B/sample':>10}  notes")
    for name, size, samples, note in rows:
        per = size / samples if samples else math.nan
        print(f"  {name:<26}{size:>12}{samples:>11.0f}{per:>10.3f}  {note}")
    print(f"  ({REFERENCE})")
    print()
    print(
        f"  /metrics on allsmi api: {rps['rps']:.0f} req/s with {CLIENTS} keep-alive loops "
        f"for {RPS_SECONDS} s ({rps['errors']} errors), p50 {rps['p50_ms']:.1f} ms, "
        f"p99 {rps['p99_ms']:.1f} ms, body {rps['body_bytes']} B; api CPU "
        f"{rps['api_cpu_pct']:.0f}% core, client CPU {rps['client_cpu_pct']:.0f}% core "
        f"(same machine: client-bound); api CPU per request "
        f"{rps['api_cpu_pct'] * 10 / max(rps['rps'], 1):.2f} ms → ~"
        f"{rps['rps'] * 100 / max(rps['api_cpu_pct'], 1e-9):.0f} req/s per core; "
        f"api peak RSS {mib(rps['peak'])}"
    )
    print(
        f"  /events on allsmi api -i 1: {SUBSCRIBERS} opened, {subs['served']} served, "
        f"{subs['got_next']} got the next frame, {subs['failures']} failed; median "
        f"{subs['frames_median']:.0f} frames each in {HOLD_SECONDS} s; api RSS "
        f"{mib(subs['rss_idle'])} idle → {mib(subs['rss_held'])} holding them, "
        f"CPU {subs['api_cpu_pct']:.1f}% core, {subs['connections']} TCP sockets; "
        f"a /metrics scrape meanwhile: {subs['probe']}"
    )
    print()
    prom_cpu, our_cpu = side["cpu"]["prometheus"], side["cpu"]["allsmi record"]
    prom_rss, our_rss = side["peak"]["prometheus"], side["peak"]["allsmi record"]
    block_bps = side["prom_block"] / side["dumped"]
    ours_block_bps = side["ours_block"] / side["ours_samples"]
    print(f"  {'goal':<52}{'allsmi':>12}{'prometheus':>12}  verdict")
    goals = [
        ("less CPU than Prometheus (s)", our_cpu, prom_cpu, f"{our_cpu:.1f}", f"{prom_cpu:.1f}"),
        ("less memory than Prometheus (peak RSS)", our_rss, prom_rss, mib(our_rss), mib(prom_rss)),
        (
            "fewer B/sample than Prom compacted block (its samples)",
            ours_bps,
            block_bps,
            f"{ours_bps:.3f}",
            f"{block_bps:.3f}",
        ),
        (
            "fewer B/sample than Prom compacted block (our samples)",
            ours_bps,
            ours_block_bps,
            f"{ours_bps:.3f}",
            f"{ours_block_bps:.3f}",
        ),
    ]
    for name, ours, theirs, ours_text, theirs_text in goals:
        print(f"  {name:<52}{ours_text:>12}{theirs_text:>12}  {verdict(ours < theirs)}")


def main() -> None:
    for tool in ("prometheus", "promtool"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed: run scripts/setup-system")
    with tempfile.TemporaryDirectory(prefix="allsmi-bench-exporter-") as name:
        tmp = Path(name)
        side = side_by_side(tmp)
        rps = requests_per_second(tmp)
        subs = subscribers(tmp)
        report(side, rps, subs)


if __name__ == "__main__":
    main()
