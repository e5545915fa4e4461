"""The metric families of the ``/metrics`` page, as one table that reads both ways.

Each :class:`Family` row of :data:`FAMILIES` is all there is to know about one family: its
name, ``# HELP`` text and type (all-smi's exporter names and help: dashboards built for
``all-smi api`` must work unchanged), the :class:`~.entities.Entity` its samples are about
(so its base labels), the labels it adds, how the writer gets a sample from a row
(``value``, ``extra``; or ``each``, for a family of several samples per row), and how the
parser puts a sample back into a row (``read``). The writer (:mod:`.writer`) writes the
families that have a ``value`` or ``each``, in table order; the parser (:mod:`.parser`)
routes every family by name. A family written is read back into the
field it was written from, by construction: a plain family is made by :func:`_field` from
one field name, used both ways; the others pair an accessor with its inverse from
:mod:`.conversions`; and tests/adapters/test_prometheus_families.py checks every writable
row of the table through the writer and the parser.

Rules the table obeys:

- Names are unique and follow all-smi's where all-smi has one. Every family we write is a
  ``gauge``, but for cumulative counts (a counter that only a restart sets back): those are
  ``counter`` families named ``…_total``, as the Prometheus naming rules have it (all-smi's
  ``all_smi_energy_consumed_joules_total`` is one), and no gauge's name ends in ``_total``.
- A GPU's health signals (docs/recording-format.md §5.3.3) are named ``all_smi_gpu_*`` in
  Prometheus base units (seconds, Unix seconds, bytes per second, joules; clocks in MHz, as
  all-smi's), and a GPU has a sample of one only when its ``health`` has that reading.
- ``read`` is what a sample means, whoever wrote it: a number for a field (:class:`Field`), a
  number kept as text in ``detail`` (:class:`Detail`), a GPM fraction (:class:`Gpm`), labels
  that carry the reading of an ``… = 1`` sample (:class:`FromLabels`), a number for a field
  of a GPU's health (:class:`Health`), one part of such a field that several samples make
  (:class:`HealthParts`), or just a host the page speaks for (:class:`Presence`).
- Families all-smi writes and we do not, and the older mock's names, are rows too, with no
  ``value`` (read only): the parser knows no family that is not in this table.
- Converters are total: NaN and ±Inf arrive as ``None`` and stay ``None``; byte counts, MHz,
  °C and counts are rounded to ``int`` (out-of-range integers are no reading), a clock of
  0 MHz is all-smi's "no reading"; percentages and watts are ``float``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from operator import attrgetter
from typing import Any, Final, Generic, Literal, TypeVar

import attrs

from allsmi.adapters.prometheus.conversions import (
    CHASSIS_INFO_LABELS,
    Convert,
    Labels,
    PageLabels,
    Parts,
    Samples,
    Value,
    build_labels,
    chassis_info_labels,
    chassis_info_read,
    clock_event_samples,
    clock_events_build,
    cpu_frequency,
    cpu_info_labels,
    cpu_info_read,
    cpu_model_read,
    elapsed_text,
    gpu_info_labels,
    gpu_info_read,
    gpu_power_limit,
    gpu_power_limit_max,
    gpu_pstate,
    gsp_version_read,
    health_value,
    if_positive,
    if_swap,
    memory_bandwidth,
    ms_to_seconds,
    nvlink_read,
    one,
    process_elapsed_seconds,
    seconds_to_ms,
    seconds_to_us,
    sm_occupancy,
    thermal_pressure,
    thermal_pressure_labels,
    thermal_pressure_read,
    to_flag,
    to_float,
    to_int,
    to_mhz,
    up,
    us_to_seconds,
    xid_counts_build,
    xid_samples,
    xid_watched,
)
from allsmi.adapters.prometheus.entities import (
    CHASSIS,
    CORE,
    CPU,
    DISK,
    FAN,
    GPU,
    HOST,
    MEMORY,
    PROCESS,
    SOCKET,
    Entity,
)

__all__ = [
    "BY_NAME",
    "FAMILIES",
    "Detail",
    "Family",
    "Field",
    "FromLabels",
    "Gpm",
    "Health",
    "HealthParts",
    "Presence",
    "Read",
]

R = TypeVar("R")


# --- how a sample is read back ---------------------------------------------------------


@attrs.frozen
class Field:
    """The value, converted, is the row's field ``name``; a later sample overwrites it."""

    name: str
    convert: Convert
    fallback: bool = False  # another name for the field: fills it only while it is unset


