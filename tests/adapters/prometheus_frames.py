"""Frames for the Prometheus writer's golden page and the family table's round trips.

``golden_frame()`` touches every corner of the writer — each family, each accessor fallback,
every label rule (escapes, control characters, lone surrogates, truncation, sanitised detail
keys), skipped device types, ``None``/NaN/±Inf readings, exponent floats and huge integers.
It imports only ``allsmi.domain.model``, so the page it renders to can be produced by an older
writer for comparison (tests/fixtures/prometheus-golden.prom; see test_prometheus_golden.py).
"""

from __future__ import annotations

from allsmi.domain.model import (
    Chassis,
    CoreUtilization,
    Cpu,
    CpuSocket,
    Fan,
    Frame,
    GpmMetrics,
    Gpu,
    GpuHealth,
    GpuProcess,
    Memory,
    Storage,
)

GOLDEN_VERSION = "1.2.3-golden"


def _gpus() -> tuple[Gpu, ...]:
    def gpu(host: str, n: int, **fields: object) -> Gpu:
        base: dict[str, object] = {
            "uuid": f"GPU-{host}-{n}",
            "name": "NVIDIA H100 80GB HBM3",
            "device_type": "GPU",
            "host_id": f"{host}:9090",
            "hostname": host,
            "instance": host,
        }
        return Gpu(**{**base, **fields})  # type: ignore[arg-type]

    return (
        gpu(
            "dgx-a",
            0,
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
            numa_node_id=0,
            gpm_metrics=GpmMetrics(sm_occupancy=0.5, memory_bandwidth_utilization=0.25),
            detail={
                "driver_version": "550.54.15",
                "cuda_version": "12.4",
                "index": "0",
                "power_limit_max": "700",
            },
        ),
        # A CPU row: not exported, but it counts for the next rows' fallback gpu_index.
        gpu("dgx-a", 1, device_type="CPU", utilization=5.0),
        gpu(
            "dgx-a",
            2,
            name='Weird "GPU", model\\X\nline2',
            device_type="NPU",
            utilization=float("nan"),
            temperature=None,
            used_memory=2**63 + 1,
            power_consumption=float("inf"),
            frequency=0,
            performance_state=None,
            numa_node_id=-1,
            gpm_metrics=GpmMetrics(sm_occupancy=None, memory_bandwidth_utilization=1e-05),
            detail={
                "Source: Fan": "hwmon",
                "3D Engine": "busy\x1b[2J\r\t",
                "GPU.Temp/Limit": "90",
                "type": "clash",
                "gpu_uuid": "clash",
                "__reserved": "x",
                "": "empty",
                "PCI-Bus": "0000:17:00.0",
                "pci_bus": "dup",
                "serial": 'line1\nline2 "q" \\ \udcff é',
                "power_limit_current": "450.5",
                "power_limit_max": "nan",
                "performance_state": "P3",
                "index": "x7",
            },
        ),
        gpu(
            "dgx-b",
            0,
            device_type="TPU",
            utilization=1e-05,
            power_consumption=0.1 + 0.2,
            total_memory=10**21,
            frequency=1410,
            power_limit=None,
            temperature=-3,
            gpm_metrics=None,
            detail={"performance_state": "P12", "power_limit_max": "1e21"},
        ),
        gpu("dgx-b", 1, utilization=12.0, power_consumption=1e21, detail={"index": "7"}),
    )


def _cpus() -> tuple[Cpu, ...]:
    cores = (
        CoreUtilization(core_id=0, core_type="Standard", utilization=1.5),
        CoreUtilization(core_id=1, core_type="Performance", utilization=2.5),
        CoreUtilization(core_id=2, core_type="Efficiency", utilization=3.5),
        CoreUtilization(core_id=3, core_type="Super", utilization=None),
        CoreUtilization(core_id=4, core_type="Other", utilization=0.0),
    )
    return (
        Cpu(
            host_id="dgx-a:9090",
            hostname="dgx-a",
            instance="dgx-a",
            cpu_model="AMD EPYC 9654",
            architecture="x86_64",
            platform_type="Amd",
            socket_count=2,
            total_cores=4,
            total_threads=8,
            base_frequency_mhz=2400,
            current_frequency_mhz=3100,
            utilization=12.5,
            temperature=55,
            power_consumption=180.5,
            per_socket_info=(
                CpuSocket(socket_id=0, utilization=10.0, frequency_mhz=2400, temperature=54),
                CpuSocket(socket_id=1, utilization=15.0, frequency_mhz=2450),
            ),
            per_core_utilization=cores,
        ),
        Cpu(
            host_id="dgx-b:9090",
            hostname="dgx-b",
            instance="dgx-b-inst",
            index=1,
            cpu_model=None,
            architecture=None,
            platform_type="RISC-V thing",
            current_frequency_mhz=1800,
            utilization=0.30000000000000004,
            per_core_utilization=cores[:2],
        ),
    )


