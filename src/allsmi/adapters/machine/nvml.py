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
  dynamic calls (listed in ``DYNAMIC_CALLS`` and ``HEALTH_CALLS``) plus one UUID read that
  checks the key.
- Health signals (``Gpu.health``, docs/recording-format.md §5.3.3) go through
  :meth:`NvmlReader._optional`: a call that answers NotSupported, NoPermission or
  FunctionNotFound (a symbol the driver lacks, or a function the binding lacks) is ``None``
  and is remembered per device and per call, so it is never asked again while the device
  stays (no per-frame retries); any other error is ``None`` for this cycle only. Clock event
  reasons use ``nvmlDeviceGetCurrentClocksEventReasons``, and the older
  ``…ThrottleReasons`` name only when the current one is missing (FunctionNotFound).
- PCIe and NVLink throughput come from byte counters read in one batched
  ``nvmlDeviceGetFieldValues`` call per device (never ``nvmlDeviceGetPcieThroughput``, which
  samples for ~20 ms per call); a rate is the counter's difference over the difference of the
  values' own timestamps: ``None`` on a device's first cycle and whenever a counter went
  backwards (it restarted) or no time passed.
- Units are converted here: violation time ns → µs, energy mJ → J, NVLink KiB → bytes.
- XID errors come from an NVML event set, waited on with a timeout by this reader's own
  daemon thread (:class:`_XidWatch`), never by a cycle; a cycle only copies the counts
  under a lock. Counts are per device and per code since the reader opened; a device whose
  registration is refused has no XID reading (``xid_counts`` ``None``), not an error.
  :meth:`NvmlReader.close` stops the thread, then frees the set, then shuts NVML down. This
  is the one thread outside ``app/`` (docs/architecture.md §7.6): a blocking wait that no
  cycle may carry.
- ``health`` is ``None`` when nothing of it was read, as a row without it is written.
- Topology (``TOPOLOGY_CALLS``) is structure, not a reading: each device's NVLink links and MIG
  instances are read on its first cycle and again every ``topology_every`` cycles (60 by
  default, a minute at a 1 s interval), never in between; a cycle reuses what was read. Links
  0..``NVML_NVLINK_MAX_LINKS``-1 are asked ``nvmlDeviceGetNvLinkState``; a link refused for good
  (NotSupported, NoPermission, FunctionNotFound, or InvalidArgument: no such link) is
  remembered per device and link and never asked again, so a GPU without NVLink costs nothing
  after its first cycle. An active link's ``nvmlDeviceGetNvLinkRemoteDeviceType`` gives its
  ``remote_type`` (``gpu``, ``ibmnpu``, ``switch``, else ``unknown``;
  docs/recording-format.md §5.3.1). ``NvLinkRemoteDevice`` has no link state yet: a link NVML
  reports inactive is left out of ``nvlink_remote_devices``.
- MIG: a GPU whose current MIG mode is enabled has ``detail["mig_mode"] = "enabled"`` and is
  followed by one row per GPU instance, the representation of the dcgm-exporter reader
  (docs/architecture.md, ``dcgm.py``): uuid ``<GPU uuid>/<GPU instance id>``, the GPU's name,
  ``detail`` ``index`` (the GPU's), ``gpu_instance``, ``gpu_instance_profile`` (``3g.40gb``,
  from the MIG device's name) and ``mig_uuid`` (NVML's ``MIG-…``). A GPU instance split into
  several compute instances is one row (its memory is shared). Per cycle an instance costs
  ``nvmlDeviceGetMemoryInfo`` and, until refused for good, ``nvmlDeviceGetUtilizationRates``
  (drivers answer NotSupported on MIG: ``utilization`` ``None``). The rest of its fields are
  the GPU's and stay ``None`` there, so sums over rows do not count them twice.
- Otherwise no threads: the composition root runs :meth:`NvmlReader.read` in a worker
  thread, one call in flight at a time. The only clock is ``wall_ms``, injected, for the
  time an XID was received.

NVMLError instances are unhashable (pynvml defines ``__eq__`` without ``__hash__``): errors
are compared by their integer ``value``, never put in sets or used as keys.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
import time
from collections.abc import Callable, Sequence
from typing import Final, Protocol, TypeVar, TypeVarTuple, cast

import attrs

from allsmi.domain.errors import SourceUnavailable
from allsmi.domain.model import Gpu, GpuHealth, NvLinkRemoteDevice, clock_event_names

