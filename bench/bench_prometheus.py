"""Prometheus replay (docs/architecture.md §7.1; README "Measured"): how soon
``view --replay prometheus+http://…`` shows its first frame and answers a seek, what it holds
in memory, and what ``record --from-prometheus`` costs, against a local Prometheus holding
two hours of 100 hosts.

Files, under ``bench/out/prom-100host/`` (gitignored), built once and reused:
- ``data/``: a Prometheus TSDB of 2 hours of 100 hosts × 8 GPUs scraped every 15 s, made by
  ``promtool tsdb create-blocks-from openmetrics``. Each host's series are those of our
  exporter's page (``render_metrics`` over the node simulator's frame, the default sections:
  gpu, cpu, memory, chassis — 193 series a host) labelled as Prometheus labels a scrape of
  target ``127.0.0.1:PORT`` (``instance`` the target, ``job="gpu"``, the page's own
  ``instance`` renamed ``exported_instance``); utilizations, temperatures, power, used
  memory, clocks and fans vary as the rendered value times a slow sine, the rest stay as
  rendered. One ``up`` series a target: 1, and 0 for host 42 for 10 minutes in the middle
  (no samples of its own then), to have an error to see. The two hours end 5 minutes before
  the build (Prometheus runs with ``--storage.tsdb.retention.time=10y`` so it keeps them
  however old they get). 19,400 series, 9.3 M samples: the OpenMetrics text is 1.9 GB
  (deleted once the blocks are made), the blocks 47 MB; the build takes ≈ 35 s on 2 cores
  (the text 7 s, ``promtool`` 27 s) and needs 2 GB of free disk while it runs.
- ``meta.json``: the window and the build's figures (written last: a build cut short is
  redone).
- ``record-2h.ndjson.zst``: what ``record --from-prometheus`` wrote (rewritten each run).

Prometheus runs on ``data/`` on a free loopback port (no scrape targets) for the run and is
stopped at the end whatever happens. Figures, each in a fresh process timed from after its
imports:
- ``first frame``: ``PrometheusSource`` over the window (the plan: series listed, targets),
  ``ReplayDriver.of`` and the first frame structured (``driver.frame()``), then drawn at
  200×60 (``ReplayModel.lines``); target ≤ 1 s;
- ``seek``: ``source.frame(i)`` at a random instant in a run not fetched yet, the fetch of
  the run after it left to finish before the next seek (a seek while idle), 20 a process;
  target ≤ 1 s. ``seek, back-to-back``: the same without waiting, so each waits for the
  previous seek's fetch behind (one request at a time);
- peak RSS (VmHWM) after the first frame and after the seeks, and after every run of the
  window was fetched in order (``walk``: what playing it through holds, the cache bounded);
- the floor of a seek: the same two ``query_range`` requests of one run done raw with
  ``httpx`` + ``orjson.loads`` (the server and the JSON, nothing of ours), next to the
  client's ``PromApi.query_range`` (the same plus RangeSeries) and the conversion to frames
  (``frames_of``), so a seek splits into the server's share and ours;
- ``record --from-prometheus`` of the whole window: wall and CPU seconds, the file's size.

Run: ``.venv/bin/python bench/bench_prometheus.py [--passes N]`` (default 3 passes of the
first frame and the seeks; needs ``prometheus`` and ``promtool`` on PATH). Takes ≈ 7½ minutes
on 2 cores with the TSDB cached, ≈ 8 building it. Asserts nothing
(docs/architecture.md §9: figures go to the README, never into tests).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any, Final

from allsmi import __version__
from common import OUT_DIR, child_cpu_s, child_json, own_peak_rss_mb

FIRST_TARGET_S: Final = 1.0
SEEK_TARGET_S: Final = 1.0
HOSTS: Final = 100
GPUS: Final = 8
BASE_PORT: Final = 10001  # host i is the target 127.0.0.1:BASE_PORT+i (nothing listens)
STEP_S: Final = 15
SPAN_S: Final = 2 * 3600
END_BEFORE_NOW_S: Final = 300
DOWN_HOST: Final = 42
DOWN_S: Final = 600
PERIOD_S: Final = 1800  # of the slow sine
PHASES: Final = 16
SEEKS: Final = 20
BACK_TO_BACK: Final = 5
FLOOR_ROUNDS: Final = 5
HOME: Final = OUT_DIR / "prom-100host"
DATA: Final = HOME / "data"
META: Final = HOME / "meta.json"
RECORDING: Final = HOME / "record-2h.ndjson.zst"
# Families whose value moves over time; the rest (totals, limits, info, counts) stay.
VARYING: Final = ("utilization", "used_bytes", "consumption", "frequency", "fan_speed", "power_w")


# ----------------------------------------------------------------------------- the TSDB


def _varies(name: str) -> bool:
    if name.endswith("temperature_celsius"):
        return "threshold" not in name
    return any(word in name for word in VARYING)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def write_openmetrics(path: Path, start_s: int) -> dict[str, int]:
    """The OpenMetrics text of the window (module header): every family's samples
    contiguous, each series' in time order. Returns series and sample counts."""
    from allsmi.adapters.prometheus.exposition import plain_samples
    from allsmi.adapters.prometheus.writer import render_metrics
    from allsmi.adapters.simulation.simulator import ClusterSimulator, ClusterSpec
    from allsmi.domain.model import DEFAULT_SECTIONS
    from allsmi.domain.sections import build_frame

    sim = ClusterSimulator(ClusterSpec(nodes=HOSTS, gpus_per_node=GPUS, base_port=BASE_PORT))
    families: dict[str, list[tuple[int, str, float]]] = {}
    for index in range(HOSTS):
        reading = sim.node_frame_parts(index, start_s * 1000)
        assert reading is not None
        frame = build_frame(start_s * 1000, reading.rows(), include=DEFAULT_SECTIONS)
        target = f"127.0.0.1:{BASE_PORT + index}"
        for name, labels, value in plain_samples(render_metrics(frame, version=__version__)):
            if "instance" in labels:
                labels["exported_instance"] = labels.pop("instance")
            labels |= {"instance": target, "job": "gpu"}
            block = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            families.setdefault(name, []).append((index, f"{name}{{{block}}} ", float(value)))
    families["up"] = [
        (i, f'up{{instance="127.0.0.1:{BASE_PORT + i}",job="gpu"}} ', 1.0) for i in range(HOSTS)
    ]
    count = SPAN_S // STEP_S + 1
    stamps = [f" {start_s + k * STEP_S}\n" for k in range(count)]
    down_from = (count - DOWN_S // STEP_S) // 2
    down = range(down_from, down_from + DOWN_S // STEP_S)
    up_at = [k for k in range(count) if k not in down]
    factors = [
        [
            0.8 + 0.2 * math.sin(2 * math.pi * (k * STEP_S / PERIOD_S + p / PHASES))
            for k in range(count)
        ]
        for p in range(PHASES)
    ]
    series = samples = 0
    with path.open("w", buffering=16 * 1024 * 1024) as out:
        for name, members in families.items():
            out.write(f"# TYPE {name} gauge\n")
            moves = _varies(name)
            for n, (index, prefix, value) in enumerate(members):
                series += 1
                if name == "up":
                    at = range(count)
                    text = "".join(
                        f"{prefix}{0 if index == DOWN_HOST and k in down else 1}{stamps[k]}"
                        for k in at
                    )
                else:
                    at = up_at if index == DOWN_HOST else range(count)  # type: ignore[assignment]
                    if moves:
                        row = factors[(index * 7 + n) % PHASES]
                        text = "".join(f"{prefix}{value * row[k]:.6g}{stamps[k]}" for k in at)
                    else:
                        fixed = f"{value:.6g}" if value != int(value) else str(int(value))
                        text = "".join(f"{prefix}{fixed}{stamps[k]}" for k in at)
                samples += len(at)
                out.write(text)
        out.write("# EOF\n")
    return {"series": series, "samples": samples}


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def build() -> dict[str, Any]:
    """``meta.json``'s figures; the TSDB is built first when there is none (module header)."""
    if META.exists() and DATA.is_dir():
        meta: dict[str, Any] = json.loads(META.read_text())
        return meta
    shutil.rmtree(HOME, ignore_errors=True)
    HOME.mkdir(parents=True)
    end_s = (int(time.time()) - END_BEFORE_NOW_S) // STEP_S * STEP_S
    start_s = end_s - SPAN_S
    text = HOME / "series.om"
    print(f"building {DATA} (once) …", flush=True)
    began = time.perf_counter()
    try:
        counts = write_openmetrics(text, start_s)
        written = time.perf_counter()
        text_bytes = text.stat().st_size
        with (HOME / "promtool.log").open("wb") as log:
            subprocess.run(
                ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(text), str(DATA)],
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
            )
    finally:
        text.unlink(missing_ok=True)
    done = time.perf_counter()
    meta = {
        "start_ms": start_s * 1000,
        "end_ms": end_s * 1000,
        **counts,
        "text_bytes": text_bytes,
        "tsdb_bytes": tree_bytes(DATA),
        "text_s": written - began,
        "promtool_s": done - written,
    }
    META.write_text(json.dumps(meta))
    return meta


# ----------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def prometheus() -> Iterator[str]:
    """Prometheus on ``data/`` (no scrape targets); yields its URL once ready, stops it
    (SIGTERM, killed if it lingers) whatever happens."""
    import httpx

    port = free_port()
    config = HOME / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 15s\nscrape_configs: []\n")
    log_path = HOME / "prometheus.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={DATA}",
                "--storage.tsdb.retention.time=10y",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"prometheus exited ({proc.returncode}); see {log_path}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"prometheus not ready within 120 s; see {log_path}")
            time.sleep(0.1)
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# ----------------------------------------------------------------------------- children


def _window(url: str, start_ms: int, end_ms: int, now_ms: int) -> Any:
    from allsmi.app.from_prometheus import window_of
    from allsmi.domain.parse import format_rfc3339_ms
    from allsmi.domain.sections import REMOTE_SECTIONS

    return window_of(
        "prometheus+" + url,
        format_rfc3339_ms(start_ms),
        format_rfc3339_ms(end_ms),
        None,
        None,
        REMOTE_SECTIONS,
        now_ms,
    )


def measure_view(url: str, start_ms: int, end_ms: int, seed: int) -> dict[str, Any]:
    """First frame, then the seeks (module header), in this fresh process."""
    from allsmi.app.prom_replay import PrometheusSource
    from allsmi.app.replay_driver import ReplayDriver
    from allsmi.app.tui import ReplayModel

    began = time.perf_counter()
    now = int(time.time() * 1000)
    source = PrometheusSource(_window(url, start_ms, end_ms, now), None, now)
    planned = time.perf_counter()
    driver = ReplayDriver.of(source)
    frame = driver.frame()
    first = time.perf_counter()
    ReplayModel(driver=driver, tz=UTC).lines(200, 60)
    drawn = time.perf_counter()
    rss_first = own_peak_rss_mb()
    per = source.history.per_query
    runs = -(-source.frame_count // per)
    touched = {0, 1}

    def settle(fetches: int) -> None:
        deadline = time.monotonic() + 60
        while source.fetches < fetches and time.monotonic() < deadline:
            time.sleep(0.002)

    def pick(rng: random.Random) -> tuple[int, int] | None:
        free = [r for r in range(runs) if r not in touched and r + 1 not in touched]
        if not free:
            return None
        run = rng.choice(free)
        touched.update((run, run + 1))
        return run, run * per + rng.randrange(min(per, source.frame_count - run * per))

    settle(min(2, runs))
    rng = random.Random(seed)
    idle: list[float] = []
    for _ in range(SEEKS):
        picked = pick(rng)
        if picked is None:
            break
        run, index = picked
        expected = source.fetches + (2 if run + 1 < runs else 1)
        start = time.perf_counter()
        source.frame(index)
        idle.append(time.perf_counter() - start)
        settle(expected)
    rss_seeks = own_peak_rss_mb()
    busy: list[float] = []
    for _ in range(BACK_TO_BACK):
        picked = pick(rng)
        if picked is None:
            break
        start = time.perf_counter()
        source.frame(picked[1])
        busy.append(time.perf_counter() - start)
    source.close()
    return {
        "plan_s": planned - began,
        "first_s": first - began,
        "drawn_s": drawn - began,
        "gpus": len(frame.gpus or ()),
        "hosts": len(source.history.hosts),
        "series": source.history.series,
        "frames": source.frame_count,
        "per_query": per,
        "seeks_s": idle,
        "busy_s": busy,
        "rss_first_mb": rss_first,
        "rss_seeks_mb": rss_seeks,
    }


def measure_walk(url: str, start_ms: int, end_ms: int) -> dict[str, Any]:
    """Every run of the window in order, as playing it through fetches them: the memory a
    whole window costs with the cache's bound."""
    from allsmi.app.prom_replay import PrometheusSource

    now = int(time.time() * 1000)
    began = time.perf_counter()
    source = PrometheusSource(_window(url, start_ms, end_ms, now), None, now)
    per = source.history.per_query
    for index in range(0, source.frame_count, per):
        source.frame(index)
    seconds = time.perf_counter() - began
    runs = source.fetches
    source.close()
    return {"s": seconds, "runs": runs, "rss_mb": own_peak_rss_mb()}


def measure_floor(url: str, start_ms: int, end_ms: int) -> dict[str, Any]:
    """One run in the middle of the window: raw HTTP + orjson, the client, the conversion."""
    import anyio
    import httpx
    import orjson

    from allsmi.adapters.network.scrape import HOST_LIMITS
    from allsmi.adapters.prometheus.history import frames_of
    from allsmi.app.from_prometheus import api_for, plan
    from allsmi.app.prom_replay import VIEW_POINTS_PER_QUERY

    now = int(time.time() * 1000)
    window = _window(url, start_ms, end_ms, now)

    async def go() -> dict[str, Any]:
        api = api_for(window.base, None)
        history = await plan(api, window, VIEW_POINTS_PER_QUERY)
        per = history.per_query
        run = len(history.grid) // per // 2
        instants = history.grid[run * per : (run + 1) * per]
        first, last, step = instants[0], instants[-1], history.step_ms
        raw, client, convert, answer = [], [], [], 0
        with httpx.Client(base_url=url) as http:
            http.get("/-/ready")  # the connection made before the clock starts
            for _ in range(FLOOR_ROUNDS):
                start = time.perf_counter()
                answer = 0
                for query in (history.ours, history.up):
                    params = {
                        "query": query,
                        "start": f"{first / 1000:.3f}",
                        "end": f"{last / 1000:.3f}",
                        "step": f"{step / 1000:.3f}",
                    }
                    reply = http.get("/api/v1/query_range", params=params)
                    answer += len(reply.content)
                    orjson.loads(reply.content)
                raw.append(time.perf_counter() - start)
        for _ in range(FLOOR_ROUNDS):
            start = time.perf_counter()
            series = await api.query_range(history.ours, first, last, step)
            ups = await api.query_range(history.up, first, last, step)
            fetched = time.perf_counter()
            frames = list(
                frames_of(
                    series, ups, instants, history.hosts, history.include, HOST_LIMITS,
                    history.added,
                )
            )  # fmt: skip
            convert.append(time.perf_counter() - fetched)
            client.append(fetched - start)
        await api.aclose()
        return {
            "raw_s": raw,
            "client_s": client,
            "convert_s": convert,
            "answer_bytes": answer,
            "instants": len(instants),
            "frames": len(frames),
        }

    return anyio.run(go)


def measure_record(url: str, start_ms: int, end_ms: int) -> dict[str, Any]:
    from allsmi.domain.parse import format_rfc3339_ms

    RECORDING.unlink(missing_ok=True)
    argv = [
        sys.executable, "-m", "allsmi", "record", "--from-prometheus", url,
        "--from", format_rfc3339_ms(start_ms), "--to", format_rfc3339_ms(end_ms),
        "-o", str(RECORDING),
    ]  # fmt: skip
    log = HOME / "record.log"
    cpu, wall, rc = child_cpu_s(argv, log)
    said = log.read_text(errors="replace").strip().splitlines()
    return {
        "rc": rc,
        "wall_s": wall,
        "cpu_s": cpu,
        "bytes": RECORDING.stat().st_size if RECORDING.exists() else 0,
        "said": said[-1] if said else "",
    }


# ----------------------------------------------------------------------------- the report


def verdict(seconds: float, target: float) -> str:
    return "met" if seconds <= target else "MISSED"


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["--view"]:
        print(json.dumps(measure_view(argv[1], int(argv[2]), int(argv[3]), int(argv[4]))))
        return
    if argv[:1] == ["--walk"]:
        print(json.dumps(measure_walk(argv[1], int(argv[2]), int(argv[3]))))
        return
    if argv[:1] == ["--floor"]:
        print(json.dumps(measure_floor(argv[1], int(argv[2]), int(argv[3]))))
        return
    passes = int(argv[argv.index("--passes") + 1]) if "--passes" in argv else 3
    print(
        f"# {platform.machine()}, {os.cpu_count()} logical CPUs, Python "
        f"{platform.python_version()}, allsmi {__version__}; {passes} passes"
    )
    meta = build()
    span = (meta["start_ms"], meta["end_ms"])
    window = [str(span[0]), str(span[1])]
    with prometheus() as url:
        views = [child_json(__file__, "--view", url, *window, str(p)) for p in range(passes)]
        floor = child_json(__file__, "--floor", url, *window)
        walk = child_json(__file__, "--walk", url, *window)
        record = measure_record(url, *span)
    tsdb_now = tree_bytes(DATA)

    first = [v["first_s"] for v in views]
    drawn = [v["drawn_s"] for v in views]
    seeks = [s for v in views for s in v["seeks_s"]]
    busy = [s for v in views for s in v["busy_s"]]
    v0 = views[0]
    ms = 1000.0
    print(
        f"\n## {HOSTS} hosts × {GPUS} GPUs, 2 h at {STEP_S} s: {meta['series']:,} series, "
        f"{meta['samples'] / 1e6:.2f} M samples; OpenMetrics text {meta['text_bytes'] / 1e9:.2f}"
        f" GB (deleted), TSDB {meta['tsdb_bytes'] / 1e6:.1f} MB as built "
        f"({tsdb_now / 1e6:.1f} MB now); build {meta['text_s']:.0f} s text + "
        f"{meta['promtool_s']:.0f} s promtool"
    )
    print(
        f"replay plan: {v0['hosts']} hosts, {v0['series']:,} series, {v0['frames']} frames, "
        f"{v0['per_query']} frames a run (2 query_range a run); first frame "
        f"{v0['gpus']} GPUs"
    )
    med = statistics.median
    print(
        f"first frame (plan + driver + frame)  ms   min {min(first) * ms:.0f}  median "
        f"{med(first) * ms:.0f}   (plan alone {med(v['plan_s'] for v in views) * ms:.0f}; "
        f"drawn 200×60 {med(drawn) * ms:.0f})   target ≤ {FIRST_TARGET_S:g} s  "
        f"{verdict(med(first), FIRST_TARGET_S)}"
    )
    print(
        f"seek to a run not fetched ({len(seeks)})  ms   min {min(seeks) * ms:.0f}  median "
        f"{med(seeks) * ms:.0f}  max {max(seeks) * ms:.0f}   target ≤ {SEEK_TARGET_S:g} s  "
        f"{verdict(med(seeks), SEEK_TARGET_S)}"
    )
    if busy:
        print(
            f"seek, back-to-back ({len(busy)})  ms   min {min(busy) * ms:.0f}  median "
            f"{med(busy) * ms:.0f}  max {max(busy) * ms:.0f}   (waits for the fetch behind)"
        )
    raw, client, convert = (med(floor[k]) * ms for k in ("raw_s", "client_s", "convert_s"))
    print(
        f"one run ({floor['instants']} frames, answers {floor['answer_bytes'] / 1e6:.1f} MB)  ms"
        f"   floor: httpx + orjson {raw:.0f}   PromApi.query_range ×2 {client:.0f}   "
        f"frames_of {convert:.0f}   (median of {FLOOR_ROUNDS}; ours = "
        f"{(client + convert) / raw:.1f}× the floor)"
    )
    print(
        f"peak RSS (VmHWM)  MB   after first frame {max(v['rss_first_mb'] for v in views):.0f}"
        f"   after {SEEKS} seeks {max(v['rss_seeks_mb'] for v in views):.0f}   after the whole "
        f"window played ({walk['runs']} runs, {walk['s']:.0f} s) {walk['rss_mb']:.0f}"
    )
    print(
        f"record --from-prometheus, whole 2 h  rc {record['rc']}  wall {record['wall_s']:.1f} s"
        f"  CPU {record['cpu_s']:.1f} s  file {record['bytes'] / 1e6:.1f} MB  "
        f"({record['said']})"
    )
    print(f"(this process's peak RSS {own_peak_rss_mb():.0f} MB)")


if __name__ == "__main__":
    main()
