"""``view --replay --follow`` against hostile growth, in a real terminal: a zstd bomb, a
skippable frame declaring 4 GiB, a run of 16 MiB lines, junk, a truncation, a replaced file.
The viewer's peak RSS is read from /proc; it must stay within 150 MB and keep answering."""

from __future__ import annotations

import re
from pathlib import Path

import zstandard

from allsmi.adapters import wire
from allsmi.adapters.recording import seektable
from allsmi.adapters.recording.sink import Codec

from ..adapters import recordings as rec
from .conftest import peak_rss
from .tmux import Tmux

RSS_BOUND_MB = 150


def peak_rss_mb(pid: int) -> float:
    return peak_rss(pid) / (1024 * 1024)


def position(screen: str) -> int:
    found = re.search(r"LIVE \| (\d\d):(\d\d):(\d\d) /", screen)
    if not found:
        return -1
    h, m, s = (int(x) for x in found.groups())
    return h * 3600 + m * 60 + s


def frame_line(seq: int, at_s: int) -> bytes:
    return wire.encode_line(rec.make_frame(seq, rec.T0 + at_s * 1000, seq))


def zstd_frame(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=3).compress(data)


def follow(sessions: list[Tmux], path: Path) -> Tmux:
    session = Tmux(f"fh{len(sessions)}", ["view", "--replay", str(path), "--follow"])
    sessions.append(session)
    session.wait_for(lambda s: position(s) == 49)
    return session


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


def answers_keys(session: Tmux) -> None:
    """Still alive and responsive: help opens and closes, then quit exits 0."""
    session.send("h")
    session.wait_for("show / hide this help")
    session.send("h")
    session.wait_for(lambda s: "show / hide this help" not in s)
    session.send("q")
    session.wait_for("EXITED rc=0")


def test_a_zstd_bomb_appended_to_a_followed_recording_stays_bounded(
    sessions: list[Tmux], tmp_path: Path
) -> None:
    path = tmp_path / "bomb.ndjson.zst"
    rec.write_sink(path, 50, Codec.ZSTD)
    session = follow(sessions, path)
    obj = zstandard.ZstdCompressor(level=1).compressobj()
    block = b"x" * (1 << 20)
    bomb = b"".join([obj.compress(block) for _ in range(2048)] + [obj.flush()])  # 2 GiB
    assert len(bomb) < 1 << 20
    append(path, bomb + zstd_frame(b"\n" + frame_line(50, 120)))
    screen = session.wait_for(lambda s: position(s) == 120, timeout=120)
    assert "over 16 MiB skipped" in screen
    assert peak_rss_mb(session.program_pid()) <= RSS_BOUND_MB
    answers_keys(session)


def test_a_skippable_frame_declaring_4_gib_is_passed_not_buffered(
    sessions: list[Tmux], tmp_path: Path
) -> None:
    path = tmp_path / "skip.ndjson.zst"
    rec.write_sink(path, 50, Codec.ZSTD)
    session = follow(sessions, path)
    append(path, seektable.skippable(0x184D2A55, b"")[:4] + (2**32 - 1).to_bytes(4, "little"))
    for _ in range(16):  # 128 MiB of its declared payload arrives
        append(path, b"\x07" * (8 << 20))
    pid = session.program_pid()
    session.send("h")
    session.wait_for("show / hide this help", timeout=30)
    assert peak_rss_mb(pid) <= RSS_BOUND_MB
    session.send("h")
    session.send("q")
    session.wait_for("EXITED rc=0")


def test_a_run_of_16_mib_lines_keeps_the_viewer_bounded(
    sessions: list[Tmux], tmp_path: Path
) -> None:
    path = tmp_path / "lines.ndjson"
    rec.write_sink(path, 50, Codec.NONE)
    session = follow(sessions, path)
    for i in range(12):  # frames of just under 16 MiB, then one over
        line = frame_line(50 + i, 60 + i)
        pad = b',"pad":"' + b"y" * ((16 << 20) - len(line) - 64) + b'"}\n'
        append(path, line[:-2] + pad)
    append(path, b'{"schema":1,"t":"' + b"z" * (17 << 20) + b"\n")
    append(path, frame_line(70, 130))
    session.wait_for(lambda s: position(s) == 130, timeout=120)
    assert peak_rss_mb(session.program_pid()) <= RSS_BOUND_MB
    answers_keys(session)


def test_junk_appended_is_reported_and_frames_after_it_are_followed(
    sessions: list[Tmux], tmp_path: Path
) -> None:
    path = tmp_path / "junk.ndjson.zst"
    rec.write_sink(path, 50, Codec.ZSTD)
    size = path.stat().st_size
    session = follow(sessions, path)
    junk = b"\x01garbage\x02" * 10
    append(path, junk + zstd_frame(frame_line(50, 90)))
    screen = session.wait_for(lambda s: position(s) == 90)
    assert f"{len(junk)} undecodable bytes at offset {size:,}" in screen
    answers_keys(session)


def test_a_truncated_followed_file_is_reported_and_following_goes_on(
    sessions: list[Tmux], tmp_path: Path
) -> None:
    path = tmp_path / "cut.ndjson"
    rec.write_sink(path, 50, Codec.NONE)
    session = follow(sessions, path)
    with open(path, "r+b") as fh:
        fh.truncate(100)
    session.wait_for("was truncated to 100 bytes")
    append(path, b"partial line\n" + frame_line(50, 95))
    session.wait_for(lambda s: position(s) == 95)
    answers_keys(session)


def test_the_active_file_replaced_by_one_that_is_no_recording_never_crashes(
    sessions: list[Tmux], tmp_path: Path
) -> None:
    path = tmp_path / "swap.ndjson"
    rec.write_sink(path, 50, Codec.NONE)
    session = follow(sessions, path)
    other = tmp_path / "other"
    other.write_bytes(b"this is not a recording\n" * 3)
    other.replace(path)
    session.wait_for("swap.ndjson was replaced and the file before is gone (50 frames)")
    append(path, frame_line(50, 100))
    session.wait_for("2026-04-18 12:01:40 UTC | frame 1/1")  # the new file's one frame
    answers_keys(session)
