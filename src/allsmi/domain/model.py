"""The schema-1 metric model (docs/recording-format.md §5) as frozen attrs values.

Rules this module obeys:
- Field names are those of all-smi's snapshot JSON, so a scrape of either tool
  maps onto one model. Units are in the field name or in the trailing comment.
- A reading that is not available is ``None``, never an invented 0.
- Time is integer milliseconds since the Unix epoch (UTC); the wire form (RFC 3339) is the
  serializer's business, not the model's.
- Every row carries ``host_id``/``hostname``; host ids are normalised (no scheme, no
  trailing slash) by :func:`normalise_host_id`.
- Sections of a frame are tuples of rows, any number of hosts. A section that was not
  collected is ``None`` (drawn as ``no data``); a collected but empty one is ``()``.
- :data:`SECTION_TABLE` is the one list of sections: every other list of them (the wire keys,
  ``--include``, the sources' defaults, the remote scrape, the builder in
  :mod:`allsmi.domain.sections`) is derived from it.

The field order of each class is the key order on the wire.
"""

from __future__ import annotations

from typing import Final, Literal

import attrs

SCHEMA_VERSION: Final = 1
FORMAT_CHUNKED: Final = "chunked-1"
WRITER_NAME: Final = "allsmi"

Source = Literal["local", "remote"]
# Integers a reading may hold: what JSON writers (orjson) and readers agree on. A peer that
# sends more is sending nonsense, and it must not be able to make the recorder fail.
INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**64 - 1


def bounded_int(value: int) -> int | None:
    """``value`` if it fits a reading, else None (not available)."""
    return value if INT_MIN <= value <= INT_MAX else None


def normalise_host_id(host: str) -> str:
    """``http://dgx-01:9090/`` → ``dgx-01:9090``; surrounding blanks dropped."""
    text = host.strip()
    for scheme in ("http://", "https://"):
        if text.lower().startswith(scheme):
            text = text[len(scheme) :]
            break
    return text.rstrip("/")


@attrs.frozen
class NvLinkRemoteDevice:
    link_index: int
    remote_type: str  # gpu | ibmnpu | switch | unknown
    bandwidth_mb_s: int | None = None  # MB/s
    state: str | None = None  # active | inactive (None: not read)


@attrs.frozen
class GpmMetrics:
    sm_occupancy: float | None = None  # fraction 0..1
    memory_bandwidth_utilization: float | None = None  # fraction 0..1


# Clock event ("throttle") reasons, by NVML bit (docs/recording-format.md §5.3): the names a
# GPU's ``health.clock_events`` lists. The bitmask is NVML's and DCGM's alike.
CLOCK_EVENT_BITS: Final[tuple[tuple[int, str], ...]] = (
    (0x001, "gpu_idle"),
    (0x002, "applications_clocks"),
    (0x004, "sw_power_cap"),
    (0x008, "hw_slowdown"),
    (0x010, "sync_boost"),
    (0x020, "sw_thermal"),
    (0x040, "hw_thermal"),
    (0x080, "hw_power_brake"),
    (0x100, "display_clock"),
)


def clock_event_names(mask: int) -> tuple[str, ...]:
    """The names of the reasons set in an NVML/DCGM clock event bitmask, in bit order
    (bits no name is known for are left out)."""
    return tuple(name for bit, name in CLOCK_EVENT_BITS if mask & bit)


@attrs.frozen
class GpuHealth:
    """Why a GPU slowed or failed (docs/recording-format.md §5.3): each field ``None`` when
    not read. Counters are cumulative as the device (or the recorder, for XIDs) counts them:
    readers take differences."""

    clock_events: tuple[str, ...] | None = None  # names from CLOCK_EVENT_BITS, active now
    sm_clock_mhz: int | None = None  # MHz
    memory_clock_mhz: int | None = None  # MHz
    power_violation_us: int | None = None  # µs held down by the power limit, cumulative
    thermal_violation_us: int | None = None  # µs held down thermally, cumulative
    ecc_corrected: int | None = None  # volatile total since the driver loaded
    ecc_uncorrected: int | None = None  # volatile total since the driver loaded
    remapped_correctable: int | None = None  # rows
    remapped_uncorrectable: int | None = None  # rows
    remap_pending: bool | None = None
    remap_failure: bool | None = None
    retired_pages: int | None = None  # pages
    pcie_tx_bytes_s: float | None = None  # B/s
    pcie_rx_bytes_s: float | None = None  # B/s
    pcie_replays: int | None = None  # cumulative
    nvlink_tx_bytes_s: float | None = None  # B/s, all links
    nvlink_rx_bytes_s: float | None = None  # B/s, all links
    nvlink_errors: int | None = None  # CRC, replay and recovery errors, all links, cumulative
    encoder_utilization: float | None = None  # percent
    decoder_utilization: float | None = None  # percent
    energy_j: float | None = None  # J, the device's own counter (since driver load)
    xid_counts: dict[str, int] | None = None  # XID code → count since the recorder started
    last_xid: int | None = None  # the last XID code seen
    last_xid_ms: int | None = None  # ms since the epoch, when it was seen


