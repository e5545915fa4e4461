"""``allsmi verify`` as a user runs it on good, damaged and unreadable recordings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from allsmi.adapters.recording.sink import Codec
from allsmi.domain.parse import format_rfc3339_ms

from ..adapters import recordings as rec
from ..app.test_verify_hosts import all_smi_dropping, write_cluster
from .conftest import assert_one_line_error, run_allsmi, user_env


def test_a_clean_recording_verifies_ok(tmp_path: Path) -> None:
    path = tmp_path / "v.ndjson.zst"
    rec.write_sink(path, 250, Codec.ZSTD)
    result = run_allsmi("verify", str(path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "frames:     250" in out and "duration:   00:04:09" in out
    assert "seek table: footer" in out and "hosts:      1 (h)" in out
    assert "errors:     0 frame(s) with an error" in out and "failed:" not in out
    assert out.endswith("\nOK\n")


def test_three_of_twenty_hosts_failing_are_named_and_the_verdict_says_so(tmp_path: Path) -> None:
    path = tmp_path / "cluster.ndjson.zst"
    hosts = [f"n{n:02d}:9090" for n in range(1, 21)]
    failing = {hosts[3]: range(60), hosts[10]: range(60), hosts[16]: range(60)}
    write_cluster(path, Codec.ZSTD, hosts=hosts, frames=60, failing=failing)
    result = run_allsmi("verify", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout
    assert "errors:     60 frame(s) with an error" in out
    first, last = (format_rfc3339_ms(rec.T0 + i * 1000) for i in (0, 59))
    for host in failing:
        assert f"  {host}  failed 60, missing 60; {first} – {last}\n" in out
    assert out.endswith(
        "OK (file sound; 3 of 20 hosts failed, 3 of 20 hosts missing in every frame)\n"
    )


def test_an_all_smi_host_that_drops_out_is_reported_missing(tmp_path: Path) -> None:
    path = tmp_path / "all-smi.ndjson"
    all_smi_dropping(path, frames=30, gone=range(10, 15))
    result = run_allsmi("verify", str(path))
    assert result.returncode == 0, result.stderr
    first, last = (format_rfc3339_ms(rec.T0 + i * 1000) for i in (10, 14))
    assert f"  b  failed 0, missing 5; {first} – {last}\n" in result.stdout
    assert result.stdout.endswith("OK (file sound; 1 of 2 hosts missing in some frames)\n")


def test_gaps_longer_than_twice_the_interval_are_listed(tmp_path: Path) -> None:
    path = tmp_path / "g.ndjson"
    rec.concatenated(path, 50)  # the second run starts 5 s after the first ends
    result = run_allsmi("verify", str(path))
    assert "gaps:       1: at 00:00:49 (6s)" in result.stdout
    assert "runs:       2" in result.stdout


def test_damage_exits_1_and_says_what(tmp_path: Path) -> None:
    path = tmp_path / "d.ndjson"
    rec.crash_cut(path, 300, Codec.NONE, cut_into_last=0.1)
    with open(path, "r+b") as fh:
        fh.seek(400)
        fh.write(b"\x00garbage\n")
    result = run_allsmi("verify", str(path), "--deep")
    assert result.returncode == 1
    assert "DAMAGED:" in result.stdout and "torn last line" in result.stdout
    assert "corrupt line" in result.stdout


def test_a_crash_cut_zstd_file_verifies_by_its_markers(tmp_path: Path) -> None:
    path = tmp_path / "c.ndjson.zst"
    rec.crash_cut(path, 300, Codec.ZSTD)
    result = run_allsmi("verify", str(path))
    assert result.returncode == 0
    assert "markers (no footer" in result.stdout


def test_unsupported_schema_exits_2_with_the_exact_line(tmp_path: Path) -> None:
    path = tmp_path / "s.ndjson"
    path.write_text('{"schema":2,"header":true}\n')
    line = assert_one_line_error(run_allsmi("verify", str(path)), 2)
    assert line == "allsmi verify: unsupported schema version 2, this allsmi supports schema 1"


def test_an_empty_file_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "e.ndjson"
    path.write_text("")
    line = assert_one_line_error(run_allsmi("verify", str(path)), 2)
    assert line == f"allsmi verify: no frames in {path}"


POISON = """
import sys
class Poison:
    def __getattr__(self, name):
        raise RuntimeError(f"device reader touched: {name}")
sys.modules["pynvml"] = Poison()
sys.modules["psutil"] = Poison()
from allsmi.app.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_verify_works_with_nvml_and_psutil_failing_on_any_call(tmp_path: Path) -> None:
    path = tmp_path / "p.ndjson.gz"
    rec.write_sink(path, 120, Codec.GZIP)
    result = subprocess.run(
        [sys.executable, "-c", POISON, "verify", "--deep", str(path)],
        capture_output=True,
        text=True,
        env=user_env(),
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "frames:     120" in result.stdout


POISON_REPLAY = """
import sys
class Poison:
    def __getattr__(self, name):
        raise RuntimeError(f"device reader touched: {name}")
sys.modules["pynvml"] = Poison()
sys.modules["psutil"] = Poison()
from datetime import timezone
from allsmi.app.replay_driver import ReplayDriver
from allsmi.app.tui import ReplayModel
from allsmi.domain.replay import KeyPressed, TickElapsed
driver = ReplayDriver.open(sys.argv[1], tz=timezone.utc)
model = ReplayModel(driver=driver, tz=timezone.utc)
for key in ["]", "]", "space", "g", "0", "0", ":", "0", "5", "enter", "right"]:
    model.key(key)
model.elapsed(2500)
lines = model.lines(120, 40)
print(driver.shown_index, len(lines))
"""


def test_replay_works_with_nvml_and_psutil_failing_on_any_call(tmp_path: Path) -> None:
    path = tmp_path / "p.ndjson.zst"
    rec.write_sink(path, 60, Codec.ZSTD)
    result = subprocess.run(
        [sys.executable, "-c", POISON_REPLAY, str(path)],
        capture_output=True,
        text=True,
        env=user_env(),
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["7", "40"]  # sought to 00:00:05, then played 2.5 s
