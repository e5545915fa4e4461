"""What a first-time operator tripped over in the TUI, each driven as a person would: a real
terminal (tmux on its own socket), real keys, the installed command."""

from __future__ import annotations

import gzip
import re
import signal
from pathlib import Path

import pytest

from allsmi.adapters import wire
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.domain.model import Frame, Gpu, Header, Memory

from .conftest import poll, start_allsmi
from .test_tui import position, replay, write_cluster
from .tmux import Tmux

T0 = 1_776_513_600_000  # 2026-04-18T12:00:00Z
FIRST = T0 + 4 * 3_600_000 + 21 * 60_000 + 7_002  # 16:21:07.002 UTC: a few ms past the second
JITTER = (0, 3, 1, 7, 2, 0, 9, 4)


@pytest.fixture
def tui(sessions: list[Tmux]) -> list[Tmux]:
    """The sessions a test starts (closed afterwards by the conftest fixture)."""
    return sessions


def gpu(host: str, index: int) -> Gpu:
    return Gpu(f"GPU-{host}-{index}", "NVIDIA H200", "GPU", host, host, host, used_memory=index)


def write(path: Path, frames: list[Frame], hosts: tuple[str, ...] = ()) -> Path:
    header = Header(source="remote" if hosts else "local", interval_ms=1000, hosts=hosts)
    sink = RecordingSink(SinkConfig(path=path, codec=Codec.ZSTD), header)
    for seq, frame in enumerate(frames):
        sink.append(wire.encode_line(frame), seq, frame.t_ms)
    sink.close()
    return path


