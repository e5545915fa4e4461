"""The NVML reader against the real pynvml over a fake C library (tests/fixtures/fake_nvml.c).

Every call goes through pynvml's ctypes wrappers, so these tests prove the symbol names
(``_v2``/``_v3``), the struct layouts, the unit conversions and the error mapping. The fake's
values are listed in fake_nvml.c; each expected value below is written out by hand.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator

import psutil
import pytest

from allsmi.adapters.machine.nvml import GpuReading, NvmlReader, RawGpuProcess, load_nvml
from allsmi.adapters.machine.processes import ProcessEnricher
from allsmi.domain.model import Gpu, GpuHealth, GpuProcess

HOST = "dgx-01"
UUID0 = "GPU-00000000-fake-4000-8000-000000000000"
UUID1 = "GPU-11111111-fake-4000-8000-111111111111"
GHOST_PID = 4194000
SYSTEM_DETAIL = {"driver_version": "550.54.15", "cuda_version": "12.4"}
XID_WAIT_MS = 20  # how long the XID thread waits per call: what a close may take

MODE_NORMAL = 0
MODE_NOT_SUPPORTED = 1
MODE_LOST = 2

# A first cycle: no rates yet (they need two counter readings), XIDs registered, none seen.
HEALTH0 = GpuHealth(
    clock_events=("sw_power_cap", "hw_slowdown"),  # 0x00C
    sm_clock_mhz=1740,
    memory_clock_mhz=2619,
    power_violation_us=12345678,  # 12,345,678,000 ns
    thermal_violation_us=1000,  # 1,000,000 ns
    ecc_corrected=5,
    ecc_uncorrected=2,
    remapped_correctable=3,
    remapped_uncorrectable=1,
    remap_pending=True,
    remap_failure=False,
    retired_pages=None,  # its fields answer NOT_SUPPORTED (rows are remapped instead)
    pcie_replays=7,
    nvlink_errors=10,  # CRC flit 1 + CRC data 2 + replay 3 + recovery 4
    encoder_utilization=3.0,
    decoder_utilization=12.0,
    energy_j=987654.321,  # 987,654,321 mJ
    xid_counts={},
)

HEALTH1 = GpuHealth(
    clock_events=("gpu_idle",),
    sm_clock_mhz=210,
    memory_clock_mhz=1215,
    power_violation_us=0,
    thermal_violation_us=0,
    ecc_corrected=0,
    ecc_uncorrected=0,
    remapped_correctable=0,
    remapped_uncorrectable=0,
    remap_pending=False,
    remap_failure=False,
    retired_pages=3,  # 2 single-bit + 1 double-bit
    pcie_replays=0,
    nvlink_errors=None,  # no NVLink: every NVLink field answers NOT_SUPPORTED
    encoder_utilization=0.0,
    decoder_utilization=0.0,
    energy_j=5.0,
    xid_counts={},
)

GPU0 = Gpu(
    uuid=UUID0,
    name="Fake H100 80GB HBM3",
    device_type="GPU",
    host_id=HOST,
    hostname=HOST,
    instance=HOST,
    utilization=87.0,
    temperature=64,
    used_memory=21474836480,
    total_memory=85899345920,
    frequency=1755,
    power_consumption=312.345,
    power_limit=700.0,
    memory_utilization=45.0,
    fan_speed_percent=41,
    performance_state=2,
    temperature_threshold_slowdown=87,
    temperature_threshold_shutdown=92,
    gpu_core_count=16896,
    numa_node_id=0,
    detail={
        "index": "0",
        **SYSTEM_DETAIL,
        "power_limit_max": "750.0",
        "clock_graphics_max": "1980",
        "clock_memory_max": "2619",
        "pci_bus_id": "00000000:1B:00.0",
        "pcie_gen_current": "5",
        "pcie_width_current": "16",
    },
    health=HEALTH0,
)

GPU1 = Gpu(
    uuid=UUID1,
    name="Fake A100-SXM4-40GB",
    device_type="GPU",
    host_id=HOST,
    hostname=HOST,
    instance=HOST,
    utilization=3.0,
    temperature=35,
    used_memory=1073741824,
    total_memory=42949672960,
    frequency=210,
    power_consumption=61.25,
    power_limit=400.0,
    memory_utilization=1.0,
    fan_speed_percent=30,
    performance_state=0,  # P0 is a reading, not "unavailable"
    temperature_threshold_slowdown=90,
    temperature_threshold_shutdown=95,
    gpu_core_count=6912,
    numa_node_id=1,
    detail={
        "index": "1",
        **SYSTEM_DETAIL,
        "power_limit_max": "400.0",
        "clock_graphics_max": "1410",
        "clock_memory_max": "1215",
        "pci_bus_id": "00000000:2C:00.0",
        "pcie_gen_current": "4",
        "pcie_width_current": "8",
    },
    health=HEALTH1,
)

# Identity and static system values only: everything optional answered NOT_SUPPORTED
# (XID registration too, so no health at all).
GPU1_UNSUPPORTED = Gpu(
    uuid=UUID1,
    name="Fake A100-SXM4-40GB",
    device_type="GPU",
    host_id=HOST,
    hostname=HOST,
    instance=HOST,
    detail={"index": "1", **SYSTEM_DETAIL},
)


def set_gpu_mode(lib: ctypes.CDLL, index: int, mode: int) -> None:
    lib.fake_set_gpu_mode(ctypes.c_uint(index), ctypes.c_int(mode))


def calls(lib: ctypes.CDLL, symbol: str) -> int:
    """How often the fake library's C function ``symbol`` was called."""
    counter = lib.fake_call_count
    counter.argtypes = [ctypes.c_char_p]
    counter.restype = ctypes.c_uint
    return int(counter(symbol.encode()))


