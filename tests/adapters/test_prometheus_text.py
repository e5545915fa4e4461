"""The exporter's text: all-smi's families and labels (docs/architecture.md §3.3), written strictly.

Output is read back with ``prometheus_client``'s parser, an implementation independent of
ours, and with a few line-level checks for what that parser forgives (repeated HELP/TYPE,
scattered samples, duplicate label names).
"""

from __future__ import annotations

import platform
import re
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
from prometheus_client.parser import text_string_to_metric_families

from allsmi.adapters.prometheus.writer import render_metrics
from allsmi.domain.model import (
    Chassis,
    CoreUtilization,
    Cpu,
    CpuSocket,
    Fan,
    Frame,
    GpmMetrics,
    Gpu,
    GpuProcess,
    Memory,
    Storage,
)

FIXTURE = Path(__file__).parent.parent / "fixtures" / "all-smi-exporter-cpu-host.prom"
TRICKY_COMMAND = 'python -c "print(1)" C:\\tmp\\x\nsecond line'
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
LABEL_PAIR = re.compile(r'([^=,{}]+)="((?:[^"\\]|\\.)*)"')

Key = tuple[str, frozenset[tuple[str, str]]]


def gpu(host: str, n: int, **fields: Any) -> Gpu:
    base = Gpu(
        uuid=f"GPU-{host}-{n}",
        name="NVIDIA H100 80GB HBM3",
        device_type="GPU",
        host_id=f"{host}:9090",
        hostname=host,
        instance=host,
        utilization=37.5,
        temperature=61,
        used_memory=20 * 2**30,
        total_memory=80 * 2**30,
        frequency=1980,
        power_consumption=312.25,
        power_limit=700.0,
        performance_state=0,
        temperature_threshold_slowdown=87,
        temperature_threshold_shutdown=92,
        numa_node_id=n // 4,
        gpm_metrics=GpmMetrics(sm_occupancy=0.5, memory_bandwidth_utilization=0.25),
        detail={
            "driver_version": "550.54.15",
            "cuda_version": "12.4",
            "index": str(n),
            "power_limit_max": "700",
        },
    )
    return attrs.evolve(base, **fields)


def cpu(host: str) -> Cpu:
    return Cpu(
        host_id=f"{host}:9090",
        hostname=host,
        instance=host,
        cpu_model="AMD EPYC 9654",
        architecture="x86_64",
        platform_type="Amd",
        socket_count=2,
        total_cores=4,
        total_threads=8,
        base_frequency_mhz=2400,
        utilization=12.5,
        temperature=55,
        power_consumption=180.5,
        per_socket_info=(
            CpuSocket(socket_id=0, utilization=10.0, frequency_mhz=2400, temperature=54),
            CpuSocket(socket_id=1, utilization=15.0, frequency_mhz=2450),
        ),
        per_core_utilization=(
            CoreUtilization(core_id=0, core_type="Standard", utilization=1.5),
            CoreUtilization(core_id=1, core_type="Performance", utilization=2.5),
            CoreUtilization(core_id=2, core_type="Efficiency", utilization=3.5),
            CoreUtilization(core_id=3, core_type="Super", utilization=None),
        ),
    )


def two_host_frame() -> Frame:
    return Frame(
        t_ms=1_700_000_000_000,
        gpus=(
            gpu("dgx-a", 0),
            gpu("dgx-a", 1, utilization=None, power_consumption=None, temperature=None),
            gpu("dgx-b", 0, name='Weird "GPU", model\\X'),
        ),
        cpus=(cpu("dgx-a"), cpu("dgx-b")),
        memory=(
            Memory(
                host_id="dgx-a:9090",
                hostname="dgx-a",
                instance="dgx-a",
                total_bytes=2**40,
                used_bytes=2**39,
                available_bytes=2**39,
                free_bytes=2**38,
                buffers_bytes=2**20,
                cached_bytes=0,
                swap_total_bytes=2**33,
                swap_used_bytes=0,
                swap_free_bytes=2**33,
                utilization=50.0,
            ),
            Memory(
                host_id="dgx-b:9090",
                hostname="dgx-b",
                instance="dgx-b",
                total_bytes=2**40,
                used_bytes=2**30,
                swap_total_bytes=0,
                swap_used_bytes=0,
                swap_free_bytes=0,
            ),
        ),
        storage=(
            Storage(
                host_id="dgx-a:9090",
                hostname="dgx-a",
                mount_point="/",
                total_bytes=10**12,
                available_bytes=4 * 10**11,
            ),
            Storage(
                host_id="dgx-a:9090",
                hostname="dgx-a",
                mount_point="/data",
                index=1,
                total_bytes=10**13,
            ),
        ),
        chassis=(
            Chassis(
                host_id="dgx-a:9090",
                hostname="dgx-a",
                instance="dgx-a",
                total_power_watts=3100.5,
                inlet_temperature=22.5,
                outlet_temperature=None,
                fan_speeds=(Fan(id=0, name="FAN1", speed_rpm=8000), Fan(id=1, name="FAN2")),
                detail={"Product Name": "DGX H100", "Vendor": "NVIDIA", "BIOS Version": "1.2"},
            ),
        ),
        processes=(
            GpuProcess(
                host_id="dgx-a:9090",
                hostname="dgx-a",
                device_id=1,
                device_uuid="GPU-dgx-a-1",
                pid=4242,
                process_name="python",
                used_memory=2**30,
                cpu_percent=99.5,
                user="alice",
                start_time="01:02:03",
                command=TRICKY_COMMAND,
            ),
        ),
    )