def _memory() -> tuple[Memory, ...]:
    return (
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
            instance="dgx-b-inst",
            total_bytes=2**40,
            used_bytes=2**30,
            cached_bytes=3 * 2**30,
            swap_total_bytes=0,
            swap_used_bytes=0,
            swap_free_bytes=0,
        ),
    )


def _storage() -> tuple[Storage, ...]:
    return (
        Storage("dgx-a:9090", "dgx-a", "/", 0, total_bytes=10**12, available_bytes=4 * 10**11),
        Storage("dgx-a:9090", "dgx-a", "/data", 1, total_bytes=10**13),
        Storage("dgx-b:9090", "dgx-b", '/mnt/we"ird\\path\n', 0, total_bytes=5, available_bytes=0),
    )


def _chassis() -> tuple[Chassis, ...]:
    return (
        Chassis(
            host_id="dgx-a:9090",
            hostname="dgx-a",
            instance="dgx-a",
            total_power_watts=3100.5,
            inlet_temperature=-2.5,
            outlet_temperature=None,
            thermal_pressure="Nominal",
            fan_speeds=(
                Fan(id=0, name="FAN1", speed_rpm=8000, max_rpm=12000),
                Fan(id=1, name="FAN2"),
                Fan(id=7, name='odd "fan"', speed_rpm=0),
            ),
            detail={
                "Product Name": "DGX H100",
                "Vendor": "NVIDIA",
                "Board": "B1",
                "Version": "v2",
                "BIOS Version": "1.2",
                "platform": "nvidia",
                "Other Key": "not exported",
            },
        ),
        Chassis(host_id="dgx-b:9090", hostname="dgx-b", instance="dgx-b-inst"),
    )


def _processes() -> tuple[GpuProcess, ...]:
    def proc(pid: int, device: int, **fields: object) -> GpuProcess:
        base: dict[str, object] = {
            "host_id": "dgx-a:9090",
            "hostname": "dgx-a",
            "device_id": device,
            "device_uuid": f"GPU-dgx-a-{device}",
            "pid": pid,
        }
        return GpuProcess(**{**base, **fields})  # type: ignore[arg-type]

    return (
        proc(
            4242,
            0,
            process_name="python",
            used_memory=2**30,
            cpu_percent=99.5,
            user="alice",
            start_time="01:02:03",
            command='python -c "print(1)" C:\\tmp\\x\nsecond line',
        ),
        proc(
            7,
            2,
            process_name="n" * 129,
            user="bob\udcff",
            start_time="05.75",
            command="x" + "é" * 200,
            cpu_percent=float("nan"),
        ),
        proc(8, 2, process_name="a\rb\x1b[2Jc\x85d\te", start_time="junk", used_memory=0),
        proc(9, 0, start_time="100:00:00", used_memory=1),
    )


def golden_frame() -> Frame:
    return Frame(
        t_ms=1_700_000_000_000,
        gpus=_gpus(),
        cpus=_cpus(),
        memory=_memory(),
        storage=_storage(),
        chassis=_chassis(),
        processes=_processes(),
    )


SAMPLE_HOST = "node-a"
SAMPLE_TARGET = f"{SAMPLE_HOST}:9090"


# Every health reading on GPU 0 (clock event reasons among them one that no NVML bit names,
# several XID codes); on GPU 1 the "read, nothing there" ones ([] and {}) and no others, so
# each health family is seen to write only what was read.
SAMPLE_HEALTH = (
    GpuHealth(
        clock_events=("sw_power_cap", "hw_slowdown", "hw_power_brake", "future_reason"),
        sm_clock_mhz=1755,
        memory_clock_mhz=2619,
        power_violation_us=123_456_789,
        thermal_violation_us=7,
        ecc_corrected=12,
        ecc_uncorrected=1,
        remapped_correctable=3,
        remapped_uncorrectable=0,
        remap_pending=True,
        remap_failure=False,
        retired_pages=2,
        pcie_tx_bytes_s=1.5e9,
        pcie_rx_bytes_s=0.25,
        pcie_replays=5,
        nvlink_tx_bytes_s=3e11,
        nvlink_rx_bytes_s=2.5e11,
        nvlink_errors=4,
        encoder_utilization=12.5,
        decoder_utilization=0.0,
        energy_j=123456.789,
        xid_counts={"13": 2, "79": 1, "119": 40},
        last_xid=79,
        last_xid_ms=1_700_000_123_456,
    ),
    GpuHealth(clock_events=(), xid_counts={}),
)