__all__ = [
    "DYNAMIC_CALLS",
    "HEALTH_CALLS",
    "HEALTH_FIELDS",
    "TOPOLOGY_CALLS",
    "TOPOLOGY_EVERY",
    "GpuReading",
    "NvmlApi",
    "NvmlHealthApi",
    "NvmlReader",
    "NvmlTopologyApi",
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
NVML_CLOCK_SM: Final = 1
NVML_CLOCK_MEM: Final = 2
NVML_PERF_POLICY_POWER: Final = 0
NVML_PERF_POLICY_THERMAL: Final = 1
NVML_MEMORY_ERROR_TYPE_CORRECTED: Final = 0
NVML_MEMORY_ERROR_TYPE_UNCORRECTED: Final = 1
NVML_VOLATILE_ECC: Final = 0
NVML_EVENT_TYPE_XID_CRITICAL_ERROR: Final = 0x8  # nvmlEventTypeXidCriticalError
NVML_SCOPE_ALL_LINKS: Final = 0xFFFFFFFF  # nvmlFieldValue_t.scopeId: every NVLink
# nvmlDeviceGetFieldValues ids (nvml.h NVML_FI_DEV_*)
FI_RETIRED_SBE: Final = 29
FI_RETIRED_DBE: Final = 30
FI_NVLINK_CRC_FLIT_ERROR_TOTAL: Final = 38
FI_NVLINK_CRC_DATA_ERROR_TOTAL: Final = 45
FI_NVLINK_REPLAY_ERROR_TOTAL: Final = 52
FI_NVLINK_RECOVERY_ERROR_TOTAL: Final = 59
FI_PCIE_REPLAY_COUNTER: Final = 94
FI_NVLINK_THROUGHPUT_DATA_TX: Final = 138  # KiB, cumulative
FI_NVLINK_THROUGHPUT_DATA_RX: Final = 139  # KiB, cumulative
FI_PCIE_COUNT_TX_BYTES: Final = 197  # bytes, cumulative
FI_PCIE_COUNT_RX_BYTES: Final = 198  # bytes, cumulative
_NVLINK_ERROR_FIELDS: Final = (
    FI_NVLINK_CRC_FLIT_ERROR_TOTAL,
    FI_NVLINK_CRC_DATA_ERROR_TOTAL,
    FI_NVLINK_REPLAY_ERROR_TOTAL,
    FI_NVLINK_RECOVERY_ERROR_TOTAL,
)
HEALTH_FIELDS: Final[tuple[tuple[int, int], ...]] = (
    (FI_PCIE_COUNT_TX_BYTES, 0),
    (FI_PCIE_COUNT_RX_BYTES, 0),
    (FI_PCIE_REPLAY_COUNTER, 0),
    (FI_NVLINK_THROUGHPUT_DATA_TX, NVML_SCOPE_ALL_LINKS),
    (FI_NVLINK_THROUGHPUT_DATA_RX, NVML_SCOPE_ALL_LINKS),
    *((field, 0) for field in _NVLINK_ERROR_FIELDS),
    (FI_RETIRED_SBE, 0),
    (FI_RETIRED_DBE, 0),
)
"""(field id, scope id) pairs asked of ``nvmlDeviceGetFieldValues`` in one call per device."""
NVML_NVLINK_MAX_LINKS: Final = 36  # nvml.h; a device answers InvalidArgument above its links
NVML_DEVICE_MIG_ENABLE: Final = 1
# nvmlIntNvLinkDeviceType_t → NvLinkRemoteDevice.remote_type (docs/recording-format.md §5.3.1)
NVLINK_REMOTE_TYPES: Final = {0: "gpu", 1: "ibmnpu", 2: "switch"}
NVML_PSTATE_MAX: Final = 15  # P0..P15; NVML_PSTATE_UNKNOWN is 32
NVML_VALUE_NOT_AVAILABLE_ULL: Final = 2**64 - 1

# nvmlReturn_t codes that are not "this value is not available".
_GPU_FATAL: Final = frozenset({15, 16})  # GPU_IS_LOST, RESET_REQUIRED
_DRIVER_FATAL: Final = frozenset({1, 9, 12, 18})  # UNINITIALIZED, DRIVER_NOT_LOADED,
# LIBRARY_NOT_FOUND, LIB_RM_VERSION_MISMATCH
NVML_ERROR_TIMEOUT: Final = 10
NVML_ERROR_FUNCTION_NOT_FOUND: Final = 13
# Answers that will not change while the device stays: asked once, then remembered.
_UNSUPPORTED: Final = frozenset({3, 4, NVML_ERROR_FUNCTION_NOT_FOUND})  # NOT_SUPPORTED,
# NO_PERMISSION, FUNCTION_NOT_FOUND
NVML_ERROR_INVALID_ARGUMENT: Final = 2
_NO_LINK: Final = _UNSUPPORTED | {NVML_ERROR_INVALID_ARGUMENT}  # also "no such link"
TOPOLOGY_EVERY: Final = 60  # cycles between two reads of a device's links and MIG instances

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

HEALTH_CALLS: Final = (
    "nvmlDeviceGetCurrentClocksEventReasons",  # …ThrottleReasons on a driver without it
    "nvmlDeviceGetClockInfo",  # SM and memory, besides the graphics clock above
    "nvmlDeviceGetViolationStatus",  # power and thermal
    "nvmlDeviceGetTotalEccErrors",  # corrected and uncorrected, volatile
    "nvmlDeviceGetRemappedRows",
    "nvmlDeviceGetFieldValues",  # HEALTH_FIELDS, one call
    "nvmlDeviceGetEncoderUtilization",
    "nvmlDeviceGetDecoderUtilization",
    "nvmlDeviceGetTotalEnergyConsumption",
)
"""The pynvml functions behind ``Gpu.health``, each dropped for a device that refused it."""

TOPOLOGY_CALLS: Final = (
    "nvmlDeviceGetNvLinkState",  # per link, each dropped for a link that refused it
    "nvmlDeviceGetNvLinkRemoteDeviceType",  # per active link
    "nvmlDeviceGetMigMode",
    "nvmlDeviceGetMaxMigDeviceCount",  # MIG mode on only, as the three below
    "nvmlDeviceGetMigDeviceHandleByIndex",
    "nvmlDeviceGetGpuInstanceId",
    "nvmlDeviceGetName",  # of each MIG device: its profile
    "nvmlDeviceGetUUID",  # of each MIG device
)
"""The pynvml functions a device's first cycle calls, and every ``topology_every``-th after;
each MIG instance adds ``nvmlDeviceGetMemoryInfo`` and ``nvmlDeviceGetUtilizationRates`` to
every cycle."""


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


class NvmlViolationTime(Protocol):
    """``c_nvmlViolationTime_t`` (ns)."""

    @property
    def violationTime(self) -> int: ...  # NVML's field name


class NvmlValue(Protocol):
    """``c_nvmlValue_t``, the union of a field value."""

    @property
    def dVal(self) -> float: ...  # NVML's field names
    @property
    def uiVal(self) -> int: ...
    @property
    def ulVal(self) -> int: ...
    @property
    def ullVal(self) -> int: ...
    @property
    def sllVal(self) -> int: ...
    @property
    def siVal(self) -> int: ...
    @property
    def usVal(self) -> int: ...


class NvmlFieldValue(Protocol):
    """``c_nvmlFieldValue_t``: ``timestamp`` in µs since the epoch, ``nvmlReturn`` per field."""

    @property
    def fieldId(self) -> int: ...  # NVML's field names
    @property
    def timestamp(self) -> int: ...
    @property
    def valueType(self) -> int: ...
    @property
    def nvmlReturn(self) -> int: ...
    @property
    def value(self) -> NvmlValue: ...


class NvmlEventData(Protocol):
    """``c_nvmlEventData_t``; ``eventData`` holds the XID code of an XID event."""

    @property
    def device(self) -> object: ...  # NVML's field names
    @property
    def eventType(self) -> int: ...
    @property
    def eventData(self) -> int: ...


class NvmlHealthApi(NvmlApi, Protocol):
    """The health calls (``HEALTH_CALLS``) and the event set. Not part of :class:`NvmlApi`: a
    binding (or a fake) without one of them reads as FunctionNotFound for it."""

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: object, /) -> int: ...
    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: object, /) -> int: ...
    def nvmlDeviceGetViolationStatus(self, handle: object, policy: int, /) -> NvmlViolationTime: ...
    def nvmlDeviceGetTotalEccErrors(
        self, handle: object, error_type: int, counter_type: int, /
    ) -> int: ...
    def nvmlDeviceGetRemappedRows(self, handle: object, /) -> tuple[int, int, int, int]: ...
    def nvmlDeviceGetFieldValues(
        self, handle: object, fields: Sequence[tuple[int, int]], /
    ) -> Sequence[NvmlFieldValue]: ...
    def nvmlDeviceGetEncoderUtilization(self, handle: object, /) -> Sequence[int]: ...
    def nvmlDeviceGetDecoderUtilization(self, handle: object, /) -> Sequence[int]: ...
    def nvmlDeviceGetTotalEnergyConsumption(self, handle: object, /) -> int: ...  # mJ
    def nvmlEventSetCreate(self, /) -> object: ...
    def nvmlDeviceRegisterEvents(
        self, handle: object, types: int, event_set: object, /
    ) -> None: ...
    def nvmlEventSetWait_v2(self, event_set: object, timeout_ms: int, /) -> NvmlEventData: ...
    def nvmlEventSetFree(self, event_set: object, /) -> None: ...