@attrs.frozen
class Detail:
    """The value, as its shortest text, is the row's ``detail[key]``; no reading, no key."""

    key: str


@attrs.frozen
class Gpm:
    """The value, as a float, is the GPU's ``gpm_metrics.<name>``."""

    name: str


@attrs.frozen
class FromLabels:
    """The value is 1; the labels carry the reading. What ``read(labels)`` gives is merged into
    the row's ``into``: its fields, its ``detail``, a GPU's ``info`` (its gpu_info labels,
    which win over ``detail``), or a GPU's NvLinks by link index."""

    read: Callable[[PageLabels], Mapping[Any, Any]]
    into: Literal["fields", "detail", "info", "nvlinks"] = "fields"
    needs: str | None = None  # without this label the sample says nothing about any row


@attrs.frozen
class Health:
    """The value, converted, is the GPU's ``health.<name>``; a later sample overwrites it."""

    name: str
    convert: Convert


@attrs.frozen
class HealthParts:
    """Each sample is one part of the GPU's ``health.<name>``, keyed by its ``label``'s value;
    ``build`` makes the field of a GPU's parts once the page is read. Without a ``label``, a
    sample of a non-zero value says the field was read, and adds no part (so no parts is
    ``build({})``, not ``None``). A sample without its label says nothing."""

    name: str
    build: Callable[[Parts], Any]
    label: str | None = None


@attrs.frozen
class Presence:
    """The sample names a host the page speaks for, and nothing more."""


Read = Field | Detail | Gpm | FromLabels | Health | HealthParts | Presence
PRESENCE: Final = Presence()


@attrs.frozen
class Family(Generic[R]):
    """One metric family: what the writer writes and what the parser reads back."""

    name: str
    help: str
    entity: Entity[R]
    read: Read
    value: Callable[[R], Value] | None = None  # None: all-smi writes it, we only read it
    extra: Callable[[R], Labels] | None = None  # labels after the entity's
    labels: tuple[str, ...] = ()  # the names `extra` gives, in order (some may be left out)
    more_labels: bool = False  # `extra` adds labels past `labels` (gpu_info: detail keys)
    type: str = "gauge"
    each: Callable[[R], Samples] | None = None  # instead of `value`: several samples a row

    @property
    def writable(self) -> bool:
        return self.value is not None or self.each is not None


def _field(name: str, help: str, entity: Entity[Any], field: str, convert: Convert) -> Family[Any]:
    """A family that is one field of its rows, written from it and read back into it."""
    return Family(name, help, entity, Field(field, convert), attrgetter(field))


def _health(
    name: str,
    help: str,
    field: str,
    convert: Convert,
    to_page: Callable[[Any], Value] | None = None,
    type: str = "gauge",
) -> Family[Any]:
    """A family that is one field of a GPU's health: written from it (through ``to_page``,
    into the page's unit) and read back into it (through ``convert``, into the model's)."""
    value = health_value(field) if to_page is None else health_value(field, to_page)
    return Family(name, help, GPU, Health(field, convert), value, type=type)


def _energy_labels(gpu: Any) -> Labels:
    """all-smi's energy family names the host and the scope (energy.rs); ours has the GPU's
    base labels too."""
    return (("host", gpu.hostname), ("scope", "gpu"))


# --- the table -------------------------------------------------------------------------

