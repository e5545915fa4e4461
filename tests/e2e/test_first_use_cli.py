"""What a first-time user meets, run as they would run it: the installed command, real
paths, no terminal unless the test gives one.

Rules checked here (docs/architecture.md §7.3): every failure is one line on stderr that
starts with ``allsmi <command>:``; a bad recording is reported as such before a terminal is
asked for; a path the user names for writing lives in a directory that already exists, is
refused before any collection (exit 2) with the real reason, and a write that fails later
exits 1 — both naming the user's path, never an internal temp file; a hostfile that lists
no hosts says so; ``mock`` writes its hostfile only once every node listens; the help says
what the keys do, and the demo keeps its incident a puzzle.
"""

from __future__ import annotations

import errno
import os
import re
import resource
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .conftest import assert_one_line_error, run_allsmi

FIXTURE = Path(__file__).parents[1] / "fixtures" / "format-v1.ndjson.zst"
NO_TTY = subprocess.DEVNULL  # stdin; stdout is a pipe: no terminal at all
# What each writing command needs besides its output path; none may collect first.
WRITERS: dict[str, Callable[[str], tuple[str, ...]]] = {
    "record": lambda path: ("record", "-o", path, "--include", "memory", "--duration", "1s"),
    "snapshot": lambda path: ("snapshot", "--include", "memory", "-o", path),
    "mock": lambda path: ("mock", "--nodes", "1", "--base-port", "1", "--hostfile", path),
}


def one_line(result: subprocess.CompletedProcess[str], command: str, code: int) -> str:
    line = assert_one_line_error(result, code)
    assert line.startswith(f"allsmi {command}: "), line
    return line


# ----------------------------------------------------------------- 1. view --replay


def replay_inputs(tmp: Path) -> Iterator[tuple[str, str]]:
    """(path, what the error must say) for recordings that cannot be replayed."""
    yield str(tmp / "missing.ndjson.zst"), "no such recording"
    empty = tmp / "empty.ndjson.zst"
    empty.write_bytes(b"")
    yield str(empty), "no frames"
    bare = tmp / "bare"  # a directory is its recordings, merged: one without any is refused
    bare.mkdir()
    (bare / "notes.txt").write_text("not a recording\n")
    yield str(bare), "holds no recording"
    yield str(tmp), "no frames in"  # ...and one holding a bad recording is that recording's error
    os.mkfifo(tmp / "pipe")
    yield str(tmp / "pipe"), "not a regular file (a FIFO)"
    yield "/dev/null", "not a regular file (a character device)"
    yield "/proc/self/mem", "cannot read /proc/self/mem"  # opens, but no read succeeds


def test_a_bad_recording_is_reported_as_such_without_a_terminal(tmp_path: Path) -> None:
    for path, needle in replay_inputs(tmp_path):
        line = one_line(run_allsmi("view", "--replay", path, stdin=NO_TTY), "view", 2)
        assert needle in line and "terminal" not in line, (path, line)


def test_a_good_recording_without_a_terminal_then_asks_for_one() -> None:
    line = one_line(run_allsmi("view", "--replay", str(FIXTURE), stdin=NO_TTY), "view", 2)
    assert "needs a terminal" in line


def test_replay_errors_name_the_view_command() -> None:
    line = one_line(run_allsmi("view", "--replay", str(FIXTURE), "--hosts", "a:1"), "view", 2)
    assert "not --replay" in line and not line.startswith("replay:")


# ----------------------------------------------------------------- 2. output paths


def refused_paths(tmp: Path) -> Iterator[tuple[str, str]]:
    """(a path no command may write, the reason its one line must give)."""
    yield str(tmp / "no-such-dir" / "x"), f"directory {tmp / 'no-such-dir'} does not exist"
    (tmp / "file").write_text("")
    yield str(tmp / "file" / "x"), f"{tmp / 'file'} is not a directory"
    yield "/proc/x", "creating files in /proc is not supported"
    yield "/proc/self/x", "creating files in /proc/self is not supported"
    yield "/sys/x.zst", sys_reason()


