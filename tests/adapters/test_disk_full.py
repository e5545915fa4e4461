"""A disk that fills up: one clear error, and everything written before stays readable."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import anyio
import pytest

from allsmi.adapters import wire
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.adapters.recording.source import RecordingSource
from allsmi.app.clock import SimClock
from allsmi.app.record import RecordPlan, record_loop
from allsmi.domain.errors import SinkFailed
from allsmi.domain.model import Frame, Header

from . import recordings as rec


class FillingDisk:
    """``os.write`` on a disk with ``room`` bytes left: then ENOSPC, like the real thing."""

    def __init__(self, room: int) -> None:
        self.room = room

    def __call__(self, fd: int, data: memoryview) -> int:
        if self.room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        chunk = data[: self.room]
        written = os.write(fd, chunk)
        self.room -= written
        return written


@pytest.mark.parametrize("kind", list(Codec))
def test_enospc_is_one_clear_error_and_earlier_frames_stay_readable(
    tmp_path: Path, kind: Codec
) -> None:
    path = tmp_path / "full.ndjson"
    sink = RecordingSink(
        SinkConfig(path=path, codec=kind, chunk_max_frames=50), Header(), write=FillingDisk(6000)
    )
    flushed = 0
    with pytest.raises(SinkFailed, match=f"disk full while writing {path}"):
        for seq in range(10_000):
            line = wire.encode_line(rec.make_frame(seq, rec.T0 + seq * 1000, seq))
            sink.append(line, seq, rec.T0 + seq * 1000)
            sink.flush()
            flushed = seq + 1
    assert flushed > 3
    source = RecordingSource(path)
    assert flushed - 1 <= source.frame_count <= flushed
    assert [source.frame(i).seq for i in range(source.frame_count)] == list(
        range(source.frame_count)
    )


def test_the_recorder_stops_on_a_full_disk_with_one_error(tmp_path: Path) -> None:
    path = tmp_path / "r.ndjson.zst"
    sink = RecordingSink(SinkConfig(path=path, codec=Codec.ZSTD), Header(), write=FillingDisk(4000))

    class Source:
        async def start(self) -> None:
            return None

        async def collect(self, t_ms: int) -> Frame:
            return rec.make_frame(t_ms - rec.T0, t_ms, None)

        def hosts(self) -> tuple[str, ...]:
            return ("h",)

        async def aclose(self) -> None:
            return None

    plan = RecordPlan(1000, 3_600_000, "local", ("h",))
    with pytest.raises(SinkFailed, match="disk full"):
        anyio.run(record_loop, Source(), sink, SimClock(rec.T0), plan)
    assert RecordingSource(path).frame_count > 0


def _mount_tmpfs(where: Path, size: str) -> str | None:
    """Mount a small tmpfs, or say why not (no privilege in this sandbox, no mount tool)."""
    if shutil.which("mount") is None:
        return "no mount command"
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    return None if done.returncode == 0 else (done.stderr.strip() or "mount failed")


def test_a_real_full_tmpfs_stops_record_with_one_line(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    why = _mount_tmpfs(disk, "64k")
    if why is not None:
        pytest.skip(f"cannot mount a tmpfs here: {why}")
    try:
        from ..e2e.conftest import assert_one_line_error, run_allsmi

        out = disk / "t.ndjson"
        result = run_allsmi(
            "record",
            "-o",
            str(out),
            "-i",
            "0.1",
            "--duration",
            "60s",
            "--include",
            "cpu,memory,storage",
            timeout=90,
        )
        line = assert_one_line_error(result, 1, after_start=True)
        assert f"disk full while writing {out}" in line
        assert RecordingSource(out).frame_count > 0
    finally:
        subprocess.run(["umount", str(disk)], check=False)
