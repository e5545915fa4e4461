"""``allsmi verify``'s progress line, as the installed command shows it on a terminal.

Rules (src/allsmi/app/progress.py): with stderr on a terminal, a line rewritten in place
shows the phase, bytes, frames, the rate and the time left, and is erased before the report
or an error line, so the screen keeps only those; with stderr piped or redirected nothing is
drawn and the output is the report alone, byte for byte what it is without progress.
"""

from __future__ import annotations

import fcntl
import functools
import io
import os
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pyte
import pytest

from allsmi.adapters import wire
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.adapters.recording.source import RecordingSource
from allsmi.app.progress import CLEAR, format_bytes
from allsmi.app.verify import build_report, render
from allsmi.domain.model import Header

from ..adapters import recordings as rec
from .conftest import allsmi_path, run_allsmi, user_env

FRAMES = 150_000  # 1.3 MB, two seconds to verify here: several draws, four a second at most
COLUMNS, ROWS = 160, 40


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A gzip recording written by the real sink (flushed per chunk: quick to write)."""
    path = tmp_path_factory.mktemp("progress") / "big.ndjson.gz"
    sink = RecordingSink(
        SinkConfig(path=path, codec=Codec.GZIP, max_size=0),
        Header(interval_ms=1000, hosts=("h",)),
    )
    for i, t in enumerate(rec.times(FRAMES)):
        sink.append(wire.encode_line(rec.make_frame(i, t, i)), i, t)
    sink.close()
    return path


@functools.cache
def report_without_progress(path: Path, *, deep: bool) -> str:
    """What verify reports without any progress (read in this process, once)."""
    out = io.StringIO()
    render(build_report(RecordingSource(path), deep=deep), out)
    return out.getvalue()


def on_terminal(
    args: list[str], *, when: Callable[[bytes], bool] | None = None, timeout: float = 60.0
) -> tuple[bytes, int]:
    """Run ``allsmi ARGS`` with stdin, stdout and stderr on one pseudo-terminal; all it wrote
    and its exit status. ``when``: send SIGINT as soon as the output so far satisfies it."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    proc = subprocess.Popen(
        [allsmi_path(), *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=user_env({"TERM": "xterm"}),
        start_new_session=True,
    )
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every end of the terminal is closed, the command is done
                break
            if not data:
                break
            out += data
            if when is not None and when(out):
                proc.send_signal(signal.SIGINT)
                when = None
        else:
            pytest.fail(f"allsmi {' '.join(args)} did not finish; it wrote {out!r}")
        return out, proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def final_screen(out: bytes) -> list[str]:
    """The lines a terminal shows once ``out`` has been written to it (trailing blanks cut)."""
    screen = pyte.Screen(COLUMNS, ROWS)
    pyte.ByteStream(screen).feed(out)
    lines = [line.rstrip() for line in screen.display]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def progress_draws(out: bytes) -> list[str]:
    """The texts the progress line drew (those a clear ended, the last one not yet)."""
    text = out.decode()
    return [part for part in text.split(CLEAR)[1:] if part and "\n" not in part]


def test_on_a_terminal_verify_shows_progress_then_only_the_report(big: Path) -> None:
    out, status = on_terminal(["verify", str(big)])
    assert status == 0, out
    draws = progress_draws(out)
    assert len(draws) >= 2, out[:2000]  # the line was rewritten in place
    assert all(d.split()[0] in ("indexing", "checking") for d in draws)
    total = f"/ {format_bytes(big.stat().st_size)}"  # the file's size, in MB
    assert total.endswith(" MB")
    # the scan is the long phase (the check then reads what it logged): it tells bytes of
    # the total, frames met so far, time left and rate
    indexing = [d for d in draws if d.startswith("indexing")]
    assert indexing and all(total in d for d in indexing)
    assert any(" frames" in d and "left" in d and "B/s" in d for d in indexing), indexing
    frames_told = [
        int(d.split(total)[1].split()[0].replace(",", "")) for d in indexing if " frames" in d
    ]
    assert frames_told == sorted(frames_told) and 0 < frames_told[-1] <= FRAMES
    checking = [d for d in draws if d.startswith("checking")]
    assert all(f"/ {FRAMES:,} frames" in d and total in d for d in checking)
    expected = report_without_progress(big, deep=False)
    assert final_screen(out) == expected.splitlines()  # no progress text left behind
    assert out.decode().replace("\r\n", "\n").endswith(CLEAR + expected)


def test_verify_deep_on_a_terminal_shows_the_structuring_phase(big: Path) -> None:
    out, status = on_terminal(["verify", "--deep", str(big)])
    assert status == 0, out
    assert any(d.startswith("structuring") for d in progress_draws(out)), out[:2000]
    assert final_screen(out) == report_without_progress(big, deep=True).splitlines()


def test_piped_verify_writes_nothing_to_stderr_and_the_report_it_always_did(big: Path) -> None:
    result = run_allsmi("verify", str(big))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout == report_without_progress(big, deep=False)


def test_verify_with_stderr_redirected_to_a_file_draws_nothing(big: Path, tmp_path: Path) -> None:
    errors = tmp_path / "errors.txt"
    with open(errors, "w") as err:
        done = subprocess.run(
            [allsmi_path(), "verify", str(big)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=user_env(),
            timeout=60,
            check=False,
        )
    assert done.returncode == 0
    assert errors.read_bytes() == b""
    assert done.stdout == report_without_progress(big, deep=False)


def test_interrupting_verify_on_a_terminal_leaves_only_the_error_line(big: Path) -> None:
    def checking(out: bytes) -> bool:
        return b"checking" in out or b"structuring" in out

    out, status = on_terminal(["verify", "--deep", str(big)], when=checking)
    assert status == 130, out
    assert progress_draws(out), out[:2000]
    assert final_screen(out) == ["allsmi verify: interrupted"]
    assert out.decode().endswith(CLEAR + "allsmi verify: interrupted\r\n")