def sys_reason() -> str:
    """Why this machine refuses a new file in /sys, in the words allsmi uses for it."""
    try:
        os.close(os.open("/sys/x.zst", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except OSError as err:
        return {errno.EROFS: "read-only file system"}.get(err.errno or 0, "permission denied")
    pytest.skip("this machine lets a file be created in /sys")


@pytest.mark.parametrize("command", sorted(WRITERS))
def test_an_unwritable_output_is_refused_up_front_with_its_real_reason(
    tmp_path: Path, command: str
) -> None:
    for path, reason in refused_paths(tmp_path):
        result = run_allsmi(*WRITERS[command](path), timeout=30)
        line = one_line(result, command, 2)
        assert line == f"allsmi {command}: cannot write {path}: {reason}" + (
            " (a regular file)" if "not a directory" in reason else ""
        ), line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # no directory made


def test_a_directory_the_user_names_is_never_created(tmp_path: Path) -> None:
    """``-o /missing-dir/x`` used to create the directory and record into it."""
    out = tmp_path / "missing-dir" / "t.ndjson"
    line = one_line(run_allsmi(*WRITERS["record"](str(out))), "record", 2)
    assert "does not exist" in line
    assert not out.parent.exists()


def test_the_default_cache_directory_is_still_created(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = run_allsmi("record", "-i", "0.2", "--duration", "0.5s", "--include", "memory", env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "cache" / "allsmi" / "records").is_dir()


def test_a_write_that_fails_after_reading_exits_1_naming_the_users_path(tmp_path: Path) -> None:
    """The snapshot was read, then the file size limit stops the write: exit 1, and the
    line names ``-o``, not the temp file the write went through."""
    out = tmp_path / "now.json"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    result = run_allsmi("snapshot", "--include", "memory", "-o", str(out), preexec_fn=limit)
    line = one_line(result, "snapshot", 1)
    assert line == f"allsmi snapshot: file size limit reached while writing {out}"
    assert list(tmp_path.iterdir()) == []  # no temp file left, no half snapshot


# ----------------------------------------------------------------- 3. an empty hostfile


@pytest.mark.parametrize(
    "command", [("record", "--source", "remote"), ("view",)], ids=["record", "view"]
)
def test_a_hostfile_of_only_comments_says_it_lists_no_hosts(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    hostfile = tmp_path / "hosts"
    hostfile.write_text("# the rack is not cabled yet\n\n   # node-01:9090\n")
    out = ("-o", str(tmp_path / "x")) if command[0] == "record" else ()
    result = run_allsmi(*command, "--hostfile", str(hostfile), *out, stdin=NO_TTY)
    line = one_line(result, command[0], 2)
    assert line == f"allsmi {command[0]}: hostfile {hostfile} lists no hosts"


# ----------------------------------------------------------------- 4. mock, a port in use


@pytest.mark.parametrize("earlier", [None, "# the hosts of an earlier run\n127.0.0.1:9\n"])
def test_mock_with_a_port_in_use_writes_no_hostfile(tmp_path: Path, earlier: str | None) -> None:
    hostfile = tmp_path / "hosts.txt"
    if earlier is not None:
        hostfile.write_text(earlier)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        base = port - 1  # the first node may bind; the second cannot
        result = run_allsmi(
            "mock", "--nodes", "2", "--base-port", str(base), "--hostfile", str(hostfile),
            timeout=30,
        )  # fmt: skip
    line = one_line(result, "mock", 1)
    busy = re.search(r"port (\d+) is already in use", line)
    assert busy is not None and int(busy.group(1)) in (base, port), line
    if earlier is None:
        assert not hostfile.exists()
    else:
        assert hostfile.read_text() == earlier
    assert [p.name for p in tmp_path.iterdir()] == ([] if earlier is None else ["hosts.txt"])


# ----------------------------------------------------------------- 6, 7. help and demo


def help_text(*command: str) -> str:
    result = run_allsmi(*command, "--help")
    assert result.returncode == 0, result.stderr
    return " ".join(result.stdout.split())


def test_view_help_names_the_live_edge_and_question_mark_keys() -> None:
    text = help_text("view")
    assert "G back to the live edge (with --follow)" in text
    assert "h or ? help" in text


def test_demo_help_and_banner_keep_the_incident_a_puzzle(tmp_path: Path) -> None:
    result = run_allsmi("demo", "--no-replay", env={"XDG_CACHE_HOME": str(tmp_path)}, stdin=NO_TTY)
    assert result.returncode == 0, result.stderr
    for said in (help_text("demo"), result.stderr):
        assert "incident" in said and "8x" in said and "g " in said, said
        for giveaway in ("00:14", "14:32", "node-03", "idle"):
            assert giveaway not in said, (giveaway, said)
    assert "3,601 frames, 01:00:00, 4 host(s), 0 gap(s): OK" in result.stdout
