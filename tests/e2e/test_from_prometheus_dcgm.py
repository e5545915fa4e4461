"""``allsmi record --from-prometheus`` of a cluster that runs dcgm-exporter and node_exporter:
a real Prometheus scrapes ``allsmi mock --flavor dcgm,node`` (3 nodes, a throttle and an XID
injected) every second while a real recorder scrapes the same pages; the window read back
from Prometheus holds the same 3 hosts (each node's two exporters one host), their GPU rows
with health — the throttle while it lasted, the XID — and their CPU, memory and disk rows,
with the same readings as the recorder's within a step, verifies clean, and has the injected
incidents as events; the replay's lazy source shows a run's first frame with its CPU
utilization (the lead instant)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from allsmi.adapters.recording.source import RecordingSource
from allsmi.app.from_prometheus import window_of
from allsmi.app.prom_replay import PrometheusSource
from allsmi.domain.model import Frame, Gpu
from allsmi.domain.parse import format_rfc3339_ms

from .conftest import free_port, poll, run_allsmi, start_allsmi
from .test_exporter import prom_query, prometheus

NODES = 3
THROTTLE = (2, 1, 14, 5)  # node (from 1), GPU, start s, length s: after Prometheus and us
XID = (3, 2, 17, 79)  # node, GPU, at s, code
INCLUDE = "gpu,cpu,memory,storage"
RECORD_FRAMES = 20
NEAR_MS = 2000  # the mock's values hold a second; the two scrapers' phases differ by < 1 s


def frames(path: Path) -> list[Frame]:
    with RecordingSource(path) as source:
        return [source.frame(i) for i in range(source.frame_count)]


def frame_count(path: Path) -> int:
    try:
        with RecordingSource(path) as source:
            return source.frame_count
    except Exception:  # not written yet
        return 0


def gpu_readings(frame: Frame, host: str) -> set[tuple[object, ...]]:
    return {
        (g.uuid, g.utilization, g.temperature, g.used_memory, g.power_consumption, clocks(g))
        for g in frame.gpus or ()
        if g.host_id == host
    }


def clocks(gpu: Gpu) -> tuple[str, ...] | None:
    return gpu.health.clock_events if gpu.health else None


def throttled(frame: Frame) -> bool:
    node, gpu, _, _ = THROTTLE
    return any(
        g.hostname == f"node-{node:04d}"
        and g.detail.get("index") == str(gpu)
        and g.health is not None
        and "hw_slowdown" in (g.health.clock_events or ())
        for g in frame.gpus or ()
    )


def test_a_dcgm_and_node_exporter_cluster_read_back_from_prometheus_is_the_one_recorded(
    tmp_path: Path,
) -> None:
    base = free_port()
    # the mock's addresses (--flavor dcgm,node: node i on 127.0.0.(2+i), dcgm-exporter's page
    # at the base port, node_exporter's at the next), known before it starts: Prometheus is up
    # and scraping before the incidents' times come
    gpu_targets = [f"127.0.0.{2 + i}:{base}" for i in range(NODES)]
    targets = [t for i in range(NODES) for t in (gpu_targets[i], f"127.0.0.{2 + i}:{base + 1}")]
    hostfile = tmp_path / "hosts"
    throttle, xid = (":".join(map(str, spec)) for spec in (THROTTLE, XID))
    direct_path, out = tmp_path / "direct.ndjson.zst", tmp_path / "prom.ndjson.zst"
    with prometheus(tmp_path, targets, honor_labels=False) as port:
        mock = start_allsmi(
            "mock", "--flavor", "dcgm,node", "--nodes", str(NODES), "--interval", "1",
            "--base-port", str(base), "--hostfile", str(hostfile),
            "--incident", f"throttle:{throttle}", "--incident", f"xid:{xid}",
        )  # fmt: skip
        try:
            poll(lambda: hostfile.exists() or mock.poll() is not None, 60, "the mock to listen")
            assert mock.poll() is None, mock.communicate(timeout=10)[1]
            assert hostfile.read_text().splitlines()[1:] == targets

            def scraped(target: str) -> int:
                found = prom_query(port, f'sum_over_time(up{{instance="{target}"}}[5m])')
                return int(float(found[0]["value"][1])) if found else 0

            # Prometheus takes its targets up a few seconds after it is ready: the recorder's
            # window begins once it has scraped every target alive
            poll(lambda: all(scraped(t) for t in targets), 60, "Prometheus's first scrapes")
            direct = start_allsmi(
                "record", "--source", "remote", "--hostfile", str(hostfile), "-i", "1",
                "--include", INCLUDE, "-o", str(direct_path),
            )  # fmt: skip
            poll(lambda: frame_count(direct_path) >= RECORD_FRAMES, 90, "20 s recorded")
            direct.send_signal(signal.SIGTERM)
            _, err = direct.communicate(timeout=30)
            assert direct.returncode == 0, err
        finally:
            mock.send_signal(signal.SIGTERM)
            mock.communicate(timeout=20)
        seen = frames(direct_path)
        start, end = seen[0].t_ms, seen[-1].t_ms
        url = f"prometheus+http://127.0.0.1:{port}"
        span = ("--from", format_rfc3339_ms(start), "--to", format_rfc3339_ms(end))
        result = run_allsmi(
            "record", "--from-prometheus", url, *span, "--include", INCLUDE, "-o", str(out)
        )
        assert result.returncode == 0, result.stderr
        a_runs_first_frame_has_its_rates(url, start, end)
    assert "reading 6 host(s)" in result.stderr and "every 1 s" in result.stderr
    verified = run_allsmi("verify", str(out))
    assert verified.returncode == 0, verified.stdout + verified.stderr

    with RecordingSource(out) as source:
        assert source.header is not None and source.header.hosts == tuple(gpu_targets)
    replayed = frames(out)
    assert len(replayed) >= (end - start) // 1000 - 2
    for frame in replayed[2:]:  # Prometheus's first sample may be of a scrape before ours
        assert frame.hosts() == tuple(gpu_targets)  # one host per node: its exporters paired
        assert frame.gpus is not None and len(frame.gpus) == NODES * 8
        assert all(g.health is not None for g in frame.gpus)
        assert frame.cpus is not None and {c.host_id for c in frame.cpus} == set(gpu_targets)
        assert frame.memory is not None and len(frame.memory) == NODES and frame.storage
        near = [d for d in seen if abs(d.t_ms - frame.t_ms) <= NEAR_MS]
        for host in gpu_targets:
            # every GPU's readings, health included, are those the recorder saw within a step
            mine = gpu_readings(frame, host)
            assert any(mine == gpu_readings(d, host) for d in near), (frame.t_ms, host)
    # CPU utilization from counter differences: from the window's first frame on (the lead)
    with_cpu = [f for f in replayed if f.cpus and all(c.utilization is not None for c in f.cpus)]
    assert len(with_cpu) >= len(replayed) - 2
    threads = {(c.host_id, c.total_threads) for f in seen for c in f.cpus or ()}
    assert {(c.host_id, c.total_threads) for f in replayed for c in f.cpus or ()} == threads
    # the throttle, while it lasted, as the recorder saw it (a step either side)
    ours = [f.t_ms for f in replayed if throttled(f)]
    theirs = [f.t_ms for f in seen if throttled(f)]
    assert ours and theirs
    assert abs(ours[0] - theirs[0]) <= NEAR_MS and abs(ours[-1] - theirs[-1]) <= NEAR_MS
    # the incidents are events of the recording, as of the recorder's
    events = run_allsmi("events", "--format", "json", str(out))
    assert events.returncode == 0, events.stderr
    found = [json.loads(line) for line in events.stdout.splitlines()]
    kinds = {(e["kind"], e["host"], e["gpu"]) for e in found}
    node, gpu, _, _ = THROTTLE
    x_node, x_gpu, _, code = XID
    assert ("throttle", f"node-{node:04d}", gpu) in kinds
    assert ("throttle-end", f"node-{node:04d}", gpu) in kinds
    assert ("xid", f"node-{x_node:04d}", x_gpu) in kinds
    assert f"XID {code}" in events.stdout


def a_runs_first_frame_has_its_rates(url: str, start: int, end: int) -> None:
    """The replay's source over the window, a few instants a run: a seek to a later run's
    first frame shows CPU utilization (its lead instant was fetched with it)."""
    now = int(time.time() * 1000)
    window = window_of(url, format_rfc3339_ms(start), format_rfc3339_ms(end), None, None,
                       ("gpu", "cpu", "memory", "storage"), now)  # fmt: skip
    with PrometheusSource(window, None, now) as source:
        series = source.history.series
    # six points a series a query: five instants and the lead one
    with PrometheusSource(window, None, now, points_per_query=6 * series) as source:
        per = source.history.per_query
        assert per == 5 and source.frame_count > 3 * per  # several runs
        later = 2 * per  # the first frame of the third run, asked first
        shown = source.frame(later)
        assert shown.cpus is not None and len(shown.cpus) == NODES
        assert all(c.utilization is not None for c in shown.cpus)
        assert shown.gpus is not None and len(shown.gpus) == NODES * 8
        again = source.frame(later + 1)  # playing on from there
        assert again.cpus is not None and all(c.utilization is not None for c in again.cpus)
