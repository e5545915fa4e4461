"""A simulated cluster, used as a person would: ``allsmi mock`` serving 100 nodes (5 of them
failing) on loopback, ``allsmi record --source remote`` scraping it, the recording replayed
in a real terminal, and the live cluster view."""

from __future__ import annotations

import itertools
import random
import re
import signal
import socket
import statistics
import subprocess
from pathlib import Path
from typing import Final

import attrs
import pytest

from allsmi.adapters.recording.source import RecordingSource
from allsmi.domain.model import Frame

from .conftest import poll, run_allsmi, start_allsmi
from .tmux import Tmux

NODES: Final = 100
FAILING: Final = 5
GPUS: Final = 8  # the mock's default per node
ATTEMPTS: Final = 5  # another process may take a port between our check and the mock's bind


def port_range() -> tuple[int, int]:
    """Ports below the kernel's ephemeral range, so no outgoing connection is handed one."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return 10_000, max(low, 10_000 + 2 * NODES)


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_base_port(count: int) -> int:
    """The first of ``count`` consecutive free loopback ports, from a random start."""
    low, high = port_range()
    rng = random.Random()
    for _ in range(500):
        base = rng.randrange(low, high - count)
        if all(port_free(port) for port in range(base, base + count)):
            return base
    pytest.fail(f"no {count} consecutive free ports in {low}..{high}")


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Mock:
    """``allsmi mock`` running ``nodes`` nodes (100 by default, the last ``failing`` of them
    failing); ``hostfile`` is the hostfile it wrote."""

    def __init__(self, tmp: Path, nodes: int = NODES, failing: int = FAILING) -> None:
        self.hostfile = tmp / "hosts"
        self.nodes, self.failures = nodes, failing
        for _ in range(ATTEMPTS):
            self.base = free_base_port(nodes)
            self.proc = start_allsmi(
                "mock",
                "--nodes", str(nodes),
                "--failure-nodes", str(failing),
                "--interval", "1",
                "--base-port", str(self.base),
                "--hostfile", str(self.hostfile),
            )  # fmt: skip
            poll(self._up_or_gone, timeout=60, what="the mock's nodes to listen")
            if self.proc.poll() is None:
                return
            _, err = self.proc.communicate(timeout=10)
            if "already in use" not in err:
                pytest.fail(f"allsmi mock exited {self.proc.returncode}: {err}")
        pytest.fail(f"allsmi mock could not bind its ports in {ATTEMPTS} attempts")

    def _up_or_gone(self) -> bool:
        if self.proc.poll() is not None:
            return True
        last = self.base + self.nodes - 1  # the nodes bind in order: the last one up means all
        return self.hostfile.exists() and answers(last)

    def host(self, index: int) -> str:
        return f"127.0.0.1:{self.base + index}"

    @property
    def failing(self) -> list[str]:
        return [self.host(i) for i in range(self.nodes - self.failures, self.nodes)]

    def stop(self) -> int:
        """SIGTERM, as a service manager would; the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            pytest.fail("allsmi mock did not exit within 20 s of SIGTERM")
        return self.proc.returncode


def tab_row(screen: str) -> str:
    return next((line for line in screen.splitlines() if line.startswith("Tabs: ")), "")


def gpu_hostnames(screen: str) -> set[str]:
    return set(re.findall(r" @ (node-\d{4})", screen))