def families(text: str) -> dict[str, dict[frozenset[tuple[str, str]], float]]:
    """Family name → {label set → value}, through prometheus_client's parser."""
    out: dict[str, dict[frozenset[tuple[str, str]], float]] = {}
    for family in text_string_to_metric_families(text):
        samples = out.setdefault(str(family.name), {})
        for sample in family.samples:
            assert sample.name == family.name
            samples[frozenset(sample.labels.items())] = float(sample.value)
    return out


def labels_of(text: str, name: str) -> list[dict[str, str]]:
    return [dict(labels) for labels in families(text).get(name, {})]


def value(text: str, name: str, **labels: str) -> float | None:
    """The value of the one sample of ``name`` whose labels include ``labels``."""
    samples = families(text).get(name, {})
    found = [v for k, v in samples.items() if labels.items() <= dict(k).items()]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else None


def test_every_family_has_one_help_and_one_type_before_contiguous_samples() -> None:
    text = render_metrics(two_host_frame(), version="1.2.3")
    helps: Counter[str] = Counter()
    types: Counter[str] = Counter()
    order: list[str] = []
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helps[line.split()[2]] += 1
            order.append(line.split()[2])
        elif line.startswith("# TYPE "):
            assert line.split()[3] == "gauge"
            assert order[-1] == line.split()[2], "TYPE must follow its HELP"
            types[line.split()[2]] += 1
        else:
            name = re.split(r"[{ ]", line, maxsplit=1)[0]
            assert order[-1] == name, f"sample of {name} outside its family block"
    assert len(order) == len(set(order)), "a family appears twice"
    assert helps == types == Counter(order)
    assert text.endswith("\n")
    assert {f.name for f in text_string_to_metric_families(text)} == set(order)


def test_gpu_families_round_trip_with_all_smi_labels() -> None:
    text = render_metrics(two_host_frame(), version="1.2.3")
    base = {
        "gpu": "NVIDIA H100 80GB HBM3",
        "instance": "dgx-a",
        "gpu_uuid": "GPU-dgx-a-0",
        "gpu_index": "0",
    }
    expected = {
        "all_smi_gpu_utilization": 37.5,
        "all_smi_gpu_memory_used_bytes": 20 * 2**30,
        "all_smi_gpu_memory_total_bytes": 80 * 2**30,
        "all_smi_gpu_temperature_celsius": 61,
        "all_smi_gpu_power_consumption_watts": 312.25,
        "all_smi_gpu_frequency_mhz": 1980,
        "all_smi_gpu_power_limit_current_watts": 700.0,
        "all_smi_gpu_power_limit_max_watts": 700.0,
        "all_smi_gpu_performance_state": 0,
        "all_smi_gpu_temperature_threshold_slowdown_celsius": 87,
        "all_smi_gpu_temperature_threshold_shutdown_celsius": 92,
        "all_smi_gpu_numa_node_id": 0,
        "all_smi_gpu_sm_occupancy": 0.5,
        "all_smi_gpu_memory_bandwidth_utilization": 0.25,
    }
    parsed = families(text)
    for name, want in expected.items():
        assert parsed[name][frozenset(base.items())] == want, name
        assert len(parsed[name]) in (2, 3), name  # the other GPUs have their own samples
    info = labels_of(text, "all_smi_gpu_info")
    assert {
        **base,
        "type": "GPU",
        "driver_version": "550.54.15",
        "cuda_version": "12.4",
        "index": "0",
        "power_limit_max": "700",
    } in info
    weird = value(text, "all_smi_gpu_utilization", gpu_uuid="GPU-dgx-b-0")
    assert weird == 37.5
    (odd,) = [d for d in labels_of(text, "all_smi_gpu_info") if d["instance"] == "dgx-b"]
    assert odd["gpu"] == 'Weird "GPU", model\\X'
    assert 'gpu="Weird \\"GPU\\", model\\\\X"' in text


