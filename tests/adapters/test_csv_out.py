"""``snapshot --format csv``: one row per device in all-smi's columns, read back with csv."""

from __future__ import annotations

import csv
import io

from allsmi.adapters.csv_out import COLUMNS, render_csv
from allsmi.domain.model import Chassis, Cpu, Frame, Gpu, GpuProcess, Memory, Storage

HEADER = [
    "section",
    "index",
    "host_id",
    "hostname",
    "name",
    "uuid",
    "utilization",
    "used_memory",
    "total_memory",
    "temperature",
    "power_consumption",
]
TRICKY_NAME = 'NVIDIA H100, "SXM5"'


def read(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def frame() -> Frame:
    return Frame(
        t_ms=0,
        gpus=(
            Gpu(uuid="GPU-0", name=TRICKY_NAME, device_type="GPU", host_id="a:9090",
                hostname="a", instance="a", utilization=37.5, temperature=61,
                used_memory=2**34, total_memory=80 * 2**30, power_consumption=312.25),
            Gpu(uuid="GPU-1", name="H100\nline two", device_type="GPU", host_id="b:9090",
                hostname="b", instance="b", utilization=None, power_consumption=float("nan")),
        ),
        cpus=(
            Cpu(host_id="a:9090", hostname="a", instance="a", index=1, cpu_model="EPYC",
                utilization=12.5, temperature=55, power_consumption=None),
        ),
        memory=(
            Memory(host_id="a:9090", hostname="a", instance="a", total_bytes=2**40,
                   used_bytes=2**39, utilization=50.0),
        ),
        chassis=(Chassis(host_id="a:9090", hostname="a", instance="a", total_power_watts=3100.5),),
        processes=(
            GpuProcess(host_id="a:9090", hostname="a", device_id=0, device_uuid="GPU-0",
                       pid=42, process_name="python", used_memory=2**30, gpu_utilization=80.0),
        ),
        storage=(
            Storage(host_id="a:9090", hostname="a", mount_point="/data", index=3,
                    total_bytes=1000, available_bytes=400),
            Storage(host_id="a:9090", hostname="a", mount_point="/x", total_bytes=1000),
        ),
    )  # fmt: skip


def test_empty_frame_is_just_the_header() -> None:
    text = render_csv(Frame(t_ms=0))
    assert text == ",".join(HEADER) + "\r\n"
    assert list(COLUMNS) == HEADER


def test_one_row_per_device_in_section_order_with_its_cells() -> None:
    rows = read(render_csv(frame()))
    assert rows[0] == HEADER
    assert rows[1:] == [
        ["gpu", "0", "a:9090", "a", TRICKY_NAME, "GPU-0", "37.5", str(2**34), str(80 * 2**30),
         "61", "312.25"],
        ["gpu", "1", "b:9090", "b", "H100\nline two", "GPU-1", "", "", "", "", ""],
        ["cpu", "1", "a:9090", "a", "EPYC", "", "12.5", "", "", "55", ""],
        ["memory", "0", "a:9090", "a", "", "", "50.0", str(2**39), str(2**40), "", ""],
        ["chassis", "0", "a:9090", "a", "", "", "", "", "", "", "3100.5"],
        ["process", "0", "a:9090", "a", "python", "GPU-0", "80.0", str(2**30), "", "", ""],
        ["storage", "3", "a:9090", "a", "/data", "", "", "600", "1000", "", ""],
        ["storage", "0", "a:9090", "a", "/x", "", "", "", "1000", "", ""],
    ]  # fmt: skip


def test_a_name_with_a_comma_and_quotes_is_quoted_per_rfc_4180() -> None:
    text = render_csv(frame())
    assert ',"NVIDIA H100, ""SXM5""",GPU-0,' in text
    assert ',"H100\nline two",GPU-1,' in text
    assert read(text)[1][4] == TRICKY_NAME


def test_records_end_with_crlf_and_every_row_has_every_column() -> None:
    text = render_csv(frame())
    assert text.endswith("\r\n")
    assert text.count("\r\n") == 9  # header + 8 devices; the embedded newline is bare
    assert {len(row) for row in read(text)} == {len(HEADER)}


def test_sections_that_were_not_collected_add_no_rows() -> None:
    only_memory = Frame(t_ms=0, memory=frame().memory, gpus=())
    assert [row[0] for row in read(render_csv(only_memory))[1:]] == ["memory"]
