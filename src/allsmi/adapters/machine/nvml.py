"""The NVML reader: this machine's NVIDIA GPUs and their processes (docs/architecture.md §3.4).

Rules this module obeys:
- nvidia-ml-py (module ``pynvml``) is untyped. It is reached only through :class:`NvmlApi`,
  a protocol naming the functions used; :func:`load_nvml` imports the real module, and tests
  inject a fake one (a Python class, or the real module over a fake C library).
- One query helper, :meth:`NvmlReader._query`, maps every NVML error of a single query to
  ``None`` ("not available", as nvitop's ``nvmlQuery`` does). Two kinds are not local: a GPU
  that is lost or needs a reset is reported in ``errors`` and skipped (the other GPUs are still
  read); a driver-level failure ends the cycle with an ``errors`` entry. ``NVMLError`` never
  leaves this module (docs/architecture.md §8, rule 8); only :meth:`NvmlReader.open` raises,
  and it raises :class:`SourceUnavailable`.
- A value NVML does not give is ``None``, never 0. Units are converted here: NVML's mW → W.
- Static values (name, limits, thresholds, core count, PCI bus id, NUMA node, driver and CUDA
  versions) are read once per device, keyed by index and UUID, so a cycle costs only the
  dynamic calls (listed in ``DYNAMIC_CALLS``) plus one UUID read that checks the key.
- No clock, no threads: the composition root runs :meth:`NvmlReader.read` in a worker thread,
  one call in flight at a time.

NVMLError instances are unhashable (pynvml defines ``__eq__`` without ``__hash__``): errors
are compared by their integer ``value``, never put in sets or used as keys.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Final, Protocol, TypeVar, TypeVarTuple

import attrs

from allsmi.domain.errors import SourceUnavailable
from allsmi.domain.model import Gpu

__all__ = [
    "DYNAMIC_CALLS",
    "GpuReading",
    "NvmlApi",
    "NvmlReader",
    "RawGpuProcess",
    "load_nvml",
]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

# NVML enum values (nvml.h); stable ABI, so they need not come from the injected module.
NVML_TEMPERATURE_GPU: Final = 0
NVML_TEMPERATURE_THRESHOLD_SHUTDOWN: Final = 0
NVML_TEMPERATURE_THRESHOLD_SLOWDOWN: Final = 1
NVML_CLOCK_GRAPHICS: Final = 0
NVML_CLOCK_MEM: Final = 2
NVML_PSTATE_MAX: Final = 15  # P0..P15; NVML_PSTATE_UNKNOWN is 32
NVML_VALUE_NOT_AVAILABLE_ULL: Final = 2**64 - 1

# nvmlReturn_t codes that are not "this value is not available".
_GPU_FATAL: Final = frozenset({15, 16})  # GPU_IS_LOST, RESET_REQUIRED
_DRIVER_FATAL: Final = frozenset({1, 9, 12, 18})  # UNINITIALIZED, DRIVER_NOT_LOADED,
# LIBRARY_NOT_FOUND, LIB_RM_VERSION_MISMATCH

DYNAMIC_CALLS: Final = (
    "nvmlDeviceGetCount",
    "nvmlDeviceGetHandleByIndex",
    "nvmlDeviceGetUUID",
    "nvmlDeviceGetMemoryInfo",
    "nvmlDeviceGetUtilizationRates",
    "nvmlDeviceGetTemperature",
    "nvmlDeviceGetPowerUsage",
    "nvmlDeviceGetClockInfo",
    "nvmlDeviceGetFanSpeed",
    "nvmlDeviceGetPerformanceState",
    "nvmlDeviceGetCurrPcieLinkGeneration",
    "nvmlDeviceGetCurrPcieLinkWidth",
    "nvmlDeviceGetComputeRunningProcesses",
    "nvmlDeviceGetGraphicsRunningProcesses",
    "nvmlDeviceGetProcessUtilization",  # only on a GPU that has processes
)
"""The pynvml functions a cycle calls per device once static values are cached."""


# ---- the typed face of pynvml -----------------------------------------------------------


class NvmlMemory(Protocol):
    """``c_nvmlMemory_t`` (bytes)."""

    @property
    def total(self) -> int: ...
    @property
    def used(self) -> int: ...


class NvmlUtilization(Protocol):
    """``c_nvmlUtilization_t`` (percent over the last sample period)."""

    @property
    def gpu(self) -> int: ...
    @property
    def memory(self) -> int: ...


class NvmlProcessInfo(Protocol):
    """pynvml's friendly object of ``c_nvmlProcessInfo_v3_t``; memory None when unavailable."""

    @property
    def pid(self) -> int: ...
    @property
    def usedGpuMemory(self) -> int | None: ...  # NVML's field name


