"""``/metrics`` text back into model rows: all-smi's real page, our own page (round trip),
the exposition grammar's corners, and pages with garbage in them."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allsmi.adapters.prometheus.parser import HostRows, parse_metrics
from allsmi.adapters.prometheus.writer import render_metrics
from allsmi.adapters.simulation.simulator import ClusterSimulator, ClusterSpec
from allsmi.domain.model import (
    SECTIONS,
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
    NvLinkRemoteDevice,
    Storage,
)

FIXTURE = Path(__file__).parent.parent / "fixtures" / "all-smi-exporter-cpu-host.prom"
T0 = 1_776_513_600_000
TARGET = "http://cluster-gw:9090/"
HOST_ID = "cluster-gw:9090"
GPU_LABELS = 'gpu="H100",instance="n1",gpu_uuid="GPU-1",gpu_index="0"'
EMPTY = HostRows()
SIM_PAGE = render_metrics(ClusterSimulator(ClusterSpec(nodes=1)).frame(T0, SECTIONS), version="x")


def gpu_value(text: str) -> Gpu:
    rows = parse_metrics(text, "n1:9090")
    assert len(rows.gpus) == 1, rows
    return rows.gpus[0]


# --- (1) all-smi's real page ---------------------------------------------------------


def test_real_all_smi_page() -> None:
    rows = parse_metrics(FIXTURE.read_text(), "http://a8416cc9eadf:9090/")
    assert rows.skipped_lines == 0
    assert not rows.gpus and not rows.chassis and not rows.processes

    (cpu,) = rows.cpus
    assert (cpu.host_id, cpu.hostname, cpu.instance) == ("a8416cc9eadf:9090",) + (
        "a8416cc9eadf",
    ) * 2
    assert cpu.index == 0
    assert cpu.cpu_model is None  # cpu_model="" on the page
    assert cpu.utilization == 0.3720316673003178
    assert (cpu.socket_count, cpu.total_cores, cpu.total_threads) == (1, 3, 3)
    assert cpu.base_frequency_mhz is None  # 0 MHz: no reading
    assert cpu.per_socket_info == (
        CpuSocket(socket_id=0, utilization=0.3720316673003178, frequency_mhz=None),
    )
    assert cpu.per_core_utilization == (
        CoreUtilization(core_id=0, core_type="Standard", utilization=0.916535433070866),
        CoreUtilization(core_id=1, core_type="Standard", utilization=0.5288702528879058),
        CoreUtilization(core_id=2, core_type="Standard", utilization=0.6755426884750267),
    )

    (memory,) = rows.memory
    assert memory.total_bytes == 4294967296
    assert memory.free_bytes == 4294967296  # all-smi's own parser drops this one
    assert memory.available_bytes == 4294967296
    assert memory.used_bytes == 0
    assert memory.utilization == 0.0
    assert memory.swap_total_bytes is None and memory.buffers_bytes is None

    assert rows.storage == (
        Storage(
            host_id="a8416cc9eadf:9090",
            hostname="a8416cc9eadf",
            mount_point="/",
            index=0,
            total_bytes=3597260410880,
            available_bytes=3566846046208,
        ),
        Storage(
            host_id="a8416cc9eadf:9090",
            hostname="a8416cc9eadf",
            mount_point="/all-smi",
            index=1,
            total_bytes=254633621585920,
            available_bytes=28885287698432,
        ),
    )


# --- (2) round trip through our own renderer -------------------------------------------

# What render_metrics does not write (all-smi has no family for it), blanked on the
# original before comparing.


def exported_gpu(gpu: Gpu) -> Gpu:
    return attrs.evolve(
        gpu,
        host_id=HOST_ID,
        memory_utilization=None,
        fan_speed_percent=None,
        gpu_core_count=None,
        nvlink_remote_devices=(),
    )


def exported_cpu(cpu: Cpu) -> Cpu:
    return attrs.evolve(
        cpu,
        host_id=HOST_ID,
        max_frequency_mhz=None,
        current_frequency_mhz=None,
        cache_size_mb=None,
        load_average=None,
        per_socket_info=tuple(
            attrs.evolve(s, cores=None, threads=None) for s in cpu.per_socket_info
        ),
        # a core's one family is its utilization: no reading, no sample, no core
        per_core_utilization=tuple(
            c for c in cpu.per_core_utilization if c.utilization is not None
        ),
    )


def exported_memory(memory: Memory) -> Memory:
    swap = (memory.swap_total_bytes or 0) > 0
    return attrs.evolve(
        memory,
        host_id=HOST_ID,
        buffers_bytes=memory.buffers_bytes or None,  # written only when > 0
        cached_bytes=memory.cached_bytes or None,
        swap_total_bytes=memory.swap_total_bytes if swap else None,
        swap_used_bytes=memory.swap_used_bytes if swap else None,
        swap_free_bytes=memory.swap_free_bytes if swap else None,
    )


def exported_chassis(chassis: Chassis) -> Chassis:
    return attrs.evolve(
        chassis,
        host_id=HOST_ID,
        psu_status=(),
        fan_speeds=tuple(attrs.evolve(f, max_rpm=None) for f in chassis.fan_speeds),
    )


def exported_process(proc: GpuProcess, hostname: str) -> GpuProcess:
    return GpuProcess(
        host_id=HOST_ID,
        hostname=hostname,
        device_id=proc.device_id,
        device_uuid=proc.device_uuid,
        pid=proc.pid,
        process_name=proc.process_name,
        used_memory=proc.used_memory,
        cpu_percent=proc.cpu_percent,
        user=proc.user,
        start_time=proc.start_time,
        command=proc.command,
    )


def assert_round_trip(frame: Frame, rows: HostRows, process_host: str | None) -> None:
    assert rows.skipped_lines == 0
    assert rows.gpus == tuple(exported_gpu(g) for g in frame.gpus or ())
    assert rows.cpus == tuple(exported_cpu(c) for c in frame.cpus or ())
    assert rows.memory == tuple(exported_memory(m) for m in frame.memory or ())
    assert rows.storage == tuple(attrs.evolve(d, host_id=HOST_ID) for d in frame.storage or ())
    assert rows.chassis == tuple(exported_chassis(c) for c in frame.chassis or ())
    expected = [exported_process(p, process_host or HOST_ID) for p in frame.processes or ()]
    assert rows.processes == tuple(sorted(expected, key=lambda p: (p.device_id, p.pid)))


@pytest.mark.parametrize("nodes", [1, 3])
def test_round_trip_simulator(nodes: int) -> None:
    sim = ClusterSimulator(ClusterSpec(nodes=nodes))
    sim.advance(30_000)
    frame = sim.frame(T0, SECTIONS)
    rows = parse_metrics(render_metrics(frame, version="0.1.0"), TARGET)
    assert len(rows.gpus) == 8 * nodes and len(rows.cpus) == nodes
    assert len(rows.cpus[0].per_core_utilization) == 64
    # One host on the page: processes are that host's; several: only the target is known.
    assert_round_trip(frame, rows, "node-01" if nodes == 1 else None)


def test_round_trip_simulator_node_parts() -> None:
    parts = ClusterSimulator(ClusterSpec(nodes=1)).node_frame_parts(0, T0)
    assert parts is not None
    frame = Frame(
        t_ms=T0,
        gpus=parts.gpus,
        cpus=parts.cpus,
        memory=parts.memory,
        chassis=parts.chassis,
        processes=parts.processes,
        storage=parts.storage,
    )
    rows = parse_metrics(render_metrics(frame, version="0.1.0"), TARGET)
    assert_round_trip(frame, rows, parts.hostname)


def hand_frame() -> Frame:
    """Two hosts, every exported field, awkward values (negatives, tiny, escapes)."""

    def gpu(host: str, n: int, **fields: object) -> Gpu:
        base = Gpu(
            uuid=f"GPU-{host}-{n}",
            name='Weird "GPU", model\\X' if n else "NVIDIA H100 80GB HBM3",
            device_type="GPU" if n else "NPU",
            host_id=HOST_ID,
            hostname=host,
            instance=host,
            utilization=37.5,
            temperature=-3,
            used_memory=20 * 2**30,
            total_memory=80 * 2**30,
            frequency=1980,
            power_consumption=1e-05,
            power_limit=700.0,
            performance_state=2,
            temperature_threshold_slowdown=87,
            temperature_threshold_shutdown=92,
            numa_node_id=-1,
            gpm_metrics=GpmMetrics(sm_occupancy=0.5, memory_bandwidth_utilization=None),
            detail={
                "driver_version": "550.54.15",
                "cuda_version": "12.4",
                "index": str(n),
                "power_limit_max": "700",
                "serial": 'line1\nline2 "q" \\',
            },
        )
        return attrs.evolve(base, **fields)  # type: ignore[arg-type]

    cores = (
        CoreUtilization(core_id=0, core_type="Standard", utilization=1.5),
        CoreUtilization(core_id=1, core_type="Performance", utilization=2.5),
        CoreUtilization(core_id=2, core_type="Efficiency", utilization=3.5),
        CoreUtilization(core_id=3, core_type="Super", utilization=None),
    )
    return Frame(
        t_ms=T0,
        gpus=(
            gpu("dgx-a", 0),
            gpu("dgx-a", 1, utilization=None, power_consumption=None, temperature=None),
            gpu("dgx-b", 0, gpm_metrics=None, performance_state=None),
        ),
        cpus=tuple(
            Cpu(
                host_id=HOST_ID,
                hostname=host,
                instance=host,
                cpu_model="AMD EPYC 9654",
                architecture="x86_64",
                platform_type=platform,
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
                per_core_utilization=cores,
            )
            for host, platform in (("dgx-a", "Amd"), ("dgx-b", "RISC-V thing"))
        ),
        memory=(
            Memory(
                host_id=HOST_ID,
                hostname="dgx-a",
                instance="dgx-a",
                total_bytes=2**40,
                used_bytes=2**39,
                available_bytes=2**39,
                free_bytes=2**38,
                buffers_bytes=2**20,
                cached_bytes=3 * 2**30,
                swap_total_bytes=2**33,
                swap_used_bytes=0,
                swap_free_bytes=2**33,
                utilization=50.0,
            ),
            Memory(host_id=HOST_ID, hostname="dgx-b", instance="dgx-b", total_bytes=2**40),
        ),
        storage=(
            Storage(HOST_ID, "dgx-a", "/", 0, total_bytes=10**12, available_bytes=4 * 10**11),
            Storage(HOST_ID, "dgx-a", "/data", 1, total_bytes=10**13),
            Storage(HOST_ID, "dgx-b", '/mnt/we"ird\\path', 0, total_bytes=5, available_bytes=0),
        ),
        chassis=(
            Chassis(
                host_id=HOST_ID,
                hostname="dgx-a",
                instance="dgx-a",
                total_power_watts=3100.5,
                inlet_temperature=-2.5,
                outlet_temperature=None,
                thermal_pressure="Nominal",
                fan_speeds=(Fan(id=0, name="FAN1", speed_rpm=8000), Fan(id=1, name="FAN2")),
                detail={"Product Name": "DGX H100", "Vendor": "NVIDIA", "BIOS Version": "1.2"},
            ),
        ),
        processes=(
            GpuProcess(
                host_id=HOST_ID,
                hostname="dgx-a",
                device_id=1,
                device_uuid="GPU-dgx-a-1",
                pid=4242,
                process_name="python",
                used_memory=2**30,
                cpu_percent=99.5,
                user="alice",
                start_time="01:02:03",
                command='python -c "print(1)" C:\\tmp\\x\nsecond line',
            ),
        ),
    )


def test_round_trip_hand_built_two_hosts() -> None:
    frame = hand_frame()
    rows = parse_metrics(render_metrics(frame, version="0.1.0"), TARGET)
    # Fans without a reading have no sample, so they cannot come back.
    (chassis,) = frame.chassis or ()
    fans = tuple(f for f in chassis.fan_speeds if f.speed_rpm is not None)
    frame = attrs.evolve(frame, chassis=(attrs.evolve(chassis, fan_speeds=fans),))
    assert_round_trip(frame, rows, None)
    assert rows.gpus[0].device_type == "NPU"
    assert rows.cpus[1].platform_type == "RISC-V thing"  # back from Other("…")
    assert rows.gpus[1].detail["serial"] == 'line1\nline2 "q" \\'


# --- (3) the grammar -------------------------------------------------------------------


def test_exponents_negatives_and_non_finite() -> None:
    text = "\n".join(
        (
            f"all_smi_gpu_utilization{{{GPU_LABELS}}} 2E-2",
            f"all_smi_gpu_memory_used_bytes{{{GPU_LABELS}}} 1.5e3",
            f"all_smi_gpu_memory_total_bytes{{{GPU_LABELS}}} 8.0E+10",
            f"all_smi_gpu_power_consumption_watts{{{GPU_LABELS}}} NaN",
            f"all_smi_gpu_temperature_celsius{{{GPU_LABELS}}} +Inf",
            f"all_smi_gpu_frequency_mhz{{{GPU_LABELS}}} -Inf",
            f"all_smi_gpu_numa_node_id{{{GPU_LABELS}}} -1",
            f"all_smi_gpu_power_limit_current_watts{{{GPU_LABELS}}} -12.5",
            f"all_smi_gpu_temperature_threshold_shutdown_celsius{{{GPU_LABELS}}} -12.5",
            f"all_smi_gpu_performance_state{{{GPU_LABELS}}} 2.6",
            f"all_smi_gpu_power_limit_current_watts{{{GPU_LABELS}}} {'9' * 400}",
            f"all_smi_gpu_temperature_threshold_slowdown_celsius{{{GPU_LABELS}}} 1e400",
        )
    )
    gpu = gpu_value(text)
    assert gpu.utilization == pytest.approx(0.02)
    assert gpu.used_memory == 1500 and isinstance(gpu.used_memory, int)
    assert gpu.total_memory == 80_000_000_000
    assert gpu.power_consumption is None
    assert gpu.temperature is None
    assert gpu.frequency is None
    assert gpu.numa_node_id == -1
    assert gpu.power_limit is None  # the last sample wins: a 400-digit integer is no reading
    assert gpu.temperature_threshold_slowdown is None  # 1e400 overflows to +Inf
    assert gpu.temperature_threshold_shutdown == -12  # negative kept, rounded to the int field
    assert gpu.performance_state == 3  # rounded to the int field
    assert gpu.fan_speed_percent is None  # never on the page: absent, not 0


def test_escaped_labels_timestamp_help_type_and_blank_lines() -> None:
    text = (
        "# A free comment line\n"
        "# HELP all_smi_gpu_info GPU info with \\\\ and \\n escapes\n"
        "# TYPE all_smi_gpu_info info\n"  # all-smi's mock writes this invalid type
        "\n"
        'all_smi_gpu_info{gpu="A \\"quoted\\" \\\\ name\\nline2",instance="n1",'
        'gpu_uuid="GPU-1",gpu_index="0",type="GPU",driver_version="550"} 1\n'
        "\n"
        "# HELP all_smi_gpu_utilization GPU utilization percentage\n"
        "# TYPE all_smi_gpu_utilization gauge\n"
        f"all_smi_gpu_utilization{{{GPU_LABELS}}} 42.5 1700000000000\n"
        "   \n"
    )
    rows = parse_metrics(text, "n1:9090")
    assert rows.skipped_lines == 0
    (gpu,) = rows.gpus
    assert gpu.name == 'A "quoted" \\ name\nline2'
    assert gpu.utilization == 42.5
    assert gpu.detail == {"driver_version": "550", "index": "0"}
    assert gpu.device_type == "GPU"


def test_all_smi_spacing_and_repeated_help_type() -> None:
    labels = 'instance="h", mount_point="/x", index="0"'
    block = (
        "# HELP all_smi_disk_total_bytes Total disk space in bytes\n"
        "# TYPE all_smi_disk_total_bytes gauge\n"
        f"all_smi_disk_total_bytes{{{labels}}} 100\n"
    )
    rows = parse_metrics(block + block.replace("/x", "/y").replace('"0"', '"1"'), "h")
    assert [(d.mount_point, d.index, d.total_bytes) for d in rows.storage] == [
        ("/x", 0, 100),
        ("/y", 1, 100),
    ]


def test_older_mock_shape() -> None:
    text = (
        "# TYPE all_smi_cpu_model info\n"
        'all_smi_cpu_model{instance="node-0001",model="Intel Xeon 8480+"} 1\n'
        'all_smi_cpu_utilization{instance="node-0001"} 23.5\n'
        'all_smi_cpu_core_count{instance="node-0001"} 56\n'
        'all_smi_memory_total_bytes{instance="node-0001"} 1099511627776\n'
        'all_smi_memory_free_bytes{instance="node-0001"} 5e11\n'
        'all_smi_chassis_power_watts{hostname="node-0001",instance="node-0001"} 4200.5\n'
        f"all_smi_gpu_pstate{{{GPU_LABELS}}} 0\n"
    )
    rows = parse_metrics(text, "http://localhost:10001")
    (cpu,) = rows.cpus
    assert (cpu.host_id, cpu.hostname, cpu.instance) == (
        "localhost:10001",
        "node-0001",
        "node-0001",
    )
    assert (cpu.cpu_model, cpu.utilization, cpu.total_cores) == ("Intel Xeon 8480+", 23.5, 56)
    (memory,) = rows.memory
    assert (memory.total_bytes, memory.free_bytes) == (2**40, 500_000_000_000)
    (chassis,) = rows.chassis
    assert chassis.total_power_watts == 4200.5
    assert rows.gpus[0].performance_state == 0


def test_all_smi_only_families() -> None:
    """Families all-smi writes and our renderer does not."""
    host = 'hostname="h",instance="h"'
    text = "\n".join(
        (
            f'all_smi_chassis_info{{{host},product_name="X1",board="B",version="v2",'
            'platform="nvidia"} 1',
            f"all_smi_chassis_cpu_power_watts{{{host}}} 250.5",
            f'all_smi_chassis_fan_speed_rpm{{{host},fan_id="3",fan_name="SYS"}} 5400',
            f"all_smi_gpu_temperature_threshold_max_operating_celsius{{{GPU_LABELS}}} 87",
            f'all_smi_gpu_gsp_firmware_version_info{{{GPU_LABELS},version="550.1"}} 1',
            f'all_smi_nvlink_remote_device_type{{{GPU_LABELS},link_index="1",'
            'remote_type="switch"} 1',
            f'all_smi_nvlink_remote_device_type{{{GPU_LABELS},link_index="0",remote_type="gpu",'
            'bandwidth_mb_s="25000"} 1',
            f"all_smi_gpu_memory_bandwidth_utilization{{{GPU_LABELS}}} 0.25",
            'all_smi_cpu_socket_temperature_celsius{cpu_model="M",instance="h",hostname="h",'
            'cpu_index="0",socket_id="1"} 61',
            'all_smi_cpu_core_utilization{cpu_model="M",instance="h",hostname="h",core_id="7",'
            'core_type="E"} 9.5',
            'all_smi_process_memory_used_bytes{pid="77",name="",user="bob",device_id="0",'
            'gpu_index="0",device_uuid="GPU-1",command="run"} 1024',
            'all_smi_process_start_time_seconds{pid="77",name="",user="bob",device_id="0",'
            'gpu_index="0",device_uuid="GPU-1",command="run"} 65',
            'all_smi_energy_consumed_joules_total{host="h",scope="cpu"} 12.5',
        )
    )
    rows = parse_metrics(text, "h:9090")
    (chassis,) = rows.chassis
    assert chassis.detail == {
        "Product Name": "X1",
        "Board": "B",
        "Version": "v2",
        "platform": "nvidia",
        "cpu_power_watts": "250.5",
    }
    assert chassis.fan_speeds == (Fan(id=3, name="SYS", speed_rpm=5400),)
    (gpu,) = rows.gpus
    assert gpu.detail["temperature_threshold_max_operating"] == "87"
    assert gpu.detail["gsp_firmware_version"] == "550.1"
    assert gpu.nvlink_remote_devices == (
        NvLinkRemoteDevice(link_index=0, remote_type="gpu", bandwidth_mb_s=25000),
        NvLinkRemoteDevice(link_index=1, remote_type="switch"),
    )
    assert gpu.gpm_metrics == GpmMetrics(memory_bandwidth_utilization=0.25)
    (cpu,) = rows.cpus
    assert cpu.per_socket_info == (CpuSocket(socket_id=1, temperature=61),)
    assert cpu.per_core_utilization == (
        CoreUtilization(core_id=7, core_type="Efficiency", utilization=9.5),
    )
    (proc,) = rows.processes
    assert (proc.pid, proc.device_id, proc.user, proc.command) == (77, 0, "bob", "run")
    assert proc.process_name is None and proc.start_time == "01:05"
    assert proc.hostname == "h:9090"  # the page speaks for h and n1: only the target is sure


# --- (4) garbage mixed in, (5) nothing usable ------------------------------------------

BAD_LINES = (
    "\x00\x01\x02\xff\ufffd binary junk \x7f",
    "all_smi_gpu_utilization{gpu=",
    "}}}",
    'all_smi_gpu_temperature_celsius{gpu="H100,instance="n1"} 5',
    f'all_smi_gpu_frequency_mhz{{{GPU_LABELS},broken="unterminated}} 1',
    f"all_smi_gpu_memory_total_bytes{{{GPU_LABELS}}}",
    f"all_smi_gpu_memory_total_bytes{{{GPU_LABELS}}} 0x10",
    "# TYPE all_smi_gpu_utilization",
    "# TYPE all_smi_gpu_utilization no_such_type",
    "12345",
)


def test_garbage_lines_are_skipped_and_counted() -> None:
    good = (
        f"all_smi_gpu_utilization{{{GPU_LABELS}}} 55.5",
        f"all_smi_gpu_memory_used_bytes{{{GPU_LABELS}}} 1024",
        'all_smi_memory_total_bytes{instance="n1",hostname="n1",index="0"} 2048',
    )
    lines = [good[0], *BAD_LINES[:5], good[1], *BAD_LINES[5:], good[2]]
    rows = parse_metrics("\n".join(lines) + "\n", "n1:9090")
    assert rows.skipped_lines == len(BAD_LINES)
    (gpu,) = rows.gpus
    assert (gpu.utilization, gpu.used_memory, gpu.total_memory) == (55.5, 1024, None)
    assert rows.memory[0].total_bytes == 2048


@pytest.mark.parametrize(
    ("body", "skipped"),
    [
        ("", 0),
        ("\n\n   \n", 0),
        ("# only a comment\n", 0),
        ("Service temporarily unavailable", 1),
        ("<html><body>502 Bad Gateway</body></html>\n", 1),
        ("\x00" * 64, 1),
        ('{}}}{{{\n"""\n\\\\\\', 3),
        ('not_all_smi_metric 1\nother{a="b"} 2\n', 0),
    ],
)
def test_garbage_or_empty_body(body: str, skipped: int) -> None:
    assert parse_metrics(body, "h") == attrs.evolve(EMPTY, skipped_lines=skipped)