@pytest.fixture
def reader(fake_nvml: ctypes.CDLL) -> Iterator[NvmlReader]:
    nvml = NvmlReader(load_nvml(), host_id=HOST, hostname=HOST, xid_wait_ms=XID_WAIT_MS)
    nvml.open()
    try:
        yield nvml
    finally:
        nvml.close()


def test_every_gpu_field_is_read_through_ctypes_with_its_unit(reader: NvmlReader) -> None:
    reading = reader.read()

    assert reading.errors == ()
    assert reading.gpus == (GPU0, GPU1)
    gpu = reading.gpus[0]
    # attrs equality would accept 87 == 87.0; the model's types are checked apart.
    assert isinstance(gpu.utilization, float)
    assert isinstance(gpu.memory_utilization, float)
    assert isinstance(gpu.power_consumption, float)
    assert isinstance(gpu.power_limit, float)
    assert isinstance(gpu.temperature, int)
    assert isinstance(gpu.frequency, int)
    assert isinstance(gpu.used_memory, int)


def test_not_supported_queries_read_as_none_never_zero(
    fake_nvml: ctypes.CDLL, reader: NvmlReader
) -> None:
    set_gpu_mode(fake_nvml, 1, MODE_NOT_SUPPORTED)

    reading = reader.read()

    assert reading.errors == ()
    assert reading.gpus == (GPU0, GPU1_UNSUPPORTED)
    assert {row.device_id for row in reading.processes} == {0}


def test_lost_gpu_is_reported_and_the_other_gpu_still_read(
    fake_nvml: ctypes.CDLL, reader: NvmlReader
) -> None:
    set_gpu_mode(fake_nvml, 0, MODE_LOST)

    reading = reader.read()

    assert reading.errors == ("nvidia: GPU 0: GPU is lost",)
    assert reading.gpus == (GPU1,)
    assert reading.processes == (RawGpuProcess(1, UUID1, os.getppid(), 536870912, None),)


def test_lost_gpu_that_recovers_is_read_again(fake_nvml: ctypes.CDLL, reader: NvmlReader) -> None:
    set_gpu_mode(fake_nvml, 1, MODE_LOST)
    assert reader.read().gpus == (GPU0,)

    set_gpu_mode(fake_nvml, 1, MODE_NORMAL)
    reading = reader.read()

    assert (reading.gpus, reading.errors) == ((GPU0, GPU1), ())


def test_driver_not_loaded_in_device_count_is_an_errors_entry(
    fake_nvml: ctypes.CDLL, reader: NvmlReader
) -> None:
    fake_nvml.fake_set_count_error(ctypes.c_int(9))  # NVML_ERROR_DRIVER_NOT_LOADED

    assert reader.read() == GpuReading((), (), ("nvidia: Driver Not Loaded",))


def test_processes_are_listed_once_per_pid_with_unavailable_memory_as_none(
    reader: NvmlReader,
) -> None:
    reading = reader.read()

    assert reading.processes == (
        # compute and graphics list the own pid: one row; the newest SM sample (37 %) wins
        RawGpuProcess(0, UUID0, os.getpid(), 1073741824, 37.0),
        # NVML_VALUE_NOT_AVAILABLE memory; no SM sample for this pid
        RawGpuProcess(0, UUID0, GHOST_PID, None, None),
        # GPU 1 answers NVML_ERROR_NOT_FOUND (no samples): utilization unknown
        RawGpuProcess(1, UUID1, os.getppid(), 536870912, None),
    )