@pytest.fixture(scope="module")
def jittered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two minutes of one 8-GPU host, stamped as real recorders stamp: a few ms late."""
    frames = [
        Frame(
            t_ms=FIRST + i * 1000 + JITTER[i % 8], seq=i, gpus=tuple(gpu("h", g) for g in range(8))
        )
        for i in range(120)
    ]
    return write(tmp_path_factory.mktemp("first") / "jittered.ndjson.zst", frames)


def go_to(session: Tmux, timecode: str) -> None:
    session.send("g", *timecode, "Enter")


def test_go_to_a_second_shows_the_frame_of_that_second_and_steps_read_on(
    tui: list[Tmux], jittered: Path
) -> None:
    session = replay(tui, jittered)
    go_to(session, "00:00:25")
    assert "frame 26/120" in session.wait_for("REPLAY | 00:00:25 /")
    session.send("]")
    assert "frame 27/120" in session.wait_for("REPLAY | 00:00:26 /")  # not 00:00:25 again
    go_to(session, "@16:21:32")  # frame 26 was recorded at 16:21:32.00x
    screen = session.wait_for("frame 26/120")
    assert "REPLAY | 00:00:25 /" in screen and "16:21:32 UTC" in screen


def test_eighty_by_twenty_four_keeps_the_status_and_six_gpus(
    tui: list[Tmux], jittered: Path
) -> None:
    session = replay(tui, jittered, width=80, height=24)
    screen = session.wait_for(lambda s: "REPLAY |" in s and "1/120" in s)
    status = next(line for line in screen.splitlines() if line.startswith("REPLAY |"))
    assert re.fullmatch(
        r"REPLAY \| 00:00:00 / 00:01:59 \| 1\.0x \| paused \| 16:21:07 UTC \| frame 1/120\s*",
        status,
    )
    assert sum(1 for line in screen.splitlines() if line.startswith("GPU")) >= 6


def test_a_cluster_host_tab_at_eighty_by_twenty_four_shows_six_gpus(
    tui: list[Tmux], tmp_path: Path
) -> None:
    path = tmp_path / "eight.ndjson.zst"
    write_cluster(path, 5, nodes=3, gpus_per_node=8)
    session = replay(tui, path, width=80, height=24)
    session.send("Right")
    screen = session.wait_for(lambda s: "@ node-01" in s and "@ node-02" not in s)
    assert sum(1 for line in screen.splitlines() if line.startswith("GPU")) >= 6
    assert "Nodes 3/3" in screen  # the overview still fits: the budget folds it only later


def test_one_space_on_the_last_frame_restarts_from_the_first(
    tui: list[Tmux], jittered: Path
) -> None:
    session = replay(tui, jittered, "--start", "5:00:00")
    session.wait_for("frame 120/120")
    session.send("Space")
    session.wait_for(lambda s: "playing" in s and 0 <= position(s) <= 3)


def test_the_footer_says_pause_while_playing_and_speed_ends_are_named(
    tui: list[Tmux], jittered: Path
) -> None:
    session = replay(tui, jittered)
    assert "SPACE:Play " in session.screen()
    session.send("Space")
    session.wait_for(lambda s: "playing" in s and "SPACE:Pause " in s)
    session.send("Space", *"++++")
    session.wait_for("8.0x")
    session.send("+")
    session.wait_for(lambda s: "fastest speed" in s and "8.0x" in s)
    session.send(*"------")
    session.wait_for(lambda s: "slowest speed" in s and "0.25x" in s)


def test_question_mark_opens_help_like_h(tui: list[Tmux], jittered: Path) -> None:
    session = replay(tui, jittered)
    session.send("?")
    session.wait_for("show / hide this help")
    session.send("?")
    session.wait_for(lambda s: "show / hide this help" not in s and "GPU" in s)


def test_a_failing_hosts_tab_is_marked(tui: list[Tmux], tmp_path: Path) -> None:
    hosts = ("10.0.0.1:9090", "10.0.0.2:9090")
    frames = [
        Frame(
            t_ms=T0 + i * 1000,
            seq=i,
            gpus=(gpu(hosts[0], 0),),
            memory=(Memory(hosts[0], hosts[0], hosts[0], used_bytes=1),),
            errors=(f"{hosts[1]}: connection refused",),
        )
        for i in range(5)
    ]
    session = replay(tui, write(tmp_path / "f.ndjson.zst", frames, hosts))
    tabs = next(line for line in session.screen().splitlines() if line.startswith("Tabs:"))
    assert "!10.0.0.2:9090" in tabs and "!10.0.0.1:9090" not in tabs


@pytest.mark.parametrize(
    ("name", "stop"),
    [
        ("z.ndjson.zst", signal.SIGTERM),
        ("g.ndjson.gz", signal.SIGKILL),
        ("p.ndjson", signal.SIGKILL),
    ],
)
def test_follow_says_recording_ended_when_the_recorder_exits_and_follows_a_restart(
    tui: list[Tmux], tmp_path: Path, name: str, stop: signal.Signals
) -> None:
    out = tmp_path / name
    record = ("record", "-o", str(out), "-i", "0.5", "--include", "cpu,memory")
    recorder = start_allsmi(*record)
    poll(lambda: out.exists() and out.stat().st_size > 0, what="the recording to start")
    session = Tmux(f"e{len(tui)}", ["view", "--replay", str(out), "--follow"])
    tui.append(session)
    session.wait_for(lambda s: "LIVE |" in s and "G:Live" in s)
    recorder.send_signal(stop)
    recorder.communicate(timeout=10)
    screen = session.wait_for(lambda s: "recording ended" in s and "| end |" in s)
    assert "LIVE |" not in screen and "G:Live" not in screen  # no live edge now
    restarted = start_allsmi(*record)  # the same path again: followed again
    try:
        session.wait_for(lambda s: "LIVE |" in s and "recording resumed" in s, timeout=30)
    finally:
        restarted.terminate()
        restarted.communicate(timeout=10)
    session.wait_for("recording ended")


BIG_FRAMES = 200_000


@pytest.fixture(scope="module")
def big_gzip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200,000 frames of one GPU, one member of gzip (the shape `gzip` and all-smi make):
    no seek table, so replay indexes it behind the first frame."""
    header = wire.encode_line(Header(interval_ms=1000, hosts=("h",))).rstrip(b"\n")
    template = wire.encode_line(Frame(t_ms=T0, seq=0, gpus=(gpu("h", 0),))).rstrip(b"\n")
    stamp = b'"t":"2026-04-18T12:00:00.000Z","seq":0,'
    assert stamp in template
    head, tail = template.split(stamp)
    lines = [header]
    for i in range(BIG_FRAMES):
        hours, rest = divmod(i, 3600)
        minutes, seconds = divmod(rest, 60)
        day, hour = divmod(12 + hours, 24)
        t = f"2026-04-{18 + day:02d}T{hour:02d}:{minutes:02d}:{seconds:02d}.000Z"
        lines.append(head + f'"t":"{t}","seq":{i},'.encode() + tail)
    path = tmp_path_factory.mktemp("big") / "big.ndjson.gz"
    path.write_bytes(gzip.compress(b"".join(line + b"\n" for line in lines), compresslevel=1))
    return path


def test_a_big_gzip_recording_opens_on_its_first_frame_and_is_indexed_behind_it(
    tui: list[Tmux], big_gzip: Path
) -> None:
    session = replay(tui, big_gzip)
    session.send("]")
    session.wait_for(lambda s: "frame 2/" in s and "REPLAY | 00:00:01 /" in s)
    # Once indexed, the total is exact and the whole recording is reachable.
    session.wait_for(lambda s: f"frame 2/{BIG_FRAMES}" in s and "indexing" not in s, timeout=60)
    session.send("g", *"50:00:00", "Enter")
    screen = session.wait_for("REPLAY | 50:00:00 /")
    assert f"frame 180001/{BIG_FRAMES}" in screen
    session.send("k")
    session.wait_for(f"frame 180011/{BIG_FRAMES}")