def test_none_readings_produce_no_sample() -> None:
    text = render_metrics(two_host_frame(), version="1")
    for name in (
        "all_smi_gpu_utilization",
        "all_smi_gpu_power_consumption_watts",
        "all_smi_gpu_temperature_celsius",
    ):
        assert value(text, name, gpu_uuid="GPU-dgx-a-1") is None, name
        assert value(text, name, gpu_uuid="GPU-dgx-a-0") is not None, name
    assert value(text, "all_smi_gpu_frequency_mhz", gpu_uuid="GPU-dgx-a-1") == 1980
    assert value(text, "all_smi_cpu_core_utilization", instance="dgx-a", core_id="3") is None
    assert value(text, "all_smi_cpu_socket_temperature_celsius", socket_id="1") is None
    assert value(text, "all_smi_chassis_fan_speed_rpm", fan_name="FAN2") is None
    assert "all_smi_chassis_outlet_temperature_celsius" not in families(text)
    assert value(text, "all_smi_disk_available_bytes", mount_point="/data") is None


def test_non_finite_readings_produce_no_sample() -> None:
    frame = Frame(
        t_ms=0,
        gpus=(
            gpu("h", 0, utilization=float("nan"), power_consumption=float("inf")),
            gpu("h", 1, utilization=float("-inf"), detail={"power_limit_max": "nan"}),
        ),
    )
    text = render_metrics(frame, version="1")
    samples = [ln.rsplit(" ", 1)[1] for ln in text.splitlines() if not ln.startswith("#")]
    assert not [v for v in samples if v.lower().lstrip("+-") in ("nan", "inf")]
    parsed = families(text)
    assert "all_smi_gpu_utilization" not in parsed
    assert "all_smi_gpu_power_consumption_watts" in parsed  # GPU 1 still has a reading
    assert value(text, "all_smi_gpu_power_limit_max_watts", gpu_uuid="GPU-h-0") == 700
    assert value(text, "all_smi_gpu_power_limit_max_watts", gpu_uuid="GPU-h-1") is None


def test_process_labels_are_escaped_exactly_and_parse_back() -> None:
    text = render_metrics(two_host_frame(), version="1")
    escaped = 'command="python -c \\"print(1)\\" C:\\\\tmp\\\\x\\nsecond line"'
    assert escaped in text
    line = next(ln for ln in text.splitlines() if ln.startswith("all_smi_process_cpu_percent{"))
    assert line == (
        'all_smi_process_cpu_percent{pid="4242",name="python",user="alice",device_id="1",'
        f'gpu_index="1",device_uuid="GPU-dgx-a-1",{escaped}}} 99.5'
    )
    (labels,) = labels_of(text, "all_smi_process_memory_used_bytes")
    assert labels["command"] == TRICKY_COMMAND
    assert value(text, "all_smi_process_memory_used_bytes", pid="4242") == 2**30
    assert value(text, "all_smi_process_start_time_seconds", pid="4242") == 3723


def test_control_characters_and_lone_surrogates_are_dropped_from_label_values() -> None:
    proc = GpuProcess(
        host_id="h",
        hostname="h",
        device_id=0,
        device_uuid="GPU-0",
        pid=1,
        process_name="a\rb\x1b[2Jc\x85d\te",
        user="bob\udcff",
        used_memory=1,
    )
    text = render_metrics(Frame(t_ms=0, processes=(proc,)), version="1")
    assert all(ch == "\n" or ch >= " " for ch in text)
    assert '"ab[2Jcde"' in text
    (labels,) = labels_of(text, "all_smi_process_memory_used_bytes")
    assert labels["name"] == "ab[2Jcde" and labels["user"] == "bob?"
    text.encode("utf-8")  # a lone surrogate would make the page unencodable


