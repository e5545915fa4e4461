"""The TUI driven as a person would: a real terminal (tmux on its own socket), real keys."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.adapters.simulation.simulator import ClusterSpec
from allsmi.app.clock import SimClock
from allsmi.app.demo import SimulatedCluster
from allsmi.app.record import RecordPlan, record_loop
from allsmi.domain.model import Header

from .conftest import assert_one_line_error, run_allsmi
from .tmux import Tmux

T0 = 1_776_513_600_000  # 2026-04-18T12:00:00Z


def write_cluster(path: Path, seconds: int, nodes: int = 3, gpus_per_node: int = 2) -> None:
    source = SimulatedCluster(
        ClusterSpec(nodes=nodes, gpus_per_node=gpus_per_node, cores_per_node=8),
        ("gpu", "cpu", "memory"),
    )
    header = Header(source="remote", interval_ms=1000, hosts=source.hosts())
    sink = RecordingSink(SinkConfig(path=path, codec=Codec.ZSTD), header)
    plan = RecordPlan(1000, seconds * 1000, "remote", source.hosts())
    anyio.run(record_loop, source, sink, SimClock(T0), plan)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tui") / "cluster.ndjson.zst"
    write_cluster(path, 600)
    return path


@pytest.fixture
def tui(request: pytest.FixtureRequest) -> Iterator[list[Tmux]]:
    started: list[Tmux] = []
    yield started
    for session in started:
        session.close()


def replay(tui: list[Tmux], path: Path, *extra: str, width: int = 120, height: int = 40) -> Tmux:
    session = Tmux(
        f"t{len(tui)}", ["view", "--replay", str(path), *extra], width=width, height=height
    )
    tui.append(session)
    # Laid out at the pane's full size (tmux may start the pane small, then resize it).
    session.wait_for(lambda s: "REPLAY |" in s and "q:Exit" in s and "frame " in s)
    return session


def position(screen: str) -> int:
    """The playhead the status bar shows, in seconds (-1 while it is not on screen)."""
    found = re.search(r"REPLAY \| (\d\d):(\d\d):(\d\d) /", screen)
    if not found:
        return -1
    h, m, s = (int(x) for x in found.groups())
    return h * 3600 + m * 60 + s


def test_replay_opens_paused_on_the_first_frame(tui: list[Tmux], cluster: Path) -> None:
    screen = replay(tui, cluster).screen()
    assert "REPLAY | 00:00:00 / 00:09:59 | 1.0x | paused | 2026-04-18 12:00:00 UTC" in screen
    assert "frame 1/600" in screen


def test_space_plays_at_one_x(tui: list[Tmux], cluster: Path) -> None:
    session = replay(tui, cluster)
    started = time.monotonic()
    session.send("Space")
    session.wait_for(lambda s: position(s) >= 3 and "playing" in s)
    assert time.monotonic() - started >= 2.5  # 3 recorded seconds take 3 real ones


def test_plus_and_minus_change_the_speed_and_the_rate(tui: list[Tmux], cluster: Path) -> None:
    session = replay(tui, cluster)
    session.send("+", "+")
    session.wait_for("| 4.0x |")
    started = time.monotonic()
    session.send("Space")
    session.wait_for(lambda s: position(s) >= 16)
    elapsed = time.monotonic() - started
    assert 3.5 <= elapsed < 12  # 16 s at 4x: about 4 s, far less than the 16 s of 1x
    session.send("-", "-", "-")
    session.wait_for("| 0.5x |")


def test_brackets_step_one_frame(tui: list[Tmux], cluster: Path) -> None:
    session = replay(tui, cluster)
    session.send("]")
    session.wait_for("frame 2/600")
    session.send("]", "]")
    session.wait_for("frame 4/600")
    session.send("[")
    assert "00:00:02 /" in session.wait_for("frame 3/600")


def test_g_with_an_offset_seeks_there(tui: list[Tmux], cluster: Path) -> None:
    session = replay(tui, cluster)
    session.send("g")
    session.wait_for("go to:")
    session.send(*"00:00:15", "Enter")
    assert "frame 16/600" in session.wait_for("REPLAY | 00:00:15 /")


def test_g_at_a_wall_clock_time_seeks_there(tui: list[Tmux], cluster: Path) -> None:
    session = replay(tui, cluster)  # the recording starts 12:00:00 UTC; TZ=UTC in tmux
    session.send("g", *"@12:01:40", "Enter")
    assert "2026-04-18 12:01:40 UTC" in session.wait_for("REPLAY | 00:01:40 /")


def test_loop_wraps_to_the_start(tui: list[Tmux], tmp_path: Path) -> None:
    short = tmp_path / "short.ndjson.zst"
    write_cluster(short, 12, nodes=1)
    session = replay(tui, short, "--loop", "--speed", "8")
    assert "| loop |" in session.screen()
    session.send("Space")
    session.wait_for(lambda s: position(s) >= 9)
    session.wait_for(lambda s: 0 <= position(s) <= 3 and "playing" in s)  # wrapped, playing


def test_q_exits_0_and_restores_the_terminal(tui: list[Tmux], cluster: Path) -> None:
    session = replay(tui, cluster)
    session.send("q")
    screen = session.wait_for("EXITED rc=0")
    assert "REPLAY" not in screen  # the alternate screen is gone: the shell is back


def test_sigterm_restores_the_terminal(tui: list[Tmux], cluster: Path) -> None:
    session = replay(tui, cluster)
    os.kill(session.program_pid(), signal.SIGTERM)
    assert "REPLAY" not in session.wait_for("EXITED rc=0")


def test_a_multi_host_recording_shows_one_tab_per_host(tui: list[Tmux], cluster: Path) -> None:
    session = replay(tui, cluster)
    assert re.search(r"All\s+node-01\s+node-02\s+node-03", session.screen())
    session.send("Right", "Right")
    screen = session.wait_for(lambda s: "@ node-01" not in s and "@ node-02" in s)
    assert "@ node-03" not in screen


def test_a_resize_keeps_the_position(tui: list[Tmux], cluster: Path) -> None:
    session = replay(tui, cluster)
    session.send("g", *"00:03:00", "Enter")
    session.wait_for("REPLAY | 00:03:00 /")
    session.resize(90, 25)
    screen = session.wait_for(lambda s: len(s.splitlines()[0]) <= 90 and "00:03:00 /" in s)
    assert "frame 181/600" in screen


def test_start_beyond_the_end_opens_on_the_last_frame(tui: list[Tmux], cluster: Path) -> None:
    assert "frame 600/600" in replay(tui, cluster, "--start", "5:00:00").screen()


def test_live_view_shows_this_machine(tui: list[Tmux]) -> None:
    session = Tmux("live", ["view", "-i", "0.5"])
    tui.append(session)
    screen = session.wait_for(lambda s: "LIVE" in s and "CPU" in s)
    assert "REPLAY" not in screen
    session.send("q")
    session.wait_for("EXITED rc=0")


def test_without_a_terminal_view_exits_2_with_one_line(cluster: Path) -> None:
    line = assert_one_line_error(run_allsmi("view", "--replay", str(cluster)), 2)
    assert "needs a terminal" in line


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--speed", "3"], "use one of 0.25, 0.5, 1, 2, 4, 8"),
        (["--start", "12:xx"], "invalid timecode '12:xx'"),
    ],
)
def test_bad_replay_flags_exit_2(cluster: Path, args: list[str], needle: str) -> None:
    line = assert_one_line_error(run_allsmi("view", "--replay", str(cluster), *args), 2)
    assert needle in line


def test_an_empty_recording_exits_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty.ndjson"
    empty.write_text("")
    session = Tmux("empty", ["view", "--replay", str(empty)])
    try:
        screen = session.wait_for("EXITED rc=2")
        assert f"allsmi view: no frames in {empty}" in screen
    finally:
        session.close()


def live_position(screen: str) -> int:
    found = re.search(r"LIVE \| (\d\d):(\d\d):(\d\d) /", screen)
    if not found:
        return -1
    h, m, s = (int(x) for x in found.groups())
    return h * 3600 + m * 60 + s


def test_follow_shows_live_updating_a_seek_back_replay_and_g_live_again(
    tui: list[Tmux], tmp_path: Path
) -> None:
    from .conftest import start_allsmi

    out = tmp_path / "growing.ndjson.zst"
    recorder = start_allsmi("record", "-o", str(out), "-i", "0.5", "--include", "cpu,memory")
    try:
        from .conftest import poll

        poll(lambda: out.exists() and out.stat().st_size > 0, what="the recording to start")
        session = Tmux(f"f{len(tui)}", ["view", "--replay", str(out), "--follow"])
        tui.append(session)
        first = live_position(session.wait_for(lambda s: live_position(s) >= 0))
        session.wait_for(lambda s: live_position(s) >= first + 2)  # keeps up as frames come
        session.send("j")
        session.wait_for(lambda s: "REPLAY |" in s and "LIVE |" not in s)
        session.send("G")
        session.wait_for(lambda s: live_position(s) >= first + 2)
        session.send("q")
        session.wait_for("EXITED rc=0")
    finally:
        recorder.terminate()
        recorder.communicate(timeout=10)