FUZZ_ALPHABET = '{}",=\\ \n\t#_.eE+-01aNInf\x00\r\ufffd\u2028'


@settings(max_examples=150, deadline=None)
@given(
    cut=st.integers(min_value=0, max_value=4000),
    edits=st.lists(
        st.tuples(st.integers(min_value=0, max_value=3999), st.sampled_from(FUZZ_ALPHABET)),
        max_size=12,
    ),
    noise=st.text(alphabet=FUZZ_ALPHABET, max_size=80),
)
def test_never_raises(cut: int, edits: list[tuple[int, str]], noise: str) -> None:
    """A real page cut anywhere, with characters overwritten and noise appended."""
    chars = list(SIM_PAGE[:cut])
    for position, char in edits:
        if position < len(chars):
            chars[position] = char
    rows = parse_metrics("".join(chars) + noise, "h")
    assert rows.skipped_lines >= 0


def test_samples_without_key_labels_are_ignored() -> None:
    text = (
        "all_smi_gpu_utilization 5\n"  # no labels at all
        'all_smi_gpu_utilization{gpu="x"} 5\n'  # no uuid
        'all_smi_disk_total_bytes{instance="h"} 5\n'  # no mount point
        'all_smi_process_cpu_percent{name="p"} 5\n'  # no pid
        'all_smi_cpu_core_utilization{instance="h",core_id="x"} 5\n'  # bad core id
    )
    assert parse_metrics(text, "h") == EMPTY