def test_long_process_labels_are_truncated_on_a_character_boundary() -> None:
    command = "é" * 200  # 400 bytes, two per character
    proc = GpuProcess(
        host_id="h",
        hostname="h",
        device_id=0,
        device_uuid="GPU-0",
        pid=1,
        process_name="n" * 128,
        user="u" * 129,
        command=command,
        used_memory=1,
    )
    (labels,) = labels_of(
        render_metrics(Frame(t_ms=0, processes=(proc,)), version="1"),
        "all_smi_process_memory_used_bytes",
    )
    assert labels["command"] == "é" * 128 + "...(144 bytes truncated)"
    assert labels["name"] == "n" * 128
    assert labels["user"] == "u" * 128 + "...(1 bytes truncated)"
    odd = attrs.evolve(proc, command="x" + "é" * 200)  # byte 256 falls inside a character
    (labels,) = labels_of(
        render_metrics(Frame(t_ms=0, processes=(odd,)), version="1"),
        "all_smi_process_memory_used_bytes",
    )
    assert labels["command"] == "x" + "é" * 127 + "...(146 bytes truncated)"


def test_gpu_info_sanitises_detail_keys_into_valid_unique_label_names() -> None:
    detail = {
        "Source: Fan": "hwmon",
        "3D Engine": "busy",
        "GPU.Temp/Limit": "90",
        "type": "clash",
        "gpu_uuid": "clash",
        "__reserved": "x",
        "": "empty",
        "PCI-Bus": "0000:17:00.0",
        "pci_bus": "dup",
    }
    text = render_metrics(Frame(t_ms=0, gpus=(gpu("h", 0, detail=detail),)), version="1")
    (info,) = labels_of(text, "all_smi_gpu_info")
    assert info == {
        "gpu": "NVIDIA H100 80GB HBM3",
        "instance": "h",
        "gpu_uuid": "GPU-h-0",
        "gpu_index": "0",
        "type": "GPU",
        "source__fan": "hwmon",
        "_3d_engine": "busy",
        "gpu_temp_limit": "90",
        "pci_bus": "0000:17:00.0",
    }


def test_every_sample_has_valid_unique_label_names() -> None:
    frame = attrs.evolve(two_host_frame(), gpus=(gpu("h", 0, detail={"a b": "1", "a_b": "2"}),))
    for line in render_metrics(frame, version="1").splitlines():
        if line.startswith("#"):
            continue
        block = line[line.index("{") + 1 : line.rindex("}")]
        names = [m.group(1) for m in LABEL_PAIR.finditer(block)]
        assert names, line
        assert len(names) == len(set(names)), line
        assert all(LABEL_NAME.fullmatch(n) and not n.startswith("__") for n in names), line


def test_cpu_families_with_sockets_and_cores() -> None:
    text = render_metrics(two_host_frame(), version="1")
    base = {"cpu_model": "AMD EPYC 9654", "instance": "dgx-a", "hostname": "dgx-a", "index": "0"}
    key = frozenset(base.items())
    parsed = families(text)
    info = key | {("architecture", "x86_64"), ("platform_type", "Amd")}
    assert parsed["all_smi_cpu_info"][info] == 1
    for name, want in {
        "all_smi_cpu_utilization": 12.5,
        "all_smi_cpu_socket_count": 2,
        "all_smi_cpu_core_count": 4,
        "all_smi_cpu_thread_count": 8,
        "all_smi_cpu_frequency_mhz": 2400,
        "all_smi_cpu_temperature_celsius": 55,
        "all_smi_cpu_power_consumption_watts": 180.5,
    }.items():
        assert parsed[name][key] == want, name
    socket = {
        "cpu_model": "AMD EPYC 9654",
        "instance": "dgx-a",
        "hostname": "dgx-a",
        "cpu_index": "0",
        "socket_id": "1",
    }
    assert parsed["all_smi_cpu_socket_utilization"][frozenset(socket.items())] == 15.0
    assert parsed["all_smi_cpu_socket_frequency_mhz"][frozenset(socket.items())] == 2450
    cores = {
        (d["core_id"], d["core_type"]): v
        for k, v in parsed["all_smi_cpu_core_utilization"].items()
        if (d := dict(k))["instance"] == "dgx-a"
    }
    assert cores == {("0", "C"): 1.5, ("1", "P"): 2.5, ("2", "E"): 3.5}
    assert set(labels_of(text, "all_smi_cpu_core_utilization")[0]) == {
        "cpu_model",
        "instance",
        "hostname",
        "core_id",
        "core_type",
    }


