"""The NVML reader with an injected fake module, for cases a C fake cannot stage cheaply.

The fake raises the real ``pynvml.NVMLError`` classes (``NVMLError(code)`` is a factory that
returns the matching subclass), and returns attrs objects with the ctypes field names.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import attrs
import pynvml
import pytest

import allsmi
from allsmi.adapters.machine.nvml import GpuReading, NvmlReader, RawGpuProcess
from allsmi.domain.errors import SourceUnavailable
from allsmi.domain.model import GpuHealth

HOST = "node-7"
NOT_SUPPORTED: int = pynvml.NVML_ERROR_NOT_SUPPORTED
NO_PERMISSION: int = pynvml.NVML_ERROR_NO_PERMISSION
FUNCTION_NOT_FOUND: int = pynvml.NVML_ERROR_FUNCTION_NOT_FOUND
DRIVER_NOT_LOADED: int = pynvml.NVML_ERROR_DRIVER_NOT_LOADED
LIBRARY_NOT_FOUND: int = pynvml.NVML_ERROR_LIBRARY_NOT_FOUND
UNKNOWN: int = pynvml.NVML_ERROR_UNKNOWN
INVALID_ARGUMENT: int = pynvml.NVML_ERROR_INVALID_ARGUMENT
GPU_IS_LOST: int = pynvml.NVML_ERROR_GPU_IS_LOST


@attrs.frozen
class Memory:
    total: int
    used: int


@attrs.frozen
class Utilization:
    gpu: int
    memory: int


@attrs.frozen
class ProcessInfo:
    pid: int
    usedGpuMemory: int | None  # NVML's field name


@attrs.frozen
class Sample:
    pid: int
    timeStamp: int  # NVML's field name
    smUtil: int  # NVML's field name


@attrs.frozen
class PciInfo:
    busId: bytes | str  # NVML's field name


class FakeNvml:
    """A configurable stand-in for ``pynvml``; handles are device indices.

    ``failures`` maps a function name to the NVML error code it raises (for every device);
    ``lost`` names devices whose every query raises GPU_IS_LOST.
    """

    NVMLError = pynvml.NVMLError
    NVMLLibraryMismatchError = pynvml.NVMLLibraryMismatchError

    def __init__(
        self,
        *,
        count: int = 1,
        as_bytes: bool = False,
        init_error: int | None = None,
        failures: dict[str, int] | None = None,
        handle_errors: dict[int, int] | None = None,
        lost: frozenset[int] = frozenset(),
        processes: Sequence[ProcessInfo] = (),
        graphics: Sequence[ProcessInfo] = (ProcessInfo(pid=4242, usedGpuMemory=8 << 20),),
        pstate: int = 0,
    ) -> None:
        self.count = count
        self.as_bytes = as_bytes
        self.init_error = init_error
        self.failures = failures or {}
        self.handle_errors = handle_errors or {}
        self.lost = lost
        self.processes = tuple(processes)
        self.graphics = tuple(graphics)
        self.pstate = pstate
        self.uuid_prefix = "GPU-fake"
        self.calls: dict[str, int] = {}

    def _enter(self, name: str, handle: object = None) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1
        if handle in self.lost:
            raise pynvml.NVMLError(GPU_IS_LOST)
        code = self.failures.get(name)
        if code == FUNCTION_NOT_FOUND and name.endswith("RunningProcesses"):
            # what pynvml's throwOnVersionMismatch turns FunctionNotFound into
            raise pynvml.NVMLLibraryMismatchError("Unversioned function called")
        if code is not None:
            raise pynvml.NVMLError(code)

    def _str(self, text: str) -> str | bytes:
        return text.encode() if self.as_bytes else text

    def nvmlInit(self) -> None:
        self._enter("nvmlInit")
        if self.init_error is not None:
            raise pynvml.NVMLError(self.init_error)

    def nvmlShutdown(self) -> None:
        self._enter("nvmlShutdown")

    def nvmlSystemGetDriverVersion(self) -> str | bytes:
        self._enter("nvmlSystemGetDriverVersion")
        return self._str("535.129.03")

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        self._enter("nvmlSystemGetCudaDriverVersion_v2")
        return 12020

    def nvmlDeviceGetCount(self) -> int:
        self._enter("nvmlDeviceGetCount")
        return self.count

    def nvmlDeviceGetHandleByIndex(self, index: int) -> object:
        self._enter("nvmlDeviceGetHandleByIndex")
        if index in self.handle_errors:
            raise pynvml.NVMLError(self.handle_errors[index])
        return index

    def nvmlDeviceGetName(self, handle: object) -> str | bytes:
        self._enter("nvmlDeviceGetName", handle)
        return self._str(f"Fake L40S #{handle}")

    def nvmlDeviceGetUUID(self, handle: object) -> str | bytes:
        self._enter("nvmlDeviceGetUUID", handle)
        return self._str(f"{self.uuid_prefix}-{handle}")

    def nvmlDeviceGetPciInfo(self, handle: object) -> PciInfo:
        self._enter("nvmlDeviceGetPciInfo", handle)
        return PciInfo(self._str(f"00000000:0{handle}:00.0"))

    def nvmlDeviceGetNumaNodeId(self, handle: object) -> int:
        self._enter("nvmlDeviceGetNumaNodeId", handle)
        return 0

    def nvmlDeviceGetMemoryInfo(self, handle: object) -> Memory:
        self._enter("nvmlDeviceGetMemoryInfo", handle)
        return Memory(total=48 << 30, used=0)

    def nvmlDeviceGetUtilizationRates(self, handle: object) -> Utilization:
        self._enter("nvmlDeviceGetUtilizationRates", handle)
        return Utilization(gpu=0, memory=0)

    def nvmlDeviceGetTemperature(self, handle: object, sensor: int) -> int:
        self._enter("nvmlDeviceGetTemperature", handle)
        return 30

    def nvmlDeviceGetTemperatureThreshold(self, handle: object, kind: int) -> int:
        self._enter("nvmlDeviceGetTemperatureThreshold", handle)
        return 90 + kind

    def nvmlDeviceGetPowerUsage(self, handle: object) -> int:
        self._enter("nvmlDeviceGetPowerUsage", handle)
        return 0

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: object) -> int:
        self._enter("nvmlDeviceGetEnforcedPowerLimit", handle)
        return 350000

    def nvmlDeviceGetPowerManagementLimitConstraints(self, handle: object) -> list[int]:
        self._enter("nvmlDeviceGetPowerManagementLimitConstraints", handle)
        return [100000, 350000]

    def nvmlDeviceGetClockInfo(self, handle: object, kind: int) -> int:
        self._enter("nvmlDeviceGetClockInfo", handle)
        return 0

    def nvmlDeviceGetMaxClockInfo(self, handle: object, kind: int) -> int:
        self._enter("nvmlDeviceGetMaxClockInfo", handle)
        return 2520

    def nvmlDeviceGetFanSpeed(self, handle: object) -> int:
        self._enter("nvmlDeviceGetFanSpeed", handle)
        return 0

    def nvmlDeviceGetPerformanceState(self, handle: object) -> int:
        self._enter("nvmlDeviceGetPerformanceState", handle)
        return self.pstate

    def nvmlDeviceGetNumGpuCores(self, handle: object) -> int:
        self._enter("nvmlDeviceGetNumGpuCores", handle)
        return 18176

    def nvmlDeviceGetCurrPcieLinkGeneration(self, handle: object) -> int:
        self._enter("nvmlDeviceGetCurrPcieLinkGeneration", handle)
        return 4

    def nvmlDeviceGetCurrPcieLinkWidth(self, handle: object) -> int:
        self._enter("nvmlDeviceGetCurrPcieLinkWidth", handle)
        return 16

    def nvmlDeviceGetComputeRunningProcesses(self, handle: object) -> list[ProcessInfo]:
        self._enter("nvmlDeviceGetComputeRunningProcesses", handle)
        return list(self.processes)

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: object) -> list[ProcessInfo]:
        self._enter("nvmlDeviceGetGraphicsRunningProcesses", handle)
        return list(self.graphics)

    def nvmlDeviceGetProcessUtilization(self, handle: object, last_seen_us: int) -> list[Sample]:
        self._enter("nvmlDeviceGetProcessUtilization", handle)
        return [Sample(pid=4242, timeStamp=last_seen_us + 1, smUtil=5)]


def opened(fake: FakeNvml) -> NvmlReader:
    reader = NvmlReader(fake, host_id=HOST, hostname=HOST)
    reader.open()
    return reader


def test_library_not_found_at_open_is_source_unavailable_with_nvml_text() -> None:
    reader = NvmlReader(FakeNvml(init_error=LIBRARY_NOT_FOUND), host_id=HOST, hostname=HOST)

    with pytest.raises(SourceUnavailable) as raised:
        reader.open()

    assert str(raised.value) == "nvidia: NVML Shared Library Not Found"
    reader.close()  # closing a reader that never opened is harmless


def test_real_pynvml_without_a_driver_gives_the_same_text() -> None:
    # A fresh interpreter: this one may hold the fake library from the fake-lib tests.
    src = Path(allsmi.__file__).resolve().parent.parent
    script = (
        "from allsmi.adapters.machine.nvml import NvmlReader, load_nvml\n"
        "from allsmi.domain.errors import SourceUnavailable\n"
        "reader = NvmlReader(load_nvml(), 'h', 'h')\n"
        "try:\n"
        "    reader.open()\n"
        "except SourceUnavailable as err:\n"
        "    print(err)\n"
        "else:\n"
        "    reader.close()\n"
        "    print('OPENED')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={"PYTHONPATH": str(src), "PATH": ""},
    )
    if done.stdout.strip() == "OPENED":
        pytest.skip("this machine has a working NVIDIA driver")

    assert done.stdout == "nvidia: NVML Shared Library Not Found\n"


def test_zero_devices_give_an_empty_reading_without_errors() -> None:
    assert opened(FakeNvml(count=0)).read() == GpuReading((), (), ())


@pytest.mark.parametrize("as_bytes", [False, True], ids=["str", "bytes"])
def test_strings_from_nvml_are_str_whether_pynvml_returns_str_or_bytes(as_bytes: bool) -> None:
    (gpu,) = opened(FakeNvml(as_bytes=as_bytes)).read().gpus

    assert (gpu.name, gpu.uuid) == ("Fake L40S #0", "GPU-fake-0")
    assert gpu.detail["driver_version"] == "535.129.03"
    assert gpu.detail["cuda_version"] == "12.2"
    assert gpu.detail["pci_bus_id"] == "00000000:00:00.0"


def test_zero_readings_stay_zero() -> None:
    (gpu,) = opened(FakeNvml()).read().gpus

    assert (gpu.utilization, gpu.power_consumption, gpu.fan_speed_percent) == (0.0, 0.0, 0)
    assert (gpu.used_memory, gpu.frequency, gpu.performance_state) == (0, 0, 0)


def test_function_missing_from_an_old_driver_reads_as_none() -> None:
    fake = FakeNvml(
        failures={
            "nvmlDeviceGetNumGpuCores": FUNCTION_NOT_FOUND,
            "nvmlSystemGetCudaDriverVersion_v2": FUNCTION_NOT_FOUND,
            "nvmlDeviceGetComputeRunningProcesses": FUNCTION_NOT_FOUND,
        },
        processes=[ProcessInfo(pid=1, usedGpuMemory=1)],
    )

    reading = opened(fake).read()

    (gpu,) = reading.gpus
    assert gpu.gpu_core_count is None
    assert "cuda_version" not in gpu.detail
    assert gpu.detail["driver_version"] == "535.129.03"
    assert reading.processes == (RawGpuProcess(0, "GPU-fake-0", 4242, 8 << 20, 5.0),)
    assert reading.errors == ()


@pytest.mark.parametrize("code", [NOT_SUPPORTED, NO_PERMISSION, UNKNOWN, INVALID_ARGUMENT])
def test_any_other_nvml_error_of_one_query_reads_as_none(code: int) -> None:
    fake = FakeNvml(
        failures={
            "nvmlDeviceGetTemperature": code,
            "nvmlDeviceGetMemoryInfo": code,
            "nvmlDeviceGetPowerManagementLimitConstraints": code,
        }
    )

    reading = opened(fake).read()

    (gpu,) = reading.gpus
    assert (gpu.temperature, gpu.used_memory, gpu.total_memory) == (None, None, None)
    assert "power_limit_max" not in gpu.detail
    assert gpu.power_limit == 350.0
    assert reading.errors == ()


def test_driver_failure_in_device_count_is_an_errors_entry() -> None:
    fake = FakeNvml(failures={"nvmlDeviceGetCount": DRIVER_NOT_LOADED})

    assert opened(fake).read() == GpuReading((), (), ("nvidia: Driver Not Loaded",))


def test_driver_failure_mid_cycle_keeps_the_gpus_already_read() -> None:
    fake = FakeNvml(count=3, handle_errors={1: DRIVER_NOT_LOADED})

    reading = opened(fake).read()

    assert [gpu.uuid for gpu in reading.gpus] == ["GPU-fake-0"]
    assert reading.errors == ("nvidia: Driver Not Loaded",)


def test_gpu_without_a_handle_is_reported_and_skipped() -> None:
    fake = FakeNvml(count=2, handle_errors={0: NO_PERMISSION})

    reading = opened(fake).read()

    assert [gpu.uuid for gpu in reading.gpus] == ["GPU-fake-1"]
    assert reading.errors == ("nvidia: GPU 0: Insufficient Permissions",)


def test_lost_gpu_is_reported_by_index_and_the_others_read() -> None:
    reading = opened(FakeNvml(count=4, lost=frozenset({3}))).read()

    assert [gpu.detail["index"] for gpu in reading.gpus] == ["0", "1", "2"]
    assert reading.errors == ("nvidia: GPU 3: GPU is lost",)


def test_unknown_performance_state_reads_as_none() -> None:
    (gpu,) = opened(FakeNvml(pstate=32)).read().gpus  # NVML_PSTATE_UNKNOWN

    assert gpu.performance_state is None


def test_raw_not_available_sentinel_for_process_memory_reads_as_none() -> None:
    fake = FakeNvml(processes=[ProcessInfo(pid=7, usedGpuMemory=2**64 - 1)])

    rows = opened(fake).read().processes

    assert rows[0] == RawGpuProcess(0, "GPU-fake-0", 7, None, None)


@pytest.mark.parametrize(
    ("compute_memory", "graphics_memory"), [(None, 8 << 20), (8 << 20, None), (8 << 20, 8 << 20)]
)
def test_pid_in_both_process_lists_is_one_row_keeping_the_known_memory(
    compute_memory: int | None, graphics_memory: int | None
) -> None:
    fake = FakeNvml(
        processes=[ProcessInfo(pid=4242, usedGpuMemory=compute_memory)],
        graphics=[ProcessInfo(pid=4242, usedGpuMemory=graphics_memory)],
    )

    rows = opened(fake).read().processes

    assert rows == (RawGpuProcess(0, "GPU-fake-0", 4242, 8 << 20, 5.0),)


def test_a_different_gpu_at_the_same_index_rereads_static_values() -> None:
    fake = FakeNvml()
    reader = opened(fake)
    reader.read()
    reader.read()
    assert fake.calls["nvmlDeviceGetName"] == 1

    fake.uuid_prefix = "GPU-swapped"
    (gpu,) = reader.read().gpus

    assert gpu.uuid == "GPU-swapped-0"
    assert fake.calls["nvmlDeviceGetName"] == 2
    assert fake.calls["nvmlSystemGetDriverVersion"] == 1  # system values: once per open


def test_close_ignores_shutdown_errors() -> None:
    fake = FakeNvml(failures={"nvmlShutdown": DRIVER_NOT_LOADED})
    reader = opened(fake)

    reader.close()

    assert fake.calls["nvmlShutdown"] == 1


def test_a_binding_without_the_health_functions_reads_only_the_clocks_and_starts_no_thread() -> (
    None
):
    fake = FakeNvml(count=2)  # of HEALTH_CALLS only nvmlDeviceGetClockInfo; no event sets
    reader = opened(fake)

    first = reader.read()
    second = reader.read()

    only_clocks = GpuHealth(sm_clock_mhz=0, memory_clock_mhz=0)
    assert [gpu.health for gpu in (*first.gpus, *second.gpus)] == [only_clocks] * 4
    assert (first.errors, second.errors) == ((), ())
    assert not [t for t in threading.enumerate() if t.name == "allsmi-nvml-xid"]
    reader.close()