class NvmlProcessSample(Protocol):
    """``c_nvmlProcessUtilizationSample_t``; ``timeStamp`` in µs."""

    @property
    def pid(self) -> int: ...
    @property
    def timeStamp(self) -> int: ...  # NVML's field name
    @property
    def smUtil(self) -> int: ...  # NVML's field name


class NvmlPciInfo(Protocol):
    """``nvmlPciInfo_t``; ``busId`` comes back as bytes from the ctypes struct."""

    @property
    def busId(self) -> bytes | str: ...  # NVML's field name


class NvmlApi(Protocol):
    """The part of ``pynvml`` allsmi calls. Parameters are positional-only, as in the C API."""

    @property
    def NVMLError(self) -> type[Exception]: ...  # pynvml's name
    @property
    def NVMLLibraryMismatchError(self) -> type[Exception]: ...  # pynvml's name

    def nvmlInit(self, /) -> None: ...
    def nvmlShutdown(self, /) -> None: ...
    def nvmlSystemGetDriverVersion(self, /) -> str | bytes: ...
    def nvmlSystemGetCudaDriverVersion_v2(self, /) -> int: ...
    def nvmlDeviceGetCount(self, /) -> int: ...
    def nvmlDeviceGetHandleByIndex(self, index: int, /) -> object: ...
    def nvmlDeviceGetName(self, handle: object, /) -> str | bytes: ...
    def nvmlDeviceGetUUID(self, handle: object, /) -> str | bytes: ...
    def nvmlDeviceGetPciInfo(self, handle: object, /) -> NvmlPciInfo: ...
    def nvmlDeviceGetNumaNodeId(self, handle: object, /) -> int: ...
    def nvmlDeviceGetMemoryInfo(self, handle: object, /) -> NvmlMemory: ...
    def nvmlDeviceGetUtilizationRates(self, handle: object, /) -> NvmlUtilization: ...
    def nvmlDeviceGetTemperature(self, handle: object, sensor: int, /) -> int: ...
    def nvmlDeviceGetTemperatureThreshold(self, handle: object, kind: int, /) -> int: ...
    def nvmlDeviceGetPowerUsage(self, handle: object, /) -> int: ...  # mW
    def nvmlDeviceGetEnforcedPowerLimit(self, handle: object, /) -> int: ...  # mW
    def nvmlDeviceGetPowerManagementLimitConstraints(
        self, handle: object, /
    ) -> Sequence[int]: ...  # [min, max] mW
    def nvmlDeviceGetClockInfo(self, handle: object, kind: int, /) -> int: ...  # MHz
    def nvmlDeviceGetMaxClockInfo(self, handle: object, kind: int, /) -> int: ...  # MHz
    def nvmlDeviceGetFanSpeed(self, handle: object, /) -> int: ...  # percent
    def nvmlDeviceGetPerformanceState(self, handle: object, /) -> int: ...
    def nvmlDeviceGetNumGpuCores(self, handle: object, /) -> int: ...
    def nvmlDeviceGetCurrPcieLinkGeneration(self, handle: object, /) -> int: ...
    def nvmlDeviceGetCurrPcieLinkWidth(self, handle: object, /) -> int: ...
    def nvmlDeviceGetComputeRunningProcesses(
        self, handle: object, /
    ) -> Sequence[NvmlProcessInfo]: ...
    def nvmlDeviceGetGraphicsRunningProcesses(
        self, handle: object, /
    ) -> Sequence[NvmlProcessInfo]: ...
    def nvmlDeviceGetProcessUtilization(
        self, handle: object, last_seen_us: int, /
    ) -> Sequence[NvmlProcessSample]: ...