class NvmlTopologyApi(NvmlHealthApi, Protocol):
    """NVLink links and MIG instances (``TOPOLOGY_CALLS``); like the health calls, each may be
    missing from a binding or a driver (FunctionNotFound)."""

    def nvmlDeviceGetNvLinkState(self, handle: object, link: int, /) -> int: ...
    def nvmlDeviceGetNvLinkRemoteDeviceType(self, handle: object, link: int, /) -> int: ...
    def nvmlDeviceGetMigMode(self, handle: object, /) -> Sequence[int]: ...  # [current, pending]
    def nvmlDeviceGetMaxMigDeviceCount(self, handle: object, /) -> int: ...
    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: object, index: int, /) -> object: ...
    def nvmlDeviceGetGpuInstanceId(self, handle: object, /) -> int: ...


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


_NO_HEALTH: Final = GpuHealth()


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


def _field_number(field: NvmlFieldValue) -> int | None:
    """A field value as an int, by its ``valueType`` (nvml.h ``nvmlValueType_t``)."""
    value = field.value
    match field.valueType:
        case 0:
            return int(value.dVal)
        case 1:
            return int(value.uiVal)
        case 2:
            return int(value.ulVal)
        case 3:
            return int(value.ullVal)
        case 4:
            return int(value.sllVal)
        case 5:
            return int(value.siVal)
        case 6:
            return int(value.usVal)
    return None