def test_cpu_info_writes_unknown_platforms_in_all_smis_form() -> None:
    row = attrs.evolve(cpu("h"), platform_type="RISC-V", cpu_model=None, architecture=None)
    (info,) = labels_of(render_metrics(Frame(t_ms=0, cpus=(row,)), version="1"), "all_smi_cpu_info")
    assert info["platform_type"] == 'Other("RISC-V")'
    assert info["cpu_model"] == "" and info["architecture"] == ""


def test_memory_swap_and_buffer_families_only_when_positive() -> None:
    text = render_metrics(two_host_frame(), version="1")
    a = {"instance": "dgx-a", "hostname": "dgx-a", "index": "0"}
    assert value(text, "all_smi_memory_total_bytes", **a) == 2**40
    assert value(text, "all_smi_memory_used_bytes", **a) == 2**39
    assert value(text, "all_smi_memory_available_bytes", **a) == 2**39
    assert value(text, "all_smi_memory_free_bytes", **a) == 2**38
    assert value(text, "all_smi_memory_utilization", **a) == 50.0
    assert value(text, "all_smi_swap_total_bytes", **a) == 2**33
    assert value(text, "all_smi_swap_used_bytes", **a) == 0
    assert value(text, "all_smi_swap_free_bytes", **a) == 2**33
    assert value(text, "all_smi_memory_buffers_bytes", **a) == 2**20
    assert "all_smi_memory_cached_bytes" not in families(text)  # 0 bytes cached
    assert value(text, "all_smi_swap_total_bytes", instance="dgx-b") is None  # no swap
    assert value(text, "all_smi_memory_buffers_bytes", instance="dgx-b") is None
    line = 'all_smi_memory_total_bytes{instance="dgx-a",hostname="dgx-a",index="0"} 1099511627776'
    assert line + "\n" in text


def test_disk_and_chassis_families() -> None:
    text = render_metrics(two_host_frame(), version="1")
    disk = {"instance": "dgx-a", "mount_point": "/data", "index": "1"}
    assert families(text)["all_smi_disk_total_bytes"][frozenset(disk.items())] == 10**13
    assert value(text, "all_smi_disk_available_bytes", mount_point="/") == 4 * 10**11
    (info,) = labels_of(text, "all_smi_chassis_info")
    assert info == {
        "hostname": "dgx-a",
        "instance": "dgx-a",
        "product_name": "DGX H100",
        "vendor": "NVIDIA",
        "bios_version": "1.2",
    }
    assert value(text, "all_smi_chassis_power_watts", hostname="dgx-a") == 3100.5
    assert value(text, "all_smi_chassis_inlet_temperature_celsius", hostname="dgx-a") == 22.5
    (fan,) = labels_of(text, "all_smi_chassis_fan_speed_rpm")
    assert fan == {"hostname": "dgx-a", "instance": "dgx-a", "fan_id": "0", "fan_name": "FAN1"}
    assert value(text, "all_smi_chassis_fan_speed_rpm", fan_id="0") == 8000


def test_up_and_build_info_name_every_host() -> None:
    text = render_metrics(two_host_frame(), ready=True, version="1.2.3")
    assert value(text, "all_smi_up", instance="dgx-a", hostname="dgx-a") == 1
    assert value(text, "all_smi_up", instance="dgx-b", hostname="dgx-b") == 1
    builds = labels_of(text, "all_smi_build_info")
    assert [b["instance"] for b in builds] == ["dgx-a", "dgx-b"]
    assert {b["version"] for b in builds} == {"1.2.3"}
    assert all(b["os"] and b["arch"] for b in builds)
    down = render_metrics(two_host_frame(), ready=False, version="1.2.3")
    assert value(down, "all_smi_up", instance="dgx-a") == 0


def test_empty_frame_reports_this_machine_as_not_up() -> None:
    text = render_metrics(Frame(t_ms=0), ready=False, version="0.1.0")
    assert set(families(text)) == {"all_smi_up", "all_smi_build_info"}
    node = platform.node()
    assert value(text, "all_smi_up", instance=node, hostname=node) == 0
    assert value(text, "all_smi_build_info", version="0.1.0") == 1