# In all-smi's order (render.rs); the families we only read come after those we write.
# fmt: off
FAMILIES: Final[tuple[Family[Any], ...]] = (
    # baseline (exporter_status.rs)
    Family("all_smi_up", "Whether the exporter has completed a collection (1) or not (0)",
           HOST, PRESENCE, up),
    Family("all_smi_build_info", "Build information of the exporter", HOST, PRESENCE, one,
           build_labels, ("version", "os", "arch")),
    # GPU (gpu.rs, hardware.rs)
    _field("all_smi_gpu_utilization", "GPU utilization percentage", GPU,
           "utilization", to_float),
    _field("all_smi_gpu_memory_used_bytes", "GPU memory used in bytes", GPU,
           "used_memory", to_int),
    _field("all_smi_gpu_memory_total_bytes", "GPU memory total in bytes", GPU,
           "total_memory", to_int),
    _field("all_smi_gpu_temperature_celsius", "GPU temperature in celsius", GPU,
           "temperature", to_int),
    _field("all_smi_gpu_power_consumption_watts", "GPU power consumption in watts", GPU,
           "power_consumption", to_float),
    _field("all_smi_gpu_frequency_mhz", "GPU frequency in MHz", GPU, "frequency", to_mhz),
    Family("all_smi_gpu_info", "GPU/NPU device information", GPU,
           FromLabels(gpu_info_read, "info"), one, gpu_info_labels, ("type",), True),
    Family("all_smi_gpu_power_limit_current_watts", "Current power limit in watts", GPU,
           Field("power_limit", to_float), gpu_power_limit),
    Family("all_smi_gpu_power_limit_max_watts", "Maximum power limit in watts", GPU,
           Detail("power_limit_max"), gpu_power_limit_max),
    Family("all_smi_gpu_performance_state",
           "GPU performance state (0=P0 fastest, 15=P15 idlest)", GPU,
           Field("performance_state", to_int), gpu_pstate),
    _field("all_smi_gpu_temperature_threshold_slowdown_celsius",
           "GPU slowdown temperature threshold in Celsius", GPU,
           "temperature_threshold_slowdown", to_int),
    _field("all_smi_gpu_temperature_threshold_shutdown_celsius",
           "GPU shutdown temperature threshold in Celsius", GPU,
           "temperature_threshold_shutdown", to_int),
    _field("all_smi_gpu_numa_node_id", "NUMA node the GPU is attached to", GPU,
           "numa_node_id", to_int),
    Family("all_smi_gpu_sm_occupancy", "GPM SM occupancy (fraction 0..1)", GPU,
           Gpm("sm_occupancy"), sm_occupancy),
    Family("all_smi_gpu_memory_bandwidth_utilization",
           "GPM memory bandwidth utilization (fraction 0..1)", GPU,
           Gpm("memory_bandwidth_utilization"), memory_bandwidth),
    # … health signals (docs/recording-format.md §5.3.3): ours, but for all-smi's energy
    Family("all_smi_gpu_clock_event_reason",
           "Clock event (throttle) reason active now (1) or not (0), one sample per reason",
           GPU, HealthParts("clock_events", clock_events_build, "reason"),
           labels=("reason",), each=clock_event_samples),
    _health("all_smi_gpu_clock_sm_mhz", "GPU SM clock in MHz", "sm_clock_mhz", to_int),
    _health("all_smi_gpu_clock_memory_mhz", "GPU memory clock in MHz", "memory_clock_mhz",
            to_int),
    _health("all_smi_gpu_power_violation_seconds_total",
            "Time the GPU was held down by its power limit in seconds", "power_violation_us",
            seconds_to_us, us_to_seconds, "counter"),
    _health("all_smi_gpu_thermal_violation_seconds_total",
            "Time the GPU was held down thermally in seconds", "thermal_violation_us",
            seconds_to_us, us_to_seconds, "counter"),
    _health("all_smi_gpu_ecc_corrected_errors_total",
            "Corrected (single-bit) ECC errors since the driver loaded", "ecc_corrected",
            to_int, type="counter"),
    _health("all_smi_gpu_ecc_uncorrected_errors_total",
            "Uncorrected (double-bit) ECC errors since the driver loaded", "ecc_uncorrected",
            to_int, type="counter"),
    _health("all_smi_gpu_correctable_remapped_rows",
            "GPU memory rows remapped for correctable errors", "remapped_correctable", to_int),
    _health("all_smi_gpu_uncorrectable_remapped_rows",
            "GPU memory rows remapped for uncorrectable errors", "remapped_uncorrectable",
            to_int),
    _health("all_smi_gpu_row_remap_pending",
            "Whether a row remap waits for a GPU reset (1) or not (0)", "remap_pending",
            to_flag, int),
    _health("all_smi_gpu_row_remap_failure", "Whether a row remap failed (1) or not (0)",
            "remap_failure", to_flag, int),
    _health("all_smi_gpu_retired_pages", "GPU memory pages retired", "retired_pages", to_int),
    _health("all_smi_gpu_pcie_tx_bytes_per_second", "PCIe bytes sent per second",
            "pcie_tx_bytes_s", to_float),
    _health("all_smi_gpu_pcie_rx_bytes_per_second", "PCIe bytes received per second",
            "pcie_rx_bytes_s", to_float),
    _health("all_smi_gpu_pcie_replays_total", "PCIe replays", "pcie_replays", to_int,
            type="counter"),
    _health("all_smi_gpu_nvlink_tx_bytes_per_second", "NVLink bytes sent per second, all links",
            "nvlink_tx_bytes_s", to_float),
    _health("all_smi_gpu_nvlink_rx_bytes_per_second",
            "NVLink bytes received per second, all links", "nvlink_rx_bytes_s", to_float),
    _health("all_smi_gpu_nvlink_errors_total",
            "NVLink CRC, replay and recovery errors, all links", "nvlink_errors", to_int,
            type="counter"),
    _health("all_smi_gpu_encoder_utilization", "Video encoder utilization percentage",
            "encoder_utilization", to_float),
    _health("all_smi_gpu_decoder_utilization", "Video decoder utilization percentage",
            "decoder_utilization", to_float),
    Family("all_smi_energy_consumed_joules_total", "Total energy consumed in joules", GPU,
           Health("energy_j", to_float), health_value("energy_j"), _energy_labels,
           ("host", "scope"), type="counter"),
    Family("all_smi_gpu_xid_watched",
           "Whether the GPU's XID errors are watched (1): all_smi_gpu_xid_errors_total counts "
           "them", GPU, HealthParts("xid_counts", xid_counts_build), xid_watched),
    Family("all_smi_gpu_xid_errors_total", "XID errors seen since the recorder started, by code",
           GPU, HealthParts("xid_counts", xid_counts_build, "code"), labels=("code",),
           type="counter", each=xid_samples),
    _health("all_smi_gpu_last_xid_code", "The last XID error code seen", "last_xid", to_int),
    _health("all_smi_gpu_last_xid_timestamp_seconds",
            "When the last XID error was seen, in seconds since the Unix epoch", "last_xid_ms",
            seconds_to_ms, ms_to_seconds),
    # … read only: all-smi's own, and the older mock's name for the performance state
    Family("all_smi_gpu_pstate", "GPU performance state (the older all-smi mock)", GPU,
           Field("performance_state", to_int, fallback=True)),
    Family("all_smi_gpu_temperature_threshold_max_operating_celsius",
           "GPU max operating temperature threshold in Celsius", GPU,
           Detail("temperature_threshold_max_operating")),
    Family("all_smi_gpu_temperature_threshold_acoustic_celsius",
           "GPU acoustic temperature threshold in Celsius", GPU,
           Detail("temperature_threshold_acoustic")),
    Family("all_smi_gpu_gsp_firmware_mode", "GSP firmware mode", GPU,
           Detail("gsp_firmware_mode")),
    Family("all_smi_gpu_gsp_firmware_version_info", "GSP firmware version", GPU,
           FromLabels(gsp_version_read, "detail"), labels=("version",)),
    Family("all_smi_nvlink_remote_device_type", "NvLink remote device type", GPU,
           FromLabels(nvlink_read, "nvlinks"),
           labels=("link_index", "remote_type", "bandwidth_mb_s")),
    # process (process.rs)
    _field("all_smi_process_memory_used_bytes", "Process GPU memory used in bytes", PROCESS,
           "used_memory", to_int),
    Family("all_smi_process_start_time_seconds", "Wall-clock seconds since the process started",
           PROCESS, Field("start_time", elapsed_text), process_elapsed_seconds),
    _field("all_smi_process_cpu_percent", "Process CPU utilization percentage", PROCESS,
           "cpu_percent", to_float),
    # CPU (cpu.rs)
    Family("all_smi_cpu_info", "CPU model and platform information", CPU,
           FromLabels(cpu_info_read), one, cpu_info_labels, ("architecture", "platform_type")),
    _field("all_smi_cpu_utilization", "CPU utilization percentage", CPU, "utilization", to_float),
    _field("all_smi_cpu_socket_count", "Number of CPU sockets", CPU, "socket_count", to_int),
    _field("all_smi_cpu_core_count", "Total number of CPU cores", CPU, "total_cores", to_int),
    _field("all_smi_cpu_thread_count", "Total number of CPU threads", CPU,
           "total_threads", to_int),
    Family("all_smi_cpu_frequency_mhz", "CPU frequency in MHz", CPU,
           Field("base_frequency_mhz", to_mhz), cpu_frequency),
    _field("all_smi_cpu_temperature_celsius", "CPU temperature in celsius", CPU,
           "temperature", to_int),
    _field("all_smi_cpu_power_consumption_watts", "CPU power consumption in watts", CPU,
           "power_consumption", to_float),
    # … read only: the older all-smi mock's model family
    Family("all_smi_cpu_model", "CPU model (the older all-smi mock)", CPU,
           FromLabels(cpu_model_read, needs="model"), labels=("model",)),
    _field("all_smi_cpu_socket_utilization", "Per-socket CPU utilization percentage", SOCKET,
           "utilization", to_float),
    _field("all_smi_cpu_socket_frequency_mhz", "Per-socket CPU frequency in MHz", SOCKET,
           "frequency_mhz", to_mhz),
    _field("all_smi_cpu_socket_temperature_celsius", "Per-socket CPU temperature in celsius",
           SOCKET, "temperature", to_int),
    _field("all_smi_cpu_core_utilization", "Per-core CPU utilization percentage", CORE,
           "utilization", to_float),
    # memory (memory.rs)
    _field("all_smi_memory_total_bytes", "Total system memory in bytes", MEMORY,
           "total_bytes", to_int),
    _field("all_smi_memory_used_bytes", "Used system memory in bytes", MEMORY,
           "used_bytes", to_int),
    _field("all_smi_memory_available_bytes", "Available system memory in bytes", MEMORY,
           "available_bytes", to_int),
    _field("all_smi_memory_free_bytes", "Free system memory in bytes", MEMORY,
           "free_bytes", to_int),
    _field("all_smi_memory_utilization", "Memory utilization percentage", MEMORY,
           "utilization", to_float),
    Family("all_smi_swap_total_bytes", "Total swap space in bytes", MEMORY,
           Field("swap_total_bytes", to_int), if_swap("swap_total_bytes")),
    Family("all_smi_swap_used_bytes", "Used swap space in bytes", MEMORY,
           Field("swap_used_bytes", to_int), if_swap("swap_used_bytes")),
    Family("all_smi_swap_free_bytes", "Free swap space in bytes", MEMORY,
           Field("swap_free_bytes", to_int), if_swap("swap_free_bytes")),
    Family("all_smi_memory_buffers_bytes", "Memory used for buffers in bytes", MEMORY,
           Field("buffers_bytes", to_int), if_positive("buffers_bytes")),
    Family("all_smi_memory_cached_bytes", "Memory used for cache in bytes", MEMORY,
           Field("cached_bytes", to_int), if_positive("cached_bytes")),
    # disk (disk.rs)
    _field("all_smi_disk_total_bytes", "Total disk space in bytes", DISK, "total_bytes", to_int),
    _field("all_smi_disk_available_bytes", "Available disk space in bytes", DISK,
           "available_bytes", to_int),
    # chassis (chassis.rs)
    Family("all_smi_chassis_info", "Chassis/node information", CHASSIS,
           FromLabels(chassis_info_read, "detail"), one, chassis_info_labels,
           CHASSIS_INFO_LABELS),
    _field("all_smi_chassis_power_watts", "Total chassis power consumption in watts", CHASSIS,
           "total_power_watts", to_float),
    Family("all_smi_chassis_thermal_pressure_info", "Chassis thermal pressure level", CHASSIS,
           FromLabels(thermal_pressure_read), thermal_pressure, thermal_pressure_labels,
           ("level",)),
    _field("all_smi_chassis_inlet_temperature_celsius", "Chassis inlet temperature in celsius",
           CHASSIS, "inlet_temperature", to_float),
    _field("all_smi_chassis_outlet_temperature_celsius", "Chassis outlet temperature in celsius",
           CHASSIS, "outlet_temperature", to_float),
    # … read only: all-smi's power split (Apple and BMC chassis)
    Family("all_smi_chassis_cpu_power_watts", "Chassis CPU power in watts", CHASSIS,
           Detail("cpu_power_watts")),
    Family("all_smi_chassis_gpu_power_watts", "Chassis GPU power in watts", CHASSIS,
           Detail("gpu_power_watts")),
    Family("all_smi_chassis_ane_power_watts", "Chassis ANE power in watts", CHASSIS,
           Detail("ane_power_watts")),
    _field("all_smi_chassis_fan_speed_rpm", "Chassis fan speed in RPM", FAN, "speed_rpm", to_int),
)
# fmt: on

BY_NAME: Final = {family.name: family for family in FAMILIES}
if len(BY_NAME) != len(FAMILIES):  # pragma: no cover - a table edit gone wrong
    raise ValueError("two families of one name in FAMILIES")
