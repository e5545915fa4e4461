"""End-to-end tests run the installed ``allsmi`` command as a user would."""

from __future__ import annotations

import functools
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .tmux import Tmux


def allsmi_path() -> str:
    beside = Path(sys.executable).with_name("allsmi")
    found = str(beside) if beside.exists() else shutil.which("allsmi")
    if found is None:
        pytest.fail("the allsmi command is not installed (run make test)")
    return found


@pytest.fixture
def sessions() -> Iterator[list[Tmux]]:
    """Terminal sessions a test starts, each closed (its tmux server killed) afterwards."""
    started: list[Tmux] = []
    yield started
    for session in started:
        session.close()


def peak_rss(pid: int) -> int:
    """VmHWM of a running process: its peak resident set since exec, in bytes (0 once it is
    gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def user_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALLSMI_", "PYTEST"))}
    env["LANG"] = "C.UTF-8"
    env.update(extra or {})
    return env


def run_allsmi(
    *args: str, timeout: float = 60, env: dict[str, str] | None = None, **kw: object
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload,no-any-return]
        [allsmi_path(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=user_env(env),
        check=False,
        **kw,
    )


_started: list[subprocess.Popen[str]] = []


def start_allsmi(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [allsmi_path(), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=user_env(env),
    )
    _started.append(proc)
    return proc


@pytest.fixture(autouse=True)
def _reap_started() -> Iterator[None]:
    """A failed test must not leave a recorder running: kill and reap what it started."""
    yield
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def assert_one_line_error(
    result: subprocess.CompletedProcess[str], code: int, *, after_start: bool = False
) -> str:
    """The run failed with ``code`` and said why in one line, the last one, no traceback.

    ``after_start``: the command had started working (and said so) before it failed.
    """
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines, "no error line on stderr"
    if not after_start:
        assert len(lines) == 1, result.stderr
    return lines[-1]


def poll(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    """Wait for an expected state instead of sleeping a fixed time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def free_port() -> int:
    """A port nobody listens on right now (bound to 0, read, closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_loopback_mock(hostfile: Path, *args: str, attempts: int = 5) -> subprocess.Popen[str]:
    """``allsmi mock ARGS`` on a free base port, once its hostfile says every node listens;
    tried again on another port while one is taken (another test's, or the system's)."""
    for _ in range(attempts):
        proc = start_allsmi(
            "mock", *args, "--base-port", str(free_port()), "--hostfile", str(hostfile)
        )
        poll(functools.partial(_up_or_gone, hostfile, proc), 60, "the mock to listen")
        if proc.poll() is None:
            return proc
        _, err = proc.communicate(timeout=10)
        if "already in use" not in err:
            pytest.fail(f"allsmi mock exited {proc.returncode}: {err}")
    pytest.fail(f"allsmi mock could not bind in {attempts} attempts")


def _up_or_gone(hostfile: Path, proc: subprocess.Popen[str]) -> bool:
    """The mock wrote its hostfile (every node listens), or exited."""
    return hostfile.exists() or proc.poll() is not None


def frames_in(path: Path) -> int:
    """The frames a recording holds now (0 while it cannot be opened yet)."""
    from allsmi.adapters.recording.source import RecordingSource
    from allsmi.domain.errors import AllsmiError

    try:
        with RecordingSource(path) as source:
            return source.frame_count
    except AllsmiError:  # not written yet
        return 0
