"""``allsmi snapshot`` as a user runs it, on this machine (no NVIDIA driver here)."""

from __future__ import annotations

import stat
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from allsmi.adapters import wire
from allsmi.domain.model import Frame

from .conftest import assert_one_line_error, run_allsmi

NO_DRIVER = not any(Path(p).exists() for p in ("/dev/nvidiactl", "/proc/driver/nvidia"))


def test_pretty_snapshot_prints_real_readings_and_exits_0() -> None:
    result = run_allsmi("snapshot", "--pretty", "--include", "gpu,cpu,memory,storage")
    assert result.returncode == 0, result.stderr
    frame = wire.decode_line(orjson.dumps(orjson.loads(result.stdout)), 1)
    assert isinstance(frame, Frame)
    assert frame.cpus and frame.cpus[0].total_threads and frame.cpus[0].utilization is not None
    assert frame.memory and frame.memory[0].total_bytes and frame.memory[0].total_bytes > 0
    assert frame.storage and any(s.mount_point == "/" for s in frame.storage)
    if NO_DRIVER:
        assert frame.gpus is None
        assert "nvidia: NVML Shared Library Not Found" in frame.errors


@pytest.mark.skipif(not NO_DRIVER, reason="this machine has an NVIDIA driver")
def test_gpu_only_snapshot_without_a_driver_exits_1_with_one_line() -> None:
    line = assert_one_line_error(run_allsmi("snapshot", "--include", "gpu"), 1)
    assert "NVML Shared Library Not Found" in line


def test_compact_snapshot_is_a_one_frame_recording_line() -> None:
    result = run_allsmi("snapshot", "--include", "cpu,memory")
    assert result.returncode == 0
    assert result.stdout.count("\n") == 1
    assert wire.slice_line(result.stdout.encode().rstrip(b"\n")) is not None


def test_prometheus_snapshot_parses_with_all_smi_names() -> None:
    result = run_allsmi("snapshot", "--format", "prometheus", "--include", "cpu,memory")
    assert result.returncode == 0
    names = {f.name for f in text_string_to_metric_families(result.stdout)}
    assert {"all_smi_cpu_utilization", "all_smi_memory_total_bytes"} <= names


def test_csv_snapshot_has_a_header_and_a_row_per_device() -> None:
    result = run_allsmi("snapshot", "--format", "csv", "--include", "cpu,memory")
    rows = result.stdout.strip().splitlines()
    assert rows[0].startswith("section,index,host_id")
    assert [r.split(",")[0] for r in rows[1:]] == ["cpu", "memory"]


def test_output_file_is_written_private(tmp_path: Path) -> None:
    out = tmp_path / "now.json"
    result = run_allsmi("snapshot", "--include", "memory", "-o", str(out))
    assert result.returncode == 0 and result.stdout == ""
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert orjson.loads(out.read_bytes())["memory"]
    assert [p.name for p in tmp_path.iterdir()] == ["now.json"]  # no temp file left


def test_output_through_a_symlink_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / "link.json").symlink_to(victim)
    line = assert_one_line_error(run_allsmi("snapshot", "-o", str(tmp_path / "link.json")), 1)
    assert "symlink" in line and victim.read_text() == "keep"


def test_output_into_a_missing_directory_is_refused_before_reading(tmp_path: Path) -> None:
    out = tmp_path / "no" / "such.json"
    line = assert_one_line_error(run_allsmi("snapshot", "-o", str(out)), 2)
    assert line == f"allsmi snapshot: cannot write {out}: directory {out.parent} does not exist"
    assert not out.parent.exists()


@pytest.mark.parametrize("out", ["/proc/x", "/proc/self/x"])
def test_output_where_no_file_can_be_made_names_the_path_not_a_temp_file(out: str) -> None:
    line = assert_one_line_error(run_allsmi("snapshot", "-o", out), 2)
    assert line.startswith(f"allsmi snapshot: cannot write {out}: ")
    assert "not supported" in line and ".tmp" not in line


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--include", "gpu,bogus"], "unknown section 'bogus'"),
        (["--format", "xml"], "invalid choice"),
    ],
)
def test_bad_flags_exit_2_with_one_line(args: list[str], needle: str) -> None:
    line = assert_one_line_error(run_allsmi("snapshot", *args), 2)
    assert needle in line