def test_numbers_are_plain_integers_or_exponent_free_round_trip_floats() -> None:
    frame = Frame(
        t_ms=0,
        gpus=(
            gpu("h", 0, utilization=1e-05, power_consumption=0.1 + 0.2, used_memory=2**63 + 1),
            gpu("h", 1, utilization=12.0, power_consumption=1e21),
        ),
    )
    text = render_metrics(frame, version="1")
    lines = [ln for ln in text.splitlines() if not ln.startswith("#")]
    assert all("e" not in ln.rsplit(" ", 1)[1].lower() for ln in lines)
    assert 'gpu_index="0"} 0.00001\n' in text
    assert 'gpu_index="0"} 0.30000000000000004\n' in text
    assert f'gpu_index="0"}} {2**63 + 1}\n' in text
    assert 'gpu_index="1"} 12.0\n' in text
    assert 'gpu_index="1"} 1000000000000000000000\n' in text
    assert value(text, "all_smi_gpu_utilization", gpu_index="0") == 1e-05
    assert value(text, "all_smi_gpu_power_consumption_watts", gpu_index="0") == 0.1 + 0.2
    assert value(text, "all_smi_gpu_power_consumption_watts", gpu_index="1") == 1e21


def test_only_gpu_npu_tpu_rows_are_exported_and_gpu_index_falls_back_to_position() -> None:
    rows = (
        gpu("h", 0, device_type="CPU", detail={}),
        gpu("h", 1, device_type="NPU", detail={}),
        gpu("h", 2, device_type="TPU", detail={"index": "7"}),
        gpu("other", 0, detail={}),
    )
    infos = labels_of(render_metrics(Frame(t_ms=0, gpus=rows), version="1"), "all_smi_gpu_info")
    assert sorted((i["gpu_uuid"], i["gpu_index"], i["type"]) for i in infos) == [
        ("GPU-h-1", "1", "NPU"),
        ("GPU-h-2", "7", "TPU"),
        ("GPU-other-0", "0", "GPU"),
    ]


def test_cpu_host_matches_the_all_smi_fixture_names_labels_and_values() -> None:
    fixture = FIXTURE.read_text(encoding="utf-8")
    host = "a8416cc9eadf"
    frame = Frame(
        t_ms=0,
        cpus=(
            Cpu(
                host_id=host,
                hostname=host,
                instance=host,
                socket_count=1,
                total_cores=3,
                total_threads=3,
                base_frequency_mhz=0,
                utilization=0.3720316673003178,
                per_socket_info=(
                    CpuSocket(socket_id=0, utilization=0.3720316673003178, frequency_mhz=0),
                ),
                per_core_utilization=(
                    CoreUtilization(core_id=0, utilization=0.916535433070866),
                    CoreUtilization(core_id=1, utilization=0.5288702528879058),
                    CoreUtilization(core_id=2, utilization=0.6755426884750267),
                ),
            ),
        ),
        memory=(
            Memory(
                host_id=host,
                hostname=host,
                instance=host,
                total_bytes=4294967296,
                used_bytes=0,
                available_bytes=4294967296,
                free_bytes=4294967296,
                buffers_bytes=0,
                cached_bytes=0,
                swap_total_bytes=0,
                swap_used_bytes=0,
                swap_free_bytes=0,
                utilization=0.0,
            ),
        ),
        storage=(
            Storage(
                host_id=host,
                hostname=host,
                mount_point="/",
                index=0,
                total_bytes=3597260410880,
                available_bytes=3566846046208,
            ),
            Storage(
                host_id=host,
                hostname=host,
                mount_point="/all-smi",
                index=1,
                total_bytes=254633621585920,
                available_bytes=28885287698432,
            ),
        ),
    )
    theirs = families(fixture)
    ours = families(render_metrics(frame, version="0.1.0"))
    # all-smi's runtime families describe the container, which the model does not carry; the
    # fixture predates all_smi_up/all_smi_build_info/all_smi_cpu_info.
    not_ours = {"all_smi_container_runtime_info", "all_smi_runtime_environment"}
    assert set(theirs) - not_ours <= set(ours)
    assert set(ours) - set(theirs) == {"all_smi_up", "all_smi_build_info", "all_smi_cpu_info"}
    for name in set(theirs) - not_ours:
        their_names = {frozenset(dict(k)) for k in theirs[name]}
        our_names = {frozenset(dict(k)) for k in ours[name]}
        assert our_names == their_names, name
        assert ours[name] == theirs[name], name  # same samples, label values and values