@attrs.frozen
class Gpu:
    uuid: str
    name: str
    device_type: str  # "GPU", "NPU", "TPU"…
    host_id: str
    hostname: str
    instance: str
    utilization: float | None = None  # percent 0..100
    temperature: int | None = None  # °C
    used_memory: int | None = None  # bytes
    total_memory: int | None = None  # bytes
    frequency: int | None = None  # MHz, graphics clock
    power_consumption: float | None = None  # W
    power_limit: float | None = None  # W, the enforced limit
    memory_utilization: float | None = None  # percent of time memory was read or written
    fan_speed_percent: int | None = None  # percent of max
    performance_state: int | None = None  # P0..P15
    temperature_threshold_slowdown: int | None = None  # °C
    temperature_threshold_shutdown: int | None = None  # °C
    gpu_core_count: int | None = None
    numa_node_id: int | None = None
    nvlink_remote_devices: tuple[NvLinkRemoteDevice, ...] = ()
    gpm_metrics: GpmMetrics | None = None
    detail: dict[str, str] = attrs.field(factory=dict)  # free-form: driver_version, index…
    health: GpuHealth | None = None  # written only when read (docs/recording-format.md §5.3)


@attrs.frozen
class CpuSocket:
    socket_id: int
    utilization: float | None = None  # percent
    cores: int | None = None
    threads: int | None = None
    temperature: int | None = None  # °C
    frequency_mhz: int | None = None  # MHz


@attrs.frozen
class CoreUtilization:
    core_id: int
    core_type: str = "Standard"  # Super | Performance | Efficiency | Standard
    utilization: float | None = None  # percent


@attrs.frozen
class Cpu:
    host_id: str
    hostname: str
    instance: str
    index: int = 0
    cpu_model: str | None = None
    architecture: str | None = None
    platform_type: str | None = None  # Intel | Amd | AppleSilicon | Arm | other text
    socket_count: int | None = None
    total_cores: int | None = None  # physical cores
    total_threads: int | None = None  # logical CPUs
    base_frequency_mhz: int | None = None  # MHz
    max_frequency_mhz: int | None = None  # MHz
    current_frequency_mhz: int | None = None  # MHz, average over cores
    cache_size_mb: int | None = None  # MiB
    utilization: float | None = None  # percent, all cores
    load_average: tuple[float, float, float] | None = None  # 1, 5, 15 min
    temperature: int | None = None  # °C
    power_consumption: float | None = None  # W
    per_socket_info: tuple[CpuSocket, ...] = ()
    per_core_utilization: tuple[CoreUtilization, ...] = ()


@attrs.frozen
class Memory:
    host_id: str
    hostname: str
    instance: str
    index: int = 0
    total_bytes: int | None = None
    used_bytes: int | None = None
    available_bytes: int | None = None
    free_bytes: int | None = None
    buffers_bytes: int | None = None
    cached_bytes: int | None = None
    swap_total_bytes: int | None = None
    swap_used_bytes: int | None = None
    swap_free_bytes: int | None = None
    utilization: float | None = None  # percent


@attrs.frozen
class Fan:
    id: int
    name: str
    speed_rpm: int | None = None  # RPM
    max_rpm: int | None = None  # RPM


@attrs.frozen
class Psu:
    id: int
    name: str
    status: str = "Unknown"  # Unknown | Ok | Degraded | Failed | NotPresent
    power_watts: float | None = None  # W


@attrs.frozen
class Chassis:
    host_id: str
    hostname: str
    instance: str
    total_power_watts: float | None = None  # W
    inlet_temperature: float | None = None  # °C
    outlet_temperature: float | None = None  # °C
    thermal_pressure: str | None = None
    fan_speeds: tuple[Fan, ...] = ()
    psu_status: tuple[Psu, ...] = ()
    detail: dict[str, str] = attrs.field(factory=dict)  # Product Name, Vendor, Board…


