"""``allsmi status PATH`` against real recorders: live, hung, stopped, killed, and paths
that are no recording."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from allsmi.adapters.recording.lock import lock_path

from .conftest import allsmi_path, assert_one_line_error, poll, run_allsmi, start_allsmi, user_env

FAST = ("-i", "0.5", "--include", "cpu,memory")


def status(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_allsmi("status", str(path), *args)


def started(path: Path) -> subprocess.Popen[str]:
    proc = start_allsmi("record", "-o", str(path), *FAST)
    poll(lambda: status(path).returncode == 0, what="status OK for a live recorder")
    return proc


def status_ok(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The first ``status`` answer of exit 0 (a loaded machine may answer late once)."""
    found: list[subprocess.CompletedProcess[str]] = []

    def ok() -> bool:
        found.append(status(path, *args))
        return found[-1].returncode == 0

    poll(ok, what="status OK")
    return found[-1]


def test_a_live_recorder_is_ok_with_its_pid_frames_and_age(tmp_path: Path) -> None:
    out = tmp_path / "r.ndjson.zst"
    proc = started(out)
    lines = status_ok(out).stdout.splitlines()
    assert lines[0] == f"{out}: recording, pid {proc.pid}"
    assert lines[1].startswith("frames ") and "in 1 file" in lines[1]
    assert "(every 0.5 s)" in lines[2]
    assert lines[-1].startswith("OK: the last frame is ") and lines[-1].endswith("under 3 s")
    info = orjson.loads(status_ok(out, "--format", "json").stdout)
    assert info["state"] == "ok" and info["pid"] == proc.pid and info["frames"] >= 1
    assert info["interval_ms"] == 500 and info["stale_after_ms"] == 3000
    assert 0 <= info["age_ms"] < 3000


def test_a_hung_recorder_is_stale_then_ok_again(tmp_path: Path) -> None:
    out = tmp_path / "r.ndjson.zst"
    proc = started(out)
    os.kill(proc.pid, signal.SIGSTOP)  # frozen: it holds the lock and writes nothing
    try:
        poll(lambda: status(out).returncode == 1, what="status STALE")
        result = status(out)
        assert result.stdout.splitlines()[0] == f"{out}: recording, pid {proc.pid}"
        assert result.stdout.splitlines()[-1].startswith("STALE: the last frame is ")
        assert orjson.loads(status(out, "--format", "json").stdout)["state"] == "stale"
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    poll(lambda: status(out).returncode == 0, what="status OK once it runs again")


def test_a_stopped_recorder_is_stopped(tmp_path: Path) -> None:
    out = tmp_path / "r.ndjson.zst"
    proc = started(out)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    result = status(out)
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == f"{out}: not recording"
    assert result.stdout.splitlines()[-1] == "STOPPED: no recorder holds the lock"
    assert orjson.loads(status(out, "--format", "json").stdout)["pid"] is None


def test_a_killed_recorder_is_stopped_its_lock_released_by_the_kernel(tmp_path: Path) -> None:
    out = tmp_path / "r.ndjson.zst"
    proc = started(out)
    proc.kill()
    proc.wait(timeout=30)
    result = status(out)
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1] == "STOPPED: no recorder holds the lock"
    assert lock_path(out).exists()  # the file stays; nobody holds it
    assert "frames " in result.stdout  # what it flushed before dying is counted


def test_a_recording_by_another_tool_has_no_lock_file(tmp_path: Path) -> None:
    out = tmp_path / "copy.ndjson.zst"
    recorded = run_allsmi("record", "-o", str(out), *FAST, "--duration", "1s")
    assert recorded.returncode == 0, recorded.stderr
    lock_path(out).unlink()  # a copied recording: no lock beside it
    result = status(out)
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == (
        f"{out}: not recording (no lock beside it: a copy, another tool's, or a rotated file: "
        "ask about the active one)"
    )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_text("hello\n"), "no frames in {p}"),
        (lambda p: None, "no such recording: {p}"),
        (lambda p: p.mkdir(), "{p} is a directory, not a recording"),
    ],
    ids=["text", "missing", "directory"],
)
def test_a_path_that_is_no_recording_is_exit_2_in_one_line(
    tmp_path: Path, make: Callable[[Path], object], message: str
) -> None:
    path = tmp_path / "x.ndjson"
    make(path)
    line = assert_one_line_error(status(path), 2)
    assert line == f"allsmi status: {message.format(p=path)}"


def as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
    """``allsmi`` run as the unprivileged user ``nobody`` (this test runs as root)."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv to run a command as another user")
    drop = (setpriv, "--reuid=65534", "--regid=65534", "--clear-groups")
    return subprocess.run(
        [*drop, allsmi_path(), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=user_env(),
        check=False,
    )


def test_a_lock_this_user_cannot_read_is_no_stopped_recorder(tmp_path: Path) -> None:
    shared = Path(tempfile.mkdtemp(prefix="allsmi-status-"))
    try:
        shared.chmod(0o755)
        out = shared / "r.ndjson.zst"
        proc = started(out)  # as root: the lock and the files are 0600
        result = as_nobody("status", str(out))
        line = assert_one_line_error(result, 2)
        assert line == (
            f"allsmi status: {out}.lock: Permission denied: cannot tell whether a recorder "
            "holds it (run as the recorder's user, or root)"
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        shared.chmod(0o700)  # the recorder's directory, as systemd's StateDirectory makes it
        result = as_nobody("status", str(out))
        assert "Permission denied" in assert_one_line_error(result, 2)  # never "STOPPED"
    finally:
        shutil.rmtree(shared)


def test_json_says_unreadable_on_stdout_as_well(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.ndjson.zst"
    result = status(missing, "--format", "json")
    assert assert_one_line_error(result, 2) == f"allsmi status: no such recording: {missing}"
    assert orjson.loads(result.stdout) == {
        "path": str(missing),
        "state": "unreadable",
        "error": f"no such recording: {missing}",
    }