@attrs.frozen
class Recorded:
    """What one 30 s recording of the mock cluster left behind."""

    path: Path
    hosts: tuple[str, ...]  # the hostfile's, in order
    failing: tuple[str, ...]
    frames: tuple[Frame, ...]
    header_hosts: tuple[str, ...]
    mock_status: int  # after SIGTERM


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    tmp = tmp_path_factory.mktemp("cluster")
    mock = Mock(tmp)
    try:
        out = tmp / "c.ndjson.zst"
        result = run_allsmi(
            "record", "--source", "remote", "--hostfile", str(mock.hostfile),
            "-o", str(out), "-i", "1", "--duration", "30s",
            timeout=90,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        status = mock.stop()
    finally:
        if mock.proc.poll() is None:
            mock.proc.kill()
            mock.proc.communicate(timeout=10)
    with RecordingSource(out) as recording:
        header = recording.header
        assert header is not None
        frames = tuple(recording.frame(i) for i in range(recording.frame_count))
    hosts = tuple(mock.host(i) for i in range(NODES))
    return Recorded(out, hosts, tuple(mock.failing), frames, header.hosts, status)


def test_the_mock_exits_0_on_sigterm_and_the_recording_lists_every_node(
    recorded: Recorded,
) -> None:
    assert recorded.mock_status == 0
    assert recorded.header_hosts == recorded.hosts


def test_the_recorder_keeps_a_1s_cadence_while_5_nodes_fail(recorded: Recorded) -> None:
    frames = recorded.frames
    assert len(frames) >= 28
    gaps = [b.t_ms - a.t_ms for a, b in itertools.pairwise(frames)]
    assert max(gaps) <= 1600, gaps
    assert 950 <= statistics.median(gaps) <= 1050, gaps
    assert not [e for f in frames for e in f.errors if e.startswith("recorder:")]


def test_every_frame_has_each_host_s_rows_xor_an_error_naming_it(recorded: Recorded) -> None:
    complete = 0
    assert len(recorded.frames) >= 10
    for frame in recorded.frames:
        reporting = set(frame.hosts())
        host_errors = [e for e in frame.errors if not e.startswith("recorder:")]
        named = {e.split(": ", 1)[0] for e in host_errors}
        for host in recorded.hosts:
            assert (host in reporting) != (host in named), (frame.seq, host, frame.errors)
        assert len(host_errors) == NODES - len(reporting), frame.errors  # one per missing host
        assert set(recorded.failing) <= named, frame.errors
        assert len(frame.gpus or ()) == GPUS * len(reporting)
        complete += len(reporting) == NODES - FAILING
    frames = len(recorded.frames)
    assert complete >= frames // 2, f"only {complete}/{frames} frames hold all 95 good hosts"


def test_the_replay_shows_the_overview_and_windows_the_tabs(
    recorded: Recorded, sessions: list[Tmux]
) -> None:
    session = Tmux("cluster", ["view", "--replay", str(recorded.path)], width=200, height=50)
    sessions.append(session)
    # The first frame where every good node reported (a node may miss the first cycle).
    k = next(i for i, f in enumerate(recorded.frames) if len(f.hosts()) == NODES - FAILING)
    session.wait_for(lambda s: "REPLAY |" in s and "frame 1/" in s)
    session.send(*["]"] * k)
    screen = session.wait_for(f"frame {k + 1}/")
    assert f"Nodes {NODES - FAILING}/{NODES}" in screen
    assert "GPUs 760" in screen
    assert re.fullmatch(r"Tabs:  \s*All .*>\s*", tab_row(screen)), tab_row(screen)  # more →

    session.send("Right", "Right", "Right")
    screen = session.wait_for(lambda s: gpu_hostnames(s) == {"node-0003"})
    assert tab_row(screen).startswith("Tabs:  ")  # still no "<": the window starts at All

    session.send(*["Right"] * 20)  # tab 23: tabs hidden on both sides
    row = tab_row(session.wait_for(lambda s: gpu_hostnames(s) == {"node-0023"}))
    assert re.fullmatch(r"Tabs: <.*>\s*", row), row
    # The tab is named as its rows are: the hostname the node reports, not its address.
    assert "node-0023" in row.split() and recorded.hosts[22] not in row.split(), row

    session.send(*["Right"] * (NODES - 23))  # the last tab: a failing node
    failing = recorded.failing[-1]
    screen = session.wait_for(f"{failing}: no data")
    # No rows, so no hostname: shown by its id, marked failing.
    assert f"!{failing}" in tab_row(screen).split()

    session.send("q")
    session.wait_for("EXITED rc=0")


def test_the_live_view_of_a_hostfile_shows_the_cluster(
    tmp_path: Path, sessions: list[Tmux]
) -> None:
    mock = Mock(tmp_path)
    session = Tmux("live-cluster", ["view", "--hostfile", str(mock.hostfile)], width=200, height=50)
    sessions.append(session)
    screen = session.wait_for(lambda s: "LIVE 100 hosts" in s and "Nodes 9" in s, timeout=30)
    assert re.search(r"Nodes 9\d/100", screen)
    session.send("q")
    session.wait_for("EXITED rc=0")
    assert mock.stop() == 0
