"""``allsmi record`` as a user runs it: real files, real signals, the real zstd/gzip tools."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from allsmi.adapters import wire
from allsmi.adapters.recording import seektable
from allsmi.adapters.recording.decoding import iter_file_lines as iter_lines
from allsmi.adapters.recording.lock import holder
from allsmi.adapters.recording.source import discover
from allsmi.domain.model import Frame
from allsmi.domain.segments import numbered_segments

from .conftest import assert_one_line_error, poll, run_allsmi, start_allsmi

FAST = ("--include", "cpu,memory")


def frames_in(path: Path) -> list[Frame]:
    out = []
    for n, raw in enumerate(iter_lines(path), 1):
        line = wire.decode_line(raw, n)
        if isinstance(line, Frame):
            out.append(line)
    return out


def count_frames(path: Path) -> int:
    return len(frames_in(path)) if path.exists() else 0


def test_thirty_seconds_at_the_default_interval_is_valid_ndjson(tmp_path: Path) -> None:
    out = tmp_path / "trace.ndjson"
    result = run_allsmi("record", "-o", str(out), "--duration", "30s", *FAST, timeout=90)
    assert result.returncode == 0, result.stderr
    lines = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert lines[0]["header"] is True and lines[0]["interval_ms"] == 3000
    data = [x for x in lines if "t" in x and not x.get("index")]
    assert len(data) >= 10
    assert [x["seq"] for x in data] == list(range(len(data)))
    assert f"writing {out}" in result.stderr and "retention ≈" in result.stderr


@pytest.mark.parametrize(("name", "tool"), [("t.ndjson.zst", "zstd"), ("t.ndjson.gz", "gzip")])
def test_compressed_recordings_decompress_with_the_real_tools(
    tmp_path: Path, name: str, tool: str
) -> None:
    out = tmp_path / name
    result = run_allsmi("record", "-o", str(out), "-i", "0.2", "--duration", "2s", *FAST)
    assert result.returncode == 0, result.stderr
    subprocess.run([tool, "-t", str(out)], check=True)
    text = subprocess.run([tool, "-dc", str(out)], check=True, capture_output=True).stdout
    lines = [orjson.loads(x) for x in text.splitlines()]  # every line is JSON: markers invisible
    assert lines[0]["header"] is True
    assert len([x for x in lines if "seq" in x and not x.get("index")]) >= 8


def test_rotation_keeps_three_files_each_starting_with_a_header(tmp_path: Path) -> None:
    out = tmp_path / "trace.ndjson.zst"
    args = ("-i", "0.1", "--duration", "10s", "--max-size", "1K", "--max-files", "3")
    result = run_allsmi("record", "-o", str(out), *args, "--include", "cpu,memory,storage")
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".lock")
    assert len(names) == 3 and "trace.ndjson.zst" in names
    assert (tmp_path / "trace.ndjson.zst.lock").exists()  # beside the set, never a segment
    assert "trace.0001.ndjson.zst" not in names  # the oldest were evicted
    for name in names:
        assert orjson.loads(next(iter_lines(tmp_path / name)))["header"] is True
        subprocess.run(["zstd", "-q", "-t", str(tmp_path / name)], check=True)


def test_sigterm_finishes_the_file_with_a_footer_and_exits_0(tmp_path: Path) -> None:
    out = tmp_path / "t.ndjson.zst"
    proc = start_allsmi("record", "-o", str(out), "-i", "0.2", *FAST)
    poll(lambda: count_frames(out) >= 3, what="three frames on disk")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "stopped by SIGTERM" in err
    assert seektable.decode_trailer(out.read_bytes()[-16:]) is not None
    subprocess.run(["zstd", "-q", "-t", str(out)], check=True)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP])
def test_sigint_and_sighup_also_close_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    out = tmp_path / "t.ndjson.gz"
    proc = start_allsmi("record", "-o", str(out), "-i", "0.2", *FAST)
    poll(lambda: count_frames(out) >= 2, what="two frames on disk")
    proc.send_signal(sig)
    proc.communicate(timeout=20)
    assert proc.returncode == 0
    subprocess.run(["gzip", "-t", str(out)], check=True)


@pytest.mark.parametrize("name", ["k.ndjson.zst", "k.ndjson.gz", "k.ndjson"])
def test_kill_9_loses_at_most_the_last_second(tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    proc = start_allsmi("record", "-o", str(out), "-i", "0.25", *FAST)
    poll(lambda: count_frames(out) >= 8, what="eight frames on disk")
    time.sleep(0.6)
    killed_at_ms = time.time_ns() // 1_000_000
    proc.kill()
    proc.communicate(timeout=10)
    frames = frames_in(out)
    assert [f.seq for f in frames] == list(range(len(frames)))
    assert frames[-1].t_ms >= killed_at_ms - 1000 - 250  # collected more than 1 s before: kept


def test_a_restart_on_the_same_path_keeps_the_old_file_and_continues_seq(tmp_path: Path) -> None:
    out = tmp_path / "r.ndjson.zst"
    for _ in range(2):
        result = run_allsmi("record", "-o", str(out), "-i", "0.2", "--duration", "1s", *FAST)
        assert result.returncode == 0, result.stderr
    first = frames_in(tmp_path / "r.0001.ndjson.zst")
    second = frames_in(out)
    assert first and second
    assert second[0].seq == (first[-1].seq or 0) + 1
    assert "continuing at frame" in result.stderr


def test_file_size_limit_is_one_line_and_keeps_what_was_written(tmp_path: Path) -> None:
    out = tmp_path / "full.ndjson"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (12_000, 12_000))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    result = run_allsmi(
        "record", "-o", str(out), "-i", "0.1", "--duration", "20s", *FAST, preexec_fn=limit
    )
    line = assert_one_line_error(result, 1, after_start=True)
    assert "file size limit" in line and str(out) in line
    assert len(frames_in(out)) >= 3


def test_an_output_directory_that_does_not_exist_is_refused_not_made(tmp_path: Path) -> None:
    line = assert_one_line_error(run_allsmi("record", "-o", "/proc/allsmi/t.ndjson"), 2)
    assert line == (
        "allsmi record: cannot write /proc/allsmi/t.ndjson: directory /proc/allsmi does not exist"
    )


@pytest.mark.parametrize("where", ["/proc", "/proc/self"])
def test_an_existing_directory_that_takes_no_files_says_why(where: str) -> None:
    """It exists, so "directory does not exist" (what this said before) was wrong."""
    out = f"{where}/t.ndjson.zst"
    line = assert_one_line_error(run_allsmi("record", "-o", out, *FAST), 2)
    assert line == f"allsmi record: cannot write {out}: creating files in {where} is not supported"


def test_a_symlink_at_the_output_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / "t.ndjson").symlink_to(victim)
    line = assert_one_line_error(run_allsmi("record", "-o", str(tmp_path / "t.ndjson")), 1)
    assert "symlink" in line and victim.read_text() == "keep"


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["-i", "0.05"], 2, "shortest interval is 0.1 s"),
        (["--duration", "5x"], 2, "invalid duration '5x'"),
        (["--max-size", "10Q"], 2, "invalid size '10Q'"),
        (["--max-files", "0"], 2, "at least 1"),
        (["--max-age", "30s"], 2, "max age '30s' must be 0 or between 1m and 36500d"),
        (["--max-age", "99999d"], 2, "must be 0 or between 1m and 36500d"),
        (["--max-age", "soon"], 2, "invalid duration 'soon'"),
        (["--include", "gpu,nope"], 2, "unknown section 'nope'"),
        (["--compress", "lz4"], 2, "invalid choice"),
        (["--source", "remote"], 2, "needs --hosts or --hostfile"),
        (["--hostfile", "/nonexistent/hosts"], 2, "cannot read hostfile"),
        (["--hosts", "a:9090"], 2, "go with --source remote"),
    ],
)
def test_bad_input_exits_with_one_clear_line(
    tmp_path: Path, args: list[str], code: int, needle: str
) -> None:
    line = assert_one_line_error(run_allsmi("record", "-o", str(tmp_path / "x"), *args), code)
    assert needle in line
    assert not (tmp_path / "x").exists()


def test_too_many_hosts_are_refused_at_start(tmp_path: Path) -> None:
    hostfile = tmp_path / "hosts"
    hostfile.write_text("".join(f"node-{i}:9090\n" for i in range(1025)))
    line = assert_one_line_error(
        run_allsmi(
            "record", "--source", "remote", "--hostfile", str(hostfile), "-o", str(tmp_path / "x")
        ),
        2,
    )
    assert "at most 1024" in line


def test_default_output_goes_to_the_user_cache_dir(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    result = run_allsmi("record", "-i", "0.2", "--duration", "1s", *FAST, env=env)
    assert result.returncode == 0, result.stderr
    made = [p for p in (tmp_path / "allsmi" / "records").iterdir() if p.suffix != ".lock"]
    assert len(made) == 1 and made[0].name.startswith("allsmi-")
    assert made[0].name.endswith("Z.ndjson.zst")


def test_an_unreachable_cluster_still_records_frames_naming_each_host(tmp_path: Path) -> None:
    out = tmp_path / "down.ndjson"
    result = run_allsmi(
        "record",
        "--source",
        "remote",
        "--hosts",
        "127.0.0.1:1",
        "127.0.0.1:2",
        "-o",
        str(out),
        "-i",
        "0.5",
        "--duration",
        "2s",
    )
    assert result.returncode == 0, result.stderr
    frames = frames_in(out)
    assert len(frames) >= 3
    for frame in frames:
        assert frame.gpus == () and frame.errors == (
            "127.0.0.1:1: connection refused",
            "127.0.0.1:2: connection refused",
        )


# ------------------------------------------------------------------ one recorder per set


def set_seqs(active: Path) -> list[int]:
    return [f.seq for path in discover(active) for f in frames_in(path) if f.seq is not None]


def newest_segment(active: Path) -> int:
    """The highest rotated segment number of the set (0 if none): names only, no reads."""
    found = numbered_segments(active.name, os.listdir(active.parent))
    return found[-1][0] if found else 0


def test_a_second_recorder_on_the_same_path_is_refused_naming_the_first(tmp_path: Path) -> None:
    out = tmp_path / "same.ndjson.zst"
    fast_and_heavy = ("-i", "0.1", "--include", "cpu,memory,storage")
    rotating = (*fast_and_heavy, "--max-size", "1K", "--max-files", "2")
    first = start_allsmi("record", "-o", str(out), *rotating)
    poll(lambda: newest_segment(out) >= 1, what="the first recorder rotating")
    second = run_allsmi("record", "-o", str(out), *rotating, "--duration", "3s", timeout=30)
    line = assert_one_line_error(second, 2)
    assert line == (
        f"allsmi record: {out}: already being recorded by pid {first.pid} "
        "(lock same.ndjson.zst.lock)"
    )
    rotated = newest_segment(out)
    poll(lambda: newest_segment(out) > rotated, what="the first recorder rotating on")
    first.send_signal(signal.SIGTERM)
    _, err = first.communicate(timeout=20)
    assert first.returncode == 0, err
    verified = run_allsmi("verify", str(out))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    seqs = set_seqs(out)
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # unique, in order, no gap


def test_a_recorder_killed_with_sigkill_never_blocks_a_restart(tmp_path: Path) -> None:
    out = tmp_path / "k.ndjson.zst"
    first = start_allsmi("record", "-o", str(out), "-i", "0.2", *FAST)
    poll(lambda: holder(out) == first.pid, what="the first recorder holding the lock")
    poll(lambda: count_frames(out) >= 2, what="two frames on disk")
    first.kill()
    first.communicate(timeout=10)
    again = run_allsmi("record", "-o", str(out), "-i", "0.2", "--duration", "1s", *FAST)
    assert again.returncode == 0, again.stderr
    assert "continuing at frame" in again.stderr
    seqs = set_seqs(out)
    assert seqs == list(range(len(seqs)))


@pytest.mark.parametrize("name", ["h.ndjson.zst", "h.ndjson.gz", "h.ndjson"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_holder_names_the_recorder_until_it_exits(
    tmp_path: Path, name: str, sig: signal.Signals
) -> None:
    out = tmp_path / name
    proc = start_allsmi("record", "-o", str(out), "-i", "0.2", *FAST)
    poll(lambda: holder(out) == proc.pid, what="the recorder holding the lock")
    proc.send_signal(sig)
    proc.communicate(timeout=20)
    assert holder(out) is None  # how a follower learns that the recording ended


# ------------------------------------------------------------------ what -o may name


def test_a_deleted_output_directory_stops_the_recorder_with_one_line(tmp_path: Path) -> None:
    out = tmp_path / "d" / "t.ndjson.zst"
    out.parent.mkdir()  # a directory named with -o must already exist
    proc = start_allsmi("record", "-o", str(out), "-i", "0.2", *FAST)
    poll(lambda: count_frames(out) >= 2, what="two frames on disk")
    shutil.rmtree(out.parent)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 1, err
    assert "Traceback" not in err and "frames written" not in err
    assert err.strip().splitlines()[-1] == (
        f"allsmi record: {out}: the file was deleted while recording (its directory is gone)"
    )


def test_a_fifo_as_output_is_refused_at_once(tmp_path: Path) -> None:
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    result = run_allsmi("record", "-o", str(pipe), "--duration", "1s", *FAST, timeout=15)
    line = assert_one_line_error(result, 2)
    assert line == f"allsmi record: output {pipe}: not a regular file (a FIFO)"
    assert os.listdir(tmp_path) == ["pipe"]


def test_a_socket_as_output_is_refused_and_left_where_it_is(tmp_path: Path) -> None:
    where = tmp_path / "sock"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(where))
        result = run_allsmi("record", "-o", str(where), "--duration", "1s", *FAST, timeout=15)
    finally:
        server.close()
    line = assert_one_line_error(result, 2)
    assert line == f"allsmi record: output {where}: not a regular file (a socket)"
    assert os.listdir(tmp_path) == ["sock"]