def load_nvml() -> NvmlApi:
    """The real binding. Imported here, so a machine without it can still replay files."""
    import pynvml  # nvidia-ml-py; untyped (mypy override), typed by NvmlApi

    api: NvmlApi = pynvml
    return api


# ---- what a cycle returns ---------------------------------------------------------------


@attrs.frozen
class RawGpuProcess:
    """A GPU process as NVML sees it, before psutil enrichment (adapters/procinfo.py)."""

    device_id: int  # GPU index
    device_uuid: str
    pid: int
    used_memory: int | None  # bytes of GPU memory; None where NVML cannot tell (WDDM, MIG)
    gpu_utilization: float | None = None  # percent SM, nvmlDeviceGetProcessUtilization


@attrs.frozen
class GpuReading:
    gpus: tuple[Gpu, ...]
    processes: tuple[RawGpuProcess, ...]
    errors: tuple[str, ...]  # "nvidia: GPU 3: GPU is lost", "nvidia: Driver Not Loaded"


@attrs.frozen
class _Static:
    """Per-device values that do not change while the driver is loaded."""

    name: str
    power_limit: float | None  # W
    gpu_core_count: int | None
    numa_node_id: int | None
    temperature_threshold_slowdown: int | None
    temperature_threshold_shutdown: int | None
    detail: dict[str, str]


class _GpuFailed(Exception):
    """This GPU cannot be read this cycle (lost, needs a reset)."""


class _DriverFailed(Exception):
    """NVML as a whole stopped answering; the cycle ends."""


def _text(value: str | bytes | None) -> str | None:
    """Some pynvml versions return bytes where newer ones return str."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _watts(milliwatts: int | None) -> float | None:
    return None if milliwatts is None else milliwatts / 1000


def _cuda_version(version: int | None) -> str | None:
    """NVML's CUDA driver version number, 12040 → ``"12.4"`` (nvml.h NVML_CUDA_DRIVER_VERSION)."""
    if version is None or version <= 0:
        return None
    return f"{version // 1000}.{version % 1000 // 10}"


def _error_code(err: Exception) -> int | None:
    value = getattr(err, "value", None)
    return value if isinstance(value, int) else None


# ---- the reader -------------------------------------------------------------------------