def sample_frame() -> Frame:
    """One host, as one exporter's page has it, with a reading for every family we write and
    only values that survive the page (label-safe detail keys, integral detail numbers, no
    0 MHz clocks): what the writer writes of it, the parser gives back."""
    gpus = tuple(
        Gpu(
            uuid=f"GPU-{n}",
            name=f'Accel "{n}" \\ x',
            device_type="NPU",
            host_id=SAMPLE_TARGET,
            hostname=SAMPLE_HOST,
            instance=SAMPLE_HOST,
            utilization=37.5 + n,
            temperature=61,
            used_memory=20 * 2**30,
            total_memory=80 * 2**30,
            frequency=1980,
            power_consumption=312.25,
            power_limit=700.5,
            performance_state=2,
            temperature_threshold_slowdown=87,
            temperature_threshold_shutdown=92,
            numa_node_id=n,
            gpm_metrics=GpmMetrics(sm_occupancy=0.5, memory_bandwidth_utilization=1e-05),
            detail={
                "driver_version": "550.54.15",
                "index": str(n),
                "power_limit_max": "800",
                "serial": 'line1\nline2 "q" \\',
            },
            health=SAMPLE_HEALTH[n],
        )
        for n in range(2)
    )
    cpu = Cpu(
        host_id=SAMPLE_TARGET,
        hostname=SAMPLE_HOST,
        instance=SAMPLE_HOST,
        cpu_model="AMD EPYC 9654",
        architecture="riscv64",
        platform_type="RISC-V thing",
        socket_count=2,
        total_cores=4,
        total_threads=8,
        base_frequency_mhz=2400,
        utilization=12.5,
        temperature=55,
        power_consumption=180.5,
        per_socket_info=(
            CpuSocket(socket_id=0, utilization=10.0, frequency_mhz=2400, temperature=54),
            CpuSocket(socket_id=1, utilization=15.0, frequency_mhz=2450, temperature=-1),
        ),
        per_core_utilization=tuple(
            CoreUtilization(core_id=i, core_type=kind, utilization=1.5 * i)
            for i, kind in enumerate(("Standard", "Performance", "Efficiency", "Super"))
        ),
    )
    memory = Memory(
        host_id=SAMPLE_TARGET,
        hostname=SAMPLE_HOST,
        instance=SAMPLE_HOST,
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
    )
    chassis = Chassis(
        host_id=SAMPLE_TARGET,
        hostname=SAMPLE_HOST,
        instance=SAMPLE_HOST,
        total_power_watts=3100.5,
        inlet_temperature=-2.5,
        outlet_temperature=41.0,
        thermal_pressure="Nominal",
        fan_speeds=(Fan(id=0, name="FAN1", speed_rpm=8000), Fan(id=1, name='fan "2"', speed_rpm=0)),
        detail={
            "Product Name": "DGX H100",
            "Vendor": "NVIDIA",
            "Board": "B1",
            "Version": "v2",
            "BIOS Version": "1.2",
            "platform": "nvidia",
        },
    )
    storage = (
        Storage(SAMPLE_TARGET, SAMPLE_HOST, "/", 0, total_bytes=10**12, available_bytes=4),
        Storage(SAMPLE_TARGET, SAMPLE_HOST, '/mnt/we"ird\\', 1, total_bytes=5, available_bytes=0),
    )
    process = GpuProcess(
        host_id=SAMPLE_TARGET,
        hostname=SAMPLE_HOST,
        device_id=1,
        device_uuid="GPU-1",
        pid=4242,
        process_name="python",
        used_memory=2**30,
        cpu_percent=99.5,
        user="alice",
        start_time="01:02:03",
        command='python -c "print(1)"\nsecond line',
    )
    return Frame(
        t_ms=1_700_000_000_000,
        gpus=gpus,
        cpus=(cpu,),
        memory=(memory,),
        storage=storage,
        chassis=(chassis,),
        processes=(process,),
    )