@attrs.frozen
class GpuProcess:
    host_id: str
    hostname: str
    device_id: int  # GPU index
    device_uuid: str
    pid: int
    process_name: str | None = None
    used_memory: int | None = None  # bytes of GPU memory
    cpu_percent: float | None = None  # percent of one core
    memory_percent: float | None = None  # percent of host memory
    memory_rss: int | None = None  # bytes
    memory_vms: int | None = None  # bytes
    user: str | None = None
    state: str | None = None  # psutil status letter
    start_time: str | None = None  # elapsed since start, [[HH:]MM:]SS
    cpu_time: int | None = None  # seconds
    command: str | None = None
    ppid: int | None = None
    threads: int | None = None
    uses_gpu: bool = True
    priority: int | None = None
    nice_value: int | None = None
    gpu_utilization: float | None = None  # percent (SM)


@attrs.frozen
class Storage:
    host_id: str
    hostname: str
    mount_point: str
    index: int = 0
    total_bytes: int | None = None
    available_bytes: int | None = None


@attrs.frozen
class Frame:
    """One collection cycle: a data line of a recording, or one snapshot."""

    t_ms: int  # collection instant, ms since the epoch (UTC)
    seq: int | None = None  # data-frame number in a recording; None for a bare snapshot
    source: Source = "local"
    gpus: tuple[Gpu, ...] | None = None
    cpus: tuple[Cpu, ...] | None = None
    memory: tuple[Memory, ...] | None = None
    chassis: tuple[Chassis, ...] | None = None
    processes: tuple[GpuProcess, ...] | None = None
    storage: tuple[Storage, ...] | None = None
    errors: tuple[str, ...] = ()

    def hosts(self) -> tuple[str, ...]:
        """The host ids present in this frame, in first-seen order (host sections only: a
        process row names the host of its GPU, which the GPU rows already count)."""
        seen: dict[str, None] = {}
        for attr in HOST_SECTION_ATTRS:
            rows: tuple[Row, ...] | None = getattr(self, attr)
            for row in rows or ():
                seen.setdefault(row.host_id, None)
        return tuple(seen)


@attrs.frozen
class Header:
    """First line of every segment of a recording."""

    source: Source = "local"
    interval_ms: int | None = None
    hosts: tuple[str, ...] = ()
    writer: str | None = WRITER_NAME  # None for files written by all-smi
    format: str | None = FORMAT_CHUNKED
    all_smi_version: str | None = None  # the writer's version
    # When the recorder run began, ms since the epoch: the same in every segment of one run
    # (rotation reuses the header), new at a restart; None in older files and all-smi's.
    started_ms: int | None = None


@attrs.frozen
class IndexLine:
    """Opens a chunk: the seq/t of its first data frame and where the chunk is stored."""

    t_ms: int | None
    seq: int
    byte_offset: int


Record = Frame | Header | IndexLine
Row = Gpu | Cpu | Memory | Chassis | GpuProcess | Storage


@attrs.frozen
class Section:
    """One section of a frame, and every name it goes by."""

    name: str  # canonical: --include, the sources' include tuples, error texts
    key: str  # key of a data line (docs/recording-format.md §5.1), and of /snapshot
    attr: str  # attribute of Frame
    row_type: type[Row]
    default: bool  # in the default --include of record and snapshot
    remote: bool  # scraped by the live cluster view, served by the exporter without --processes
    per_host: bool  # a row describes one host (process rows describe a process on one)
    aliases: tuple[str, ...] = ()  # other spellings --include accepts


# The sections, in the key order of a data line (docs/recording-format.md §5.1) and of every
# list of them.
# fmt: off
SECTION_TABLE: Final[tuple[Section, ...]] = (
    #       name       key          attr         row type    default remote per_host aliases
    Section("gpu",     "gpus",      "gpus",      Gpu,        True,   True,  True,   ("gpus",)),
    Section("cpu",     "cpus",      "cpus",      Cpu,        True,   True,  True,   ("cpus",)),
    Section("memory",  "memory",    "memory",    Memory,     True,   True,  True),
    Section("chassis", "chassis",   "chassis",   Chassis,    True,   True,  True),
    Section("process", "processes", "processes", GpuProcess, False,  False, False,  ("processes",)),
    Section("storage", "storage",   "storage",   Storage,    False,  True,  True,   ("disk",)),
)
# fmt: on
SECTIONS: Final = tuple(s.name for s in SECTION_TABLE)
DEFAULT_SECTIONS: Final = tuple(s.name for s in SECTION_TABLE if s.default)
HOST_SECTION_ATTRS: Final = tuple(s.attr for s in SECTION_TABLE if s.per_host)
