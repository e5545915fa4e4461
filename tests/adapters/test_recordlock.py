"""The recording lock: one writer per set, a pid a follower can ask about, never a segment.

OFD locks conflict between open file descriptions even inside one process, so these tests
take and probe the lock in-process; the end-to-end tests do it across real recorders.
"""

from __future__ import annotations

import os
import socket
import stat
import threading
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from allsmi.adapters.recording.lock import RecordingLock, holder, lock_path
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.adapters.recording.source import discover
from allsmi.domain.errors import SinkFailed, UsageError
from allsmi.domain.model import Header
from allsmi.domain.segments import numbered_segments, segment_name

from .test_sink import T0, frame_line


def test_the_lock_file_sits_beside_the_active_file() -> None:
    assert lock_path(Path("/r/trace.ndjson.zst")) == Path("/r/trace.ndjson.zst.lock")
    assert lock_path(Path("run")) == Path("run.lock")


def test_a_second_lock_on_the_same_set_is_refused_naming_the_holder(tmp_path: Path) -> None:
    active = tmp_path / "trace.ndjson.zst"
    with RecordingLock.acquire(active), pytest.raises(UsageError) as refused:
        RecordingLock.acquire(active)
    message = str(refused.value)
    assert message == (
        f"{active}: already being recorded by pid {os.getpid()} (lock trace.ndjson.zst.lock)"
    )
    assert "\n" not in message


def test_a_released_lock_can_be_taken_again_and_the_file_stays(tmp_path: Path) -> None:
    active = tmp_path / "t.ndjson"
    RecordingLock.acquire(active).release()
    assert lock_path(active).exists()  # never deleted: deleting lock files races
    with RecordingLock.acquire(active):
        assert holder(active) == os.getpid()


def test_holder_is_the_pid_while_held_and_none_otherwise(tmp_path: Path) -> None:
    active = tmp_path / "t.ndjson.gz"
    assert holder(active) is None  # no lock file at all
    lock = RecordingLock.acquire(active)
    assert holder(active) == os.getpid()
    assert lock_path(active).read_text() == f"{os.getpid()}\n"
    lock.release()
    lock.release()  # idempotent
    assert holder(active) is None  # the file is there, the pid inside is stale: unlocked


def test_a_stale_pid_in_an_unlocked_file_is_not_a_holder(tmp_path: Path) -> None:
    active = tmp_path / "t"
    lock_path(active).write_text("1\n")
    assert holder(active) is None
    with RecordingLock.acquire(active):
        assert holder(active) == os.getpid()  # overwritten, no leftover digits


@pytest.mark.parametrize("content", [b'{"schema":1,"header":true}\n', b"\x28\xb5\x2f\xfd" * 20])
def test_a_file_at_the_lock_path_that_is_no_lock_is_never_overwritten(
    tmp_path: Path, content: bytes
) -> None:
    """``record -o t.ndjson.lock`` made a recording where ``-o t.ndjson`` keeps its lock."""
    lock_path(tmp_path / "t.ndjson").write_bytes(content)
    with pytest.raises(UsageError, match="is not a recording lock; not overwriting it"):
        RecordingLock.acquire(tmp_path / "t.ndjson")
    assert lock_path(tmp_path / "t.ndjson").read_bytes() == content


def test_a_pid_tail_left_by_a_crash_while_writing_the_pid_is_still_a_lock(tmp_path: Path) -> None:
    lock_path(tmp_path / "t").write_bytes(b"99\n4\n")  # "99\n" written over "1234\n", not cut
    with RecordingLock.acquire(tmp_path / "t"):
        assert lock_path(tmp_path / "t").read_text() == f"{os.getpid()}\n"


def test_probing_the_holder_never_takes_the_lock(tmp_path: Path) -> None:
    """A follower polling holder() must never make a starting recorder fail."""
    active = tmp_path / "t.ndjson.zst"
    lock_path(active).touch()
    stop = threading.Event()
    probes = 0

    def probe() -> None:
        nonlocal probes
        while not stop.is_set():
            holder(active)
            probes += 1

    thread = threading.Thread(target=probe)
    thread.start()
    try:
        for _ in range(300):
            RecordingLock.acquire(active).release()
    finally:
        stop.set()
        thread.join()
    assert probes > 0


def test_the_lock_file_is_private(tmp_path: Path) -> None:
    active = tmp_path / "p.ndjson"
    with RecordingLock.acquire(active):
        assert stat.S_IMODE(lock_path(active).stat().st_mode) == 0o600


def test_a_symlink_at_the_lock_path_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    lock_path(tmp_path / "t.ndjson").symlink_to(victim)
    with pytest.raises(SinkFailed, match="symlink"):
        RecordingLock.acquire(tmp_path / "t.ndjson")
    assert victim.read_text() == "keep"
    assert holder(tmp_path / "t.ndjson") is None


def test_a_fifo_at_the_lock_path_is_refused_without_waiting(tmp_path: Path) -> None:
    os.mkfifo(lock_path(tmp_path / "t.ndjson"))
    with pytest.raises(UsageError, match=r"not a regular file \(a FIFO\)"):
        RecordingLock.acquire(tmp_path / "t.ndjson")
    assert holder(tmp_path / "t.ndjson") is None


# ------------------------------------------------------------- the lock is never a segment


@given(
    stem=st.text(st.sampled_from("abc.-_0123456789"), min_size=1, max_size=12),
    number=st.integers(1, 99_999),
)
def test_the_lock_file_is_never_a_numbered_segment(stem: str, number: int) -> None:
    assume(stem.strip(".") != "")  # "." and ".." name no file
    for active in (stem, stem + ".ndjson.zst", stem + ".gz", stem + ".lock"):
        lock = lock_path(Path(active)).name
        names = [lock, active, segment_name(active, number)]
        assert numbered_segments(active, names) == [(number, segment_name(active, number))]


@pytest.mark.parametrize("name", ["t.ndjson.zst", "t.ndjson.gz", "t.ndjson", "t"])
def test_eviction_and_discovery_leave_the_lock_file_alone(tmp_path: Path, name: str) -> None:
    active = tmp_path / name
    with RecordingLock.acquire(active):
        sink = RecordingSink(
            SinkConfig(path=active, codec=Codec.NONE, max_size=300, max_files=1), Header()
        )
        for seq in range(40):
            sink.append(frame_line(seq), seq, T0 + seq * 1000)
            sink.flush()
        sink.close()
        assert sink.stats.rotations >= 5
        assert sorted(os.listdir(tmp_path)) == sorted([name, lock_path(active).name])
        assert discover(active) == [active]
        assert holder(active) == os.getpid()


def test_a_unix_socket_at_the_lock_path_is_refused(tmp_path: Path) -> None:
    where = lock_path(tmp_path / "s")
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(where))
        with pytest.raises(UsageError, match=r"not a regular file \(a socket\)"):
            RecordingLock.acquire(tmp_path / "s")
    finally:
        server.close()