def _handle_key(handle: object) -> object:
    """A device handle as a dict key: pynvml's handles are ctypes pointers, equal only by
    the address they hold (the one in an event's ``device`` is a new pointer object)."""
    if isinstance(handle, ctypes._Pointer):
        return ctypes.cast(handle, ctypes.c_void_p).value
    return handle


def _epoch_ms() -> int:
    return time.time_ns() // 1_000_000


class _DeviceState:
    """What a cycle remembers of one device between cycles (dropped when it goes away)."""

    def __init__(self) -> None:
        self.refused: dict[str, int] = {}  # call or "field N" → the NVML code that refused it
        self.counters: dict[int, tuple[int, int]] = {}  # field id → (value, timestamp µs)
        self.topology_cycle: int | None = None  # the cycle that last read links and MIG
        self.links: tuple[NvLinkRemoteDevice, ...] = ()
        self.mig_enabled = False
        self.mig: tuple[_MigInstance, ...] = ()

    def rate(self, field: int, reading: tuple[int, int] | None, scale: int) -> float | None:
        """Units per second of a cumulative counter since the previous cycle that read it;
        ``None`` on the first reading, when the counter went backwards, or when no time
        passed. ``scale`` converts the counter's unit to the rate's (KiB → bytes)."""
        if reading is None:
            return None
        previous = self.counters.get(field)
        self.counters[field] = reading
        if previous is None:
            return None
        grown, elapsed_us = reading[0] - previous[0], reading[1] - previous[1]
        if grown < 0 or elapsed_us <= 0:
            return None
        return grown * scale * 1_000_000 / elapsed_us


@attrs.frozen
class _MigInstance:
    """One GPU instance of a GPU in MIG mode, as its topology read found it."""

    handle: object  # the MIG device handle (its first compute instance)
    gpu_instance: int
    profile: str | None  # "3g.40gb"
    mig_uuid: str | None  # "MIG-…"
    state: _DeviceState  # what this instance refused (utilization), kept across reads


def _remote_type(code: int | None) -> str:
    return "unknown" if code is None else NVLINK_REMOTE_TYPES.get(code, "unknown")


def _link_row(link: int, active: bool, remote: int | None) -> NvLinkRemoteDevice | None:
    """One link of ``nvlink_remote_devices`` (docs/recording-format.md §5.3.1)."""
    return NvLinkRemoteDevice(link, _remote_type(remote), state="active" if active else "inactive")


def _mig_profile(name: str | None) -> str | None:
    """A MIG device's GPU instance profile from its name: ``NVIDIA A100-SXM4-40GB MIG 3g.20gb``
    → ``3g.20gb``; a compute instance's ``1c.3g.20gb`` → its GPU instance's ``3g.20gb``."""
    if name is None or " MIG " not in name:
        return None
    profile = name.rsplit(" MIG ", 1)[1].strip()
    head, dot, rest = profile.partition(".")
    if dot and head.endswith("c") and head[:-1].isdigit() and "." in rest:
        profile = rest
    return profile or None