class NvmlReader:
    """Reads every GPU of this machine. ``open`` once, ``read`` each cycle, ``close`` at the end."""

    def __init__(self, api: NvmlApi, host_id: str, hostname: str) -> None:
        self._api = api
        self._host_id = host_id
        self._hostname = hostname
        self._opened = False
        self._static: dict[tuple[int, str], _Static] = {}
        self._system: dict[str, str] | None = None
        self._last_sample_us: dict[str, int] = {}  # per GPU uuid

    def open(self) -> None:
        """``nvmlInit``; raises :class:`SourceUnavailable` (``"nvidia: " + NVML's text``)."""
        try:
            self._api.nvmlInit()
        except self._api.NVMLError as err:
            raise SourceUnavailable(f"nvidia: {err}") from err
        self._opened = True

    def close(self) -> None:
        """``nvmlShutdown``; errors are ignored (the process is leaving anyway)."""
        if self._opened:
            self._opened = False
            with contextlib.suppress(self._api.NVMLError):
                self._api.nvmlShutdown()
        self._static.clear()
        self._system = None
        self._last_sample_us.clear()

    def read(self) -> GpuReading:
        """One cycle. NVML errors become ``None`` fields or ``errors`` entries, never raise."""
        try:
            count = self._api.nvmlDeviceGetCount()
        except self._api.NVMLError as err:
            return GpuReading((), (), (f"nvidia: {err}",))
        gpus: list[Gpu] = []
        processes: list[RawGpuProcess] = []
        errors: list[str] = []
        seen: set[tuple[int, str]] = set()
        try:
            system = self._system_detail()
            for index in range(count):
                try:
                    gpu, rows = self._read_device(index, system, seen)
                except _GpuFailed as failed:
                    errors.append(f"nvidia: GPU {index}: {failed}")
                    continue
                gpus.append(gpu)
                processes.extend(rows)
        except _DriverFailed as failed:
            errors.append(f"nvidia: {failed}")
        else:
            # Forget devices that went away, so a GPU that comes back is read afresh.
            for key in self._static.keys() - seen:
                del self._static[key]
            present = {uuid for _, uuid in seen}
            for uuid in self._last_sample_us.keys() - present:
                del self._last_sample_us[uuid]
        return GpuReading(tuple(gpus), tuple(processes), tuple(errors))

    # -- the query helper --

    def _query(self, fn: Callable[[*Ts], T], *args: *Ts) -> T | None:
        """``fn(*args)``, or ``None`` when NVML cannot give the value.

        NotSupported, NoPermission, FunctionNotFound, InvalidArgument, Unknown… all mean "not
        available". pynvml's ``throwOnVersionMismatch`` re-raises FunctionNotFound of the
        unversioned process queries as ``NVMLLibraryMismatchError``: also "not available".
        """
        try:
            return fn(*args)
        except self._api.NVMLLibraryMismatchError:
            return None
        except self._api.NVMLError as err:
            code = _error_code(err)
            if code in _GPU_FATAL:
                raise _GpuFailed(str(err)) from None
            if code in _DRIVER_FATAL:
                raise _DriverFailed(str(err)) from None
            return None

    # -- per cycle --

    def _system_detail(self) -> dict[str, str]:
        if self._system is None:
            api = self._api
            detail: dict[str, str] = {}
            driver = _text(self._query(api.nvmlSystemGetDriverVersion))
            if driver is not None:
                detail["driver_version"] = driver
            cuda = _cuda_version(self._query(api.nvmlSystemGetCudaDriverVersion_v2))
            if cuda is not None:
                detail["cuda_version"] = cuda
            self._system = detail
        return self._system

    def _read_device(
        self, index: int, system: dict[str, str], seen: set[tuple[int, str]]
    ) -> tuple[Gpu, list[RawGpuProcess]]:
        api = self._api
        try:
            handle = api.nvmlDeviceGetHandleByIndex(index)
        except api.NVMLError as err:
            if _error_code(err) in _DRIVER_FATAL:
                raise _DriverFailed(str(err)) from None
            raise _GpuFailed(str(err)) from None  # no handle, nothing to read
        uuid = _text(self._query(api.nvmlDeviceGetUUID, handle)) or f"GPU-unknown-{index}"
        key = (index, uuid)
        seen.add(key)
        static = self._static.get(key)
        if static is None:
            static = self._static[key] = self._read_static(handle, index, system)

        memory = self._query(api.nvmlDeviceGetMemoryInfo, handle)
        rates = self._query(api.nvmlDeviceGetUtilizationRates, handle)
        power_mw = self._query(api.nvmlDeviceGetPowerUsage, handle)
        pstate = self._query(api.nvmlDeviceGetPerformanceState, handle)
        detail = dict(static.detail)
        for name, fn in (
            ("pcie_gen_current", api.nvmlDeviceGetCurrPcieLinkGeneration),
            ("pcie_width_current", api.nvmlDeviceGetCurrPcieLinkWidth),
        ):
            value = self._query(fn, handle)
            if value is not None:
                detail[name] = str(value)
        gpu = Gpu(
            uuid=uuid,
            name=static.name,
            device_type="GPU",
            host_id=self._host_id,
            hostname=self._hostname,
            instance=self._hostname,
            utilization=None if rates is None else float(rates.gpu),
            temperature=self._query(api.nvmlDeviceGetTemperature, handle, NVML_TEMPERATURE_GPU),
            used_memory=None if memory is None else int(memory.used),
            total_memory=None if memory is None else int(memory.total),
            frequency=self._query(api.nvmlDeviceGetClockInfo, handle, NVML_CLOCK_GRAPHICS),
            power_consumption=_watts(power_mw),
            power_limit=static.power_limit,
            memory_utilization=None if rates is None else float(rates.memory),
            fan_speed_percent=self._query(api.nvmlDeviceGetFanSpeed, handle),
            performance_state=None if pstate is None or pstate > NVML_PSTATE_MAX else pstate,
            temperature_threshold_slowdown=static.temperature_threshold_slowdown,
            temperature_threshold_shutdown=static.temperature_threshold_shutdown,
            gpu_core_count=static.gpu_core_count,
            numa_node_id=static.numa_node_id,
            detail=detail,
        )
        return gpu, self._read_processes(handle, index, uuid)

    def _read_static(self, handle: object, index: int, system: dict[str, str]) -> _Static:
        api = self._api
        q = self._query
        detail = {"index": str(index), **system}
        constraints = q(api.nvmlDeviceGetPowerManagementLimitConstraints, handle)
        limit_max = _watts(constraints[1]) if constraints is not None else None
        if limit_max is not None:
            detail["power_limit_max"] = str(limit_max)
        for name, kind in (
            ("clock_graphics_max", NVML_CLOCK_GRAPHICS),
            ("clock_memory_max", NVML_CLOCK_MEM),
        ):
            mhz = q(api.nvmlDeviceGetMaxClockInfo, handle, kind)
            if mhz is not None:
                detail[name] = str(mhz)
        pci = q(api.nvmlDeviceGetPciInfo, handle)
        bus_id = None if pci is None else _text(pci.busId)
        if bus_id:
            detail["pci_bus_id"] = bus_id
        return _Static(
            name=_text(q(api.nvmlDeviceGetName, handle)) or "NVIDIA GPU",
            power_limit=_watts(q(api.nvmlDeviceGetEnforcedPowerLimit, handle)),
            gpu_core_count=q(api.nvmlDeviceGetNumGpuCores, handle),
            numa_node_id=q(api.nvmlDeviceGetNumaNodeId, handle),
            temperature_threshold_slowdown=q(
                api.nvmlDeviceGetTemperatureThreshold, handle, NVML_TEMPERATURE_THRESHOLD_SLOWDOWN
            ),
            temperature_threshold_shutdown=q(
                api.nvmlDeviceGetTemperatureThreshold, handle, NVML_TEMPERATURE_THRESHOLD_SHUTDOWN
            ),
            detail=detail,
        )

    def _read_processes(self, handle: object, index: int, uuid: str) -> list[RawGpuProcess]:
        """Compute and graphics processes, one row per pid (NVML lists a pid doing both twice)."""
        api = self._api
        memory_by_pid: dict[int, int | None] = {}
        for fn in (
            api.nvmlDeviceGetComputeRunningProcesses,
            api.nvmlDeviceGetGraphicsRunningProcesses,
        ):
            for info in self._query(fn, handle) or ():
                used = info.usedGpuMemory
                if used == NVML_VALUE_NOT_AVAILABLE_ULL:  # pynvml maps it; a fake may not
                    used = None
                pid = int(info.pid)
                if memory_by_pid.get(pid) is None:
                    memory_by_pid[pid] = None if used is None else int(used)
        if not memory_by_pid:
            return []
        sm = self._sm_utilization(handle, uuid)
        return [
            RawGpuProcess(index, uuid, pid, used, sm.get(pid))
            for pid, used in memory_by_pid.items()
        ]

    def _sm_utilization(self, handle: object, uuid: str) -> dict[int, float]:
        """Per-pid SM percent from the samples newer than the last one seen on this GPU.

        NVML answers NOT_FOUND when no sample is newer: then every process reads ``None``.
        """
        last_seen = self._last_sample_us.get(uuid, 0)
        samples = self._query(self._api.nvmlDeviceGetProcessUtilization, handle, last_seen)
        newest: dict[int, tuple[int, float]] = {}
        for sample in samples or ():
            stamp = int(sample.timeStamp)
            pid = int(sample.pid)
            if pid not in newest or stamp >= newest[pid][0]:
                newest[pid] = (stamp, float(sample.smUtil))
            last_seen = max(last_seen, stamp)
        self._last_sample_us[uuid] = last_seen
        return {pid: util for pid, (_, util) in newest.items()}