def test_processes_are_enriched_from_psutil_by_pid(reader: NvmlReader) -> None:
    me = psutil.Process()
    now_s = me.create_time() + 3725.5  # 1 h 2 min 5.5 s after this process started
    enricher = ProcessEnricher(host_id=HOST, hostname=HOST)

    first = enricher.enrich(reader.read().processes, now_s)
    second = enricher.enrich(reader.read().processes, now_s + 2)

    own, ghost, _parent = first
    assert (own.host_id, own.hostname, own.device_id, own.device_uuid, own.pid) == (
        HOST,
        HOST,
        0,
        UUID0,
        os.getpid(),
    )
    assert (own.used_memory, own.gpu_utilization) == (1073741824, 37.0)
    assert own.process_name == me.name()
    assert own.user == me.username()
    assert own.command == " ".join(me.cmdline())[:1024]
    assert own.ppid == os.getppid()
    assert own.nice_value == os.getpriority(os.PRIO_PROCESS, 0)
    assert own.state in {"R", "S"}
    assert own.start_time == "01:02:05"
    assert own.memory_rss is not None
    assert own.memory_rss > 0
    assert own.memory_vms is not None
    assert own.memory_vms >= own.memory_rss
    assert own.memory_percent is not None
    assert 0 < own.memory_percent < 100
    assert own.threads is not None
    assert own.threads >= 1
    assert isinstance(own.cpu_time, int)
    assert own.cpu_percent is None  # psutil's first call has no interval yet
    assert isinstance(second[0].cpu_percent, float)
    assert second[0].start_time == "01:02:07"
    assert ghost == GpuProcess(
        host_id=HOST, hostname=HOST, device_id=0, device_uuid=UUID0, pid=GHOST_PID
    )


def test_process_cache_forgets_pids_no_longer_reported(reader: NvmlReader) -> None:
    enricher = ProcessEnricher(host_id=HOST, hostname=HOST)
    rows = reader.read().processes
    enricher.enrich(rows, 0.0)
    assert enricher.enrich(rows, 2.0)[0].cpu_percent is not None

    enricher.enrich((), 4.0)  # the process left the GPU for a cycle

    assert enricher.enrich(rows, 6.0)[0].cpu_percent is None  # a fresh interval again


def test_static_values_are_read_once_per_device(fake_nvml: ctypes.CDLL, reader: NvmlReader) -> None:
    cycles = 5
    for _ in range(cycles):
        reader.read()

    static_once_per_device = {
        "nvmlDeviceGetName": 2,
        "nvmlDeviceGetEnforcedPowerLimit": 2,
        "nvmlDeviceGetPowerManagementLimitConstraints": 2,
        "nvmlDeviceGetMaxClockInfo": 4,  # graphics and memory
        "nvmlDeviceGetTemperatureThreshold": 4,  # slowdown and shutdown
        "nvmlDeviceGetNumGpuCores": 2,
        "nvmlDeviceGetPciInfo_v3": 2,
        "nvmlDeviceGetNumaNodeId": 2,
        "nvmlSystemGetDriverVersion": 1,
        "nvmlSystemGetCudaDriverVersion_v2": 1,
    }
    dynamic_per_cycle = {
        "nvmlDeviceGetCount_v2": 1,
        "nvmlDeviceGetHandleByIndex_v2": 2,
        "nvmlDeviceGetUUID": 2,
        "nvmlDeviceGetMemoryInfo": 2,
        "nvmlDeviceGetUtilizationRates": 2,
        "nvmlDeviceGetTemperature": 2,
        "nvmlDeviceGetPowerUsage": 2,
        "nvmlDeviceGetClockInfo": 6,  # graphics, SM and memory
        "nvmlDeviceGetFanSpeed": 2,
        "nvmlDeviceGetPerformanceState": 2,
        "nvmlDeviceGetCurrPcieLinkGeneration": 2,
        "nvmlDeviceGetCurrPcieLinkWidth": 2,
        # the size probe, then the fetch (pynvml's two-call protocol)
        "nvmlDeviceGetComputeRunningProcesses_v3": 4,
        "nvmlDeviceGetGraphicsRunningProcesses_v3": 3,  # GPU 1 has none: one call
        "nvmlDeviceGetProcessUtilization": 3,  # GPU 1 answers NOT_FOUND at once
    }
    assert {name: calls(fake_nvml, name) for name in static_once_per_device} == (
        static_once_per_device
    )
    assert {name: calls(fake_nvml, name) for name in dynamic_per_cycle} == {
        name: n * cycles for name, n in dynamic_per_cycle.items()
    }


def test_close_shuts_nvml_down_and_forgets_the_cache(fake_nvml: ctypes.CDLL) -> None:
    nvml = NvmlReader(load_nvml(), host_id=HOST, hostname=HOST)
    nvml.open()
    nvml.read()
    nvml.close()
    nvml.close()  # a second close is harmless

    assert calls(fake_nvml, "nvmlShutdown") == 1
    nvml.open()
    nvml.read()
    nvml.close()
    assert calls(fake_nvml, "nvmlDeviceGetName") == 4