class _XidWatch:
    """XID events of the registered devices, counted by a daemon thread that waits on one
    NVML event set (docs/recording-format.md §5.3.3). ``register`` and ``reading`` are
    called by cycles; only the thread waits."""

    def __init__(self, api: NvmlHealthApi, wait_ms: int, wall_ms: Callable[[], int]) -> None:
        self._api = api
        self._wait_ms = wait_ms
        self._wall_ms = wall_ms
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._set: object | None = None
        self._unavailable = False  # the event set could not be created: no XIDs at all
        self._tried: set[str] = set()  # uuids whose registration was answered
        self._devices: dict[object, str] = {}  # handle key → uuid (registered only)
        self._counts: dict[str, dict[str, int]] = {}
        self._last: dict[str, tuple[int, int]] = {}  # uuid → (code, ms)

    def register(self, handle: object, uuid: str) -> None:
        """Register the device's critical XID events once; a refusal is final for it."""
        if self._unavailable or uuid in self._tried:
            return
        api = self._api
        try:
            if self._set is None:
                self._set = api.nvmlEventSetCreate()
            api.nvmlDeviceRegisterEvents(handle, NVML_EVENT_TYPE_XID_CRITICAL_ERROR, self._set)
        except AttributeError:  # a binding without events
            self._unavailable = True
            return
        except api.NVMLError as err:
            code = _error_code(err)
            if self._set is None:
                self._unavailable = code in _UNSUPPORTED
            elif code not in _GPU_FATAL and code not in _DRIVER_FATAL:
                self._tried.add(uuid)  # refused for this device: it has no XID reading
            return
        self._tried.add(uuid)
        with self._lock:
            self._devices[_handle_key(handle)] = uuid
            self._counts.setdefault(uuid, {})
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, args=(self._set,), name="allsmi-nvml-xid", daemon=True
            )
            self._thread.start()

    def reading(self, uuid: str) -> tuple[dict[str, int] | None, int | None, int | None]:
        """(counts by code, last code, its ms) of a device; all ``None`` if not registered."""
        with self._lock:
            counts = self._counts.get(uuid)
            if counts is None:
                return None, None, None
            last = self._last.get(uuid)
            return dict(counts), *(last if last is not None else (None, None))

    def close(self) -> None:
        """Stop the thread (it leaves within one wait), then free the set."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(self._wait_ms / 1000 + 5.0)
        if self._set is not None and (thread is None or not thread.is_alive()):
            with contextlib.suppress(self._api.NVMLError):
                self._api.nvmlEventSetFree(self._set)
        self._set = None

    def _run(self, event_set: object) -> None:
        api = self._api
        while not self._stop.is_set():
            try:
                data = api.nvmlEventSetWait_v2(event_set, self._wait_ms)
            except api.NVMLError as err:
                code = _error_code(err)
                if code in _UNSUPPORTED:
                    return  # this driver cannot wait: no XIDs, and no spinning
                if code != NVML_ERROR_TIMEOUT:
                    self._stop.wait(self._wait_ms / 1000)  # a failing wait must not spin
                continue
            if not data.eventType & NVML_EVENT_TYPE_XID_CRITICAL_ERROR:
                continue
            xid, seen_ms = int(data.eventData), self._wall_ms()
            with self._lock:
                uuid = self._devices.get(_handle_key(data.device))
                if uuid is None:
                    continue
                counts = self._counts[uuid]
                counts[str(xid)] = counts.get(str(xid), 0) + 1
                self._last[uuid] = (xid, seen_ms)


# ---- the reader -------------------------------------------------------------------------


class NvmlReader:
    """Reads every GPU of this machine. ``open`` once, ``read`` each cycle, ``close`` at the end."""

    def __init__(
        self,
        api: NvmlApi,
        host_id: str,
        hostname: str,
        *,
        xid_wait_ms: int = 250,
        wall_ms: Callable[[], int] = _epoch_ms,
        topology_every: int = TOPOLOGY_EVERY,
    ) -> None:
        self._api = api
        self._health = cast(NvmlTopologyApi, api)  # each call may be missing: _optional
        self._topology_every = max(1, topology_every)
        self._cycle = 0
        self._host_id = host_id
        self._hostname = hostname
        self._xid_wait_ms = xid_wait_ms
        self._wall_ms = wall_ms
        self._opened = False
        self._static: dict[tuple[int, str], _Static] = {}
        self._devices: dict[tuple[int, str], _DeviceState] = {}
        self._xid: _XidWatch | None = None
        self._system: dict[str, str] | None = None
        self._last_sample_us: dict[str, int] = {}  # per GPU uuid

    def open(self) -> None:
        """``nvmlInit``; raises :class:`SourceUnavailable` (``"nvidia: " + NVML's text``)."""
        try:
            self._api.nvmlInit()
        except self._api.NVMLError as err:
            raise SourceUnavailable(f"nvidia: {err}") from err
        self._opened = True
        self._xid = _XidWatch(self._health, self._xid_wait_ms, self._wall_ms)

    def close(self) -> None:
        """Stop the XID thread, free its event set, ``nvmlShutdown``; errors are ignored (the
        process is leaving anyway)."""
        if self._xid is not None:
            self._xid.close()
            self._xid = None
        if self._opened:
            self._opened = False
            with contextlib.suppress(self._api.NVMLError):
                self._api.nvmlShutdown()
        self._static.clear()
        self._devices.clear()
        self._system = None
        self._last_sample_us.clear()

    def read(self) -> GpuReading:
        """One cycle. NVML errors become ``None`` fields or ``errors`` entries, never raise."""
        self._cycle += 1
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
                    device_rows, rows = self._read_device(index, system, seen)
                except _GpuFailed as failed:
                    errors.append(f"nvidia: GPU {index}: {failed}")
                    continue
                gpus.extend(device_rows)
                processes.extend(rows)
        except _DriverFailed as failed:
            errors.append(f"nvidia: {failed}")
        else:
            # Forget devices that went away, so a GPU that comes back is read afresh.
            for key in self._static.keys() - seen:
                del self._static[key]
            for key in self._devices.keys() - seen:
                del self._devices[key]
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

    def _optional(
        self,
        device: _DeviceState,
        name: str,
        get: Callable[[NvmlTopologyApi], Callable[[*Ts], T]],
        *args: *Ts,
        final: frozenset[int] = _UNSUPPORTED,
    ) -> T | None:
        """``get(api)(*args)`` as :meth:`_query`, for a call a device may refuse for good:
        NotSupported, NoPermission and FunctionNotFound (also a binding without the
        function), or the codes in ``final``, are remembered under ``name`` and never asked
        again of this device."""
        if name in device.refused:
            return None
        try:
            fn = get(self._health)
        except AttributeError:
            device.refused[name] = NVML_ERROR_FUNCTION_NOT_FOUND
            return None
        try:
            return fn(*args)
        except self._api.NVMLError as err:
            code = _error_code(err)
            if code in _GPU_FATAL:
                raise _GpuFailed(str(err)) from None
            if code in _DRIVER_FATAL:
                raise _DriverFailed(str(err)) from None
            if code in final:
                device.refused[name] = code
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
    ) -> tuple[list[Gpu], list[RawGpuProcess]]:
        """The GPU's row, then its MIG instances' rows; and its processes."""
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
        if self._xid is not None:
            self._xid.register(handle, uuid)  # once per device; at once when already answered
        state = self._devices.get(key)
        if state is None:
            state = self._devices[key] = _DeviceState()
        if state.topology_cycle is None or (
            self._cycle - state.topology_cycle >= self._topology_every
        ):
            state.topology_cycle = self._cycle
            state.links = self._read_links(state, handle)
            self._read_mig(state, handle)

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
        if state.mig_enabled:
            detail["mig_mode"] = "enabled"
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
            nvlink_remote_devices=state.links,
            detail=detail,
            health=self._read_health(state, handle, uuid),
        )
        rows = [gpu, *(self._mig_row(gpu, instance, system) for instance in state.mig)]
        return rows, self._read_processes(handle, index, uuid)

    # -- topology: NVLink links and MIG instances, read every topology_every cycles --

    def _read_links(self, state: _DeviceState, handle: object) -> tuple[NvLinkRemoteDevice, ...]:
        """The device's links; a link refused for good (``_NO_LINK``) is not asked again."""
        rows: list[NvLinkRemoteDevice] = []
        for link in range(NVML_NVLINK_MAX_LINKS):
            active = self._optional(
                state,
                f"nvmlDeviceGetNvLinkState({link})",
                lambda a: a.nvmlDeviceGetNvLinkState,
                handle,
                link,
                final=_NO_LINK,
            )
            if active is None:
                continue
            remote = None
            if active:
                remote = self._optional(
                    state,
                    "nvmlDeviceGetNvLinkRemoteDeviceType",
                    lambda a: a.nvmlDeviceGetNvLinkRemoteDeviceType,
                    handle,
                    link,
                )
            row = _link_row(link, bool(active), remote)
            if row is not None:
                rows.append(row)
        return tuple(rows)

    def _read_mig(self, state: _DeviceState, handle: object) -> None:
        """``state.mig_enabled`` and ``state.mig``: the GPU instances, by id (the first MIG
        device of each). An instance read before keeps what it refused."""
        q = self._optional
        mode = q(state, "nvmlDeviceGetMigMode", lambda a: a.nvmlDeviceGetMigMode, handle)
        state.mig_enabled = mode is not None and int(mode[0]) == NVML_DEVICE_MIG_ENABLE
        if not state.mig_enabled:
            state.mig = ()
            return
        slots = q(
            state,
            "nvmlDeviceGetMaxMigDeviceCount",
            lambda a: a.nvmlDeviceGetMaxMigDeviceCount,
            handle,
        )
        before = {instance.gpu_instance: instance.state for instance in state.mig}
        found: dict[int, _MigInstance] = {}
        for slot in range(slots or 0):
            mig = q(
                state,
                "nvmlDeviceGetMigDeviceHandleByIndex",
                lambda a: a.nvmlDeviceGetMigDeviceHandleByIndex,
                handle,
                slot,
            )
            if mig is None:
                continue  # an empty slot answers NotFound
            gi = q(state, "nvmlDeviceGetGpuInstanceId", lambda a: a.nvmlDeviceGetGpuInstanceId, mig)
            if gi is None or gi in found:
                continue  # a further compute instance of a GPU instance already listed
            found[gi] = _MigInstance(
                handle=mig,
                gpu_instance=gi,
                profile=_mig_profile(_text(self._query(self._api.nvmlDeviceGetName, mig))),
                mig_uuid=_text(self._query(self._api.nvmlDeviceGetUUID, mig)),
                state=before.get(gi) or _DeviceState(),
            )
        state.mig = tuple(found[gi] for gi in sorted(found))

    def _mig_row(self, gpu: Gpu, instance: _MigInstance, system: dict[str, str]) -> Gpu:
        """A GPU instance's row of this cycle (the module docstring's representation)."""
        memory = self._query(self._api.nvmlDeviceGetMemoryInfo, instance.handle)
        rates = self._optional(
            instance.state,
            "nvmlDeviceGetUtilizationRates",
            lambda a: a.nvmlDeviceGetUtilizationRates,
            instance.handle,
        )
        detail = {"index": gpu.detail.get("index", ""), **system}
        detail["gpu_instance"] = str(instance.gpu_instance)
        if instance.profile is not None:
            detail["gpu_instance_profile"] = instance.profile
        if instance.mig_uuid is not None:
            detail["mig_uuid"] = instance.mig_uuid
        return Gpu(
            uuid=f"{gpu.uuid}/{instance.gpu_instance}",
            name=gpu.name,
            device_type=gpu.device_type,
            host_id=gpu.host_id,
            hostname=gpu.hostname,
            instance=gpu.instance,
            utilization=None if rates is None else float(rates.gpu),
            used_memory=None if memory is None else int(memory.used),
            total_memory=None if memory is None else int(memory.total),
            memory_utilization=None if rates is None else float(rates.memory),
            detail=detail,
        )

    def _read_health(self, state: _DeviceState, handle: object, uuid: str) -> GpuHealth | None:
        """``Gpu.health`` (docs/recording-format.md §5.3.3); ``None`` when nothing was read."""
        q = self._optional
        current = "nvmlDeviceGetCurrentClocksEventReasons"
        mask = q(state, current, lambda a: a.nvmlDeviceGetCurrentClocksEventReasons, handle)
        if mask is None and state.refused.get(current) == NVML_ERROR_FUNCTION_NOT_FOUND:
            mask = q(
                state,
                "nvmlDeviceGetCurrentClocksThrottleReasons",
                lambda a: a.nvmlDeviceGetCurrentClocksThrottleReasons,
                handle,
            )
        clocks = {
            kind: q(
                state,
                f"nvmlDeviceGetClockInfo({kind})",
                lambda a: a.nvmlDeviceGetClockInfo,
                handle,
                kind,
            )
            for kind in (NVML_CLOCK_SM, NVML_CLOCK_MEM)
        }
        violation_us: dict[int, int | None] = {}
        for policy in (NVML_PERF_POLICY_POWER, NVML_PERF_POLICY_THERMAL):
            held = q(
                state,
                f"nvmlDeviceGetViolationStatus({policy})",
                lambda a: a.nvmlDeviceGetViolationStatus,
                handle,
                policy,
            )
            violation_us[policy] = None if held is None else int(held.violationTime) // 1000
        ecc = {
            kind: q(
                state,
                f"nvmlDeviceGetTotalEccErrors({kind})",
                lambda a: a.nvmlDeviceGetTotalEccErrors,
                handle,
                kind,
                NVML_VOLATILE_ECC,
            )
            for kind in (NVML_MEMORY_ERROR_TYPE_CORRECTED, NVML_MEMORY_ERROR_TYPE_UNCORRECTED)
        }
        remap = q(state, "nvmlDeviceGetRemappedRows", lambda a: a.nvmlDeviceGetRemappedRows, handle)
        fields = self._read_fields(state, handle)
        encoder = q(
            state,
            "nvmlDeviceGetEncoderUtilization",
            lambda a: a.nvmlDeviceGetEncoderUtilization,
            handle,
        )
        decoder = q(
            state,
            "nvmlDeviceGetDecoderUtilization",
            lambda a: a.nvmlDeviceGetDecoderUtilization,
            handle,
        )
        energy_mj = q(
            state,
            "nvmlDeviceGetTotalEnergyConsumption",
            lambda a: a.nvmlDeviceGetTotalEnergyConsumption,
            handle,
        )
        xid_counts, last_xid, last_xid_ms = (
            self._xid.reading(uuid) if self._xid is not None else (None, None, None)
        )

        def count(field: int) -> int | None:
            reading = fields.get(field)
            return None if reading is None else reading[0]

        def total(ids: Sequence[int]) -> int | None:
            known = [value for value in map(count, ids) if value is not None]
            return sum(known) if known else None

        health = GpuHealth(
            clock_events=None if mask is None else clock_event_names(mask),
            sm_clock_mhz=clocks[NVML_CLOCK_SM],
            memory_clock_mhz=clocks[NVML_CLOCK_MEM],
            power_violation_us=violation_us[NVML_PERF_POLICY_POWER],
            thermal_violation_us=violation_us[NVML_PERF_POLICY_THERMAL],
            ecc_corrected=ecc[NVML_MEMORY_ERROR_TYPE_CORRECTED],
            ecc_uncorrected=ecc[NVML_MEMORY_ERROR_TYPE_UNCORRECTED],
            remapped_correctable=None if remap is None else int(remap[0]),
            remapped_uncorrectable=None if remap is None else int(remap[1]),
            remap_pending=None if remap is None else bool(remap[2]),
            remap_failure=None if remap is None else bool(remap[3]),
            retired_pages=total((FI_RETIRED_SBE, FI_RETIRED_DBE)),
            pcie_tx_bytes_s=state.rate(
                FI_PCIE_COUNT_TX_BYTES, fields.get(FI_PCIE_COUNT_TX_BYTES), 1
            ),
            pcie_rx_bytes_s=state.rate(
                FI_PCIE_COUNT_RX_BYTES, fields.get(FI_PCIE_COUNT_RX_BYTES), 1
            ),
            pcie_replays=count(FI_PCIE_REPLAY_COUNTER),
            nvlink_tx_bytes_s=state.rate(
                FI_NVLINK_THROUGHPUT_DATA_TX, fields.get(FI_NVLINK_THROUGHPUT_DATA_TX), 1024
            ),
            nvlink_rx_bytes_s=state.rate(
                FI_NVLINK_THROUGHPUT_DATA_RX, fields.get(FI_NVLINK_THROUGHPUT_DATA_RX), 1024
            ),
            nvlink_errors=total(_NVLINK_ERROR_FIELDS),
            encoder_utilization=None if encoder is None else float(encoder[0]),
            decoder_utilization=None if decoder is None else float(decoder[0]),
            energy_j=None if energy_mj is None else energy_mj / 1000,
            xid_counts=xid_counts,
            last_xid=last_xid,
            last_xid_ms=last_xid_ms,
        )
        return None if health == _NO_HEALTH else health

    def _read_fields(self, state: _DeviceState, handle: object) -> dict[int, tuple[int, int]]:
        """``HEALTH_FIELDS`` in one call: field id → (value, timestamp µs). A field refused
        for good (its own ``nvmlReturn``) is left out of the later calls."""
        wanted = [pair for pair in HEALTH_FIELDS if f"field {pair[0]}" not in state.refused]
        if not wanted:
            return {}
        values = self._optional(
            state, "nvmlDeviceGetFieldValues", lambda a: a.nvmlDeviceGetFieldValues, handle, wanted
        )
        read: dict[int, tuple[int, int]] = {}
        for field in values or ():
            code = int(field.nvmlReturn)
            if code == 0:
                number = _field_number(field)
                if number is not None:
                    read[int(field.fieldId)] = (number, int(field.timestamp))
            elif code in _UNSUPPORTED:
                state.refused[f"field {int(field.fieldId)}"] = code
        return read

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
