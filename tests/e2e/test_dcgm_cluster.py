"""A cluster that already runs dcgm-exporter and node_exporter, recorded with nothing
installed on its nodes: ``allsmi mock --flavor dcgm,node`` serves 20 nodes' dcgm-exporter and
node_exporter pages (40 pages, each node on its own loopback address), with a throttle
episode and an XID injected at known times; ``allsmi record --source remote`` records them,
and the recording replays with one tab per node, the GPUs' workloads and health lines, and
the injected incidents as events at their times — checked through the CLI and in a real
terminal (tmux)."""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from allsmi.adapters.recording.source import RecordingSource

from .conftest import frames_in, poll, run_allsmi, start_allsmi, start_loopback_mock
from .tmux import Tmux

NODES = 20
THROTTLE = (3, 2, 4, 4)  # node (from 1), GPU, start s, length s
XID = (5, 1, 6, 79)  # node, GPU, at s, code
RECORD_FRAMES = 12
SLACK_MS = 1500  # an interval, and the time the mock takes to stand up its nodes


@attrs.frozen
class Recorded:
    path: Path
    started_ms: tuple[int, int]  # the mock's start: no earlier than [0], no later than [1]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    tmp = tmp_path_factory.mktemp("dcgm")
    hostfile = tmp / "hosts"
    throttle, xid = (":".join(map(str, spec)) for spec in (THROTTLE, XID))
    incidents = ("--incident", f"throttle:{throttle}", "--incident", f"xid:{xid}")
    before = time.time_ns() // 1_000_000
    mock = start_loopback_mock(
        hostfile, "--flavor", "dcgm,node", "--nodes", str(NODES), "--interval", "1", *incidents
    )
    after = time.time_ns() // 1_000_000
    try:
        path = tmp / "cluster.ndjson.zst"
        recorder = start_allsmi(
            "record", "--source", "remote", "--hostfile", str(hostfile), "--interval", "1",
            "--include", "gpu,cpu,memory,storage", "-o", str(path),
        )  # fmt: skip
        poll(lambda: frames_in(path) >= RECORD_FRAMES, 60, f"{RECORD_FRAMES} frames")
        recorder.send_signal(signal.SIGTERM)
        _, err = recorder.communicate(timeout=30)
        assert recorder.returncode == 0, err
        yield Recorded(path, (before, after))
    finally:
        mock.send_signal(signal.SIGTERM)
        mock.communicate(timeout=20)


def _events(path: Path) -> list[dict[str, object]]:
    result = run_allsmi("events", "--format", "json", str(path))
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def _ms(text: object) -> int:
    from allsmi.domain.parse import parse_rfc3339_ms

    assert isinstance(text, str)
    return parse_rfc3339_ms(text)


def test_each_node_is_one_host_with_gpu_cpu_memory_and_disk_rows(recorded: Recorded) -> None:
    with RecordingSource(recorded.path) as source:
        assert source.header is not None and len(source.header.hosts) == NODES
        last = source.frame(source.frame_count - 1)
    assert len(last.hosts()) == NODES
    assert last.gpus is not None and len(last.gpus) == NODES * 8
    assert last.cpus is not None and len(last.cpus) == NODES
    assert all(cpu.utilization is not None for cpu in last.cpus)  # deltas: from the 2nd scrape
    assert last.memory is not None and len(last.memory) == NODES
    assert last.storage  # node_exporter's filesystems, the local reader's rule
    assert all(g.health is not None and g.health.clock_events is not None for g in last.gpus)
    pods = [g for g in last.gpus if g.detail.get("pod")]
    assert pods and len(pods) < len(last.gpus)  # some GPUs run a pod, some none
    assert all(g.detail.get("namespace") for g in pods)


def test_the_injected_throttle_and_xid_are_events_at_their_times(recorded: Recorded) -> None:
    events = _events(recorded.path)
    earliest, latest = recorded.started_ms
    node, gpu, start_s, length_s = THROTTLE
    host = f"node-{node:04d}"

    def one(kind: str, on: str, gpu_index: int) -> dict[str, object]:
        found = [
            e for e in events if e["kind"] == kind and e["host"] == on and e["gpu"] == gpu_index
        ]
        assert len(found) == 1, (kind, events)
        return found[0]

    throttle = one("throttle", host, gpu)
    assert "HW slowdown" in str(throttle["message"])
    at = _ms(throttle["t"])
    assert earliest + start_s * 1000 <= at <= latest + start_s * 1000 + SLACK_MS
    end = _ms(one("throttle-end", host, gpu)["t"])
    assert end - at == pytest.approx(length_s * 1000, abs=SLACK_MS)
    x_node, x_gpu, x_at, code = XID
    xid = one("xid", f"node-{x_node:04d}", x_gpu)
    assert f"XID {code}" in str(xid["message"])
    assert earliest + x_at * 1000 <= _ms(xid["t"]) <= latest + x_at * 1000 + SLACK_MS
    # nothing else of the kind: the healthy GPUs' transient power cap is no event
    assert {e["kind"] for e in events} <= {"throttle", "throttle-end", "xid"}


def test_the_replay_shows_the_nodes_workloads_and_health_line(
    recorded: Recorded, sessions: list[Tmux]
) -> None:
    session = Tmux("dcgm", ["view", "--replay", str(recorded.path)], width=180, height=60)
    sessions.append(session)
    screen = session.wait_for(lambda s: "REPLAY |" in s and "q:Exit" in s)
    assert f"Nodes {NODES}/{NODES}" in screen
    # the first event: the throttle, on its node's GPU (`n` pressed before the search has
    # read the recording says so and stays: press it again until it lands)
    for _ in range(20):
        session.send("n")
        try:
            session.wait_for(lambda s: "frame 1/" not in s, timeout=1.0)
            break
        except pytest.fail.Exception:
            continue
    node, gpu, _, _ = THROTTLE
    session.send(*["Right"] * node)
    screen = session.wait_for(f"History of node-{node:04d}")
    screen = session.wait_for("health: throttled: HW slowdown, SW thermal")
    lines = screen.splitlines()
    at = next(i for i, line in enumerate(lines) if "health: throttled" in line)
    assert lines[at - 2].startswith(f"GPU {gpu} ")  # under the throttled GPU's two lines
    session.send(*["Left"] * node)
    session.wait_for("History · last")
    session.send("End")  # the workloads close the All tab: node, GPU, namespace/pod, container
    session.wait_for(lambda s: re.search(r"node-\d{4} +\d +[\w.-]+/[\w.-]+ +\S", s) is not None)
