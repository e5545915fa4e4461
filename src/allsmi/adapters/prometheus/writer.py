"""A frame as Prometheus text exposition 0.0.4 with all-smi's metric names and labels.

The names and label sets are the contract of reference/all-smi-behaviour.md §6.1, so
dashboards built for ``all-smi api`` work unchanged (DESIGN.md §6). The writing is stricter
than all-smi's own exporter:

- Each family's ``# HELP`` and ``# TYPE`` lines appear exactly once, and all of its samples
  follow them contiguously (all-smi repeats them per device row).
- Label values escape ``\\``, ``"`` and newline, the only escapes the format defines. Other
  control characters (CR, tab, ESC, C1) are dropped, as all-smi drops them — except that
  all-smi writes CR as ``\\r``, an escape the Go parser rejects. Lone surrogates
  (undecodable process names) become ``?``.
- Label names are valid (``[a-zA-Z_][a-zA-Z0-9_]*``, never the reserved ``__`` prefix, never
  twice on one sample); free-form ``detail`` keys are sanitised the way all-smi does it
  (``"Source: Fan"`` → ``source__fan``, ``"3D Engine"`` → ``_3d_engine``).
- A reading that is ``None``, NaN or ±Inf produces no sample. Integers are written plain,
  floats in their shortest round-trip form without an exponent (``1e-05`` → ``0.00001``),
  because all-smi's own scraper drops exponent values.
- Every family is a ``gauge``.

Theory of operation: each section of the output is a :class:`_Section`, a function that
yields ``(row, base labels)`` pairs from the frame and a ``Final`` table of
:class:`_Family` entries ``(name, help, value accessor[, extra labels])``. The base label
block of a row is escaped once and reused by every family of the section; a family with no
sample is left out entirely.
"""

from __future__ import annotations

import math
import platform
import re
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final, Generic, NamedTuple, TypeVar

import attrs

from allsmi.domain.model import (
    Chassis,
    CoreUtilization,
    Cpu,
    CpuSocket,
    Fan,
    Frame,
    Gpu,
    GpuProcess,
    Memory,
    Storage,
)

__all__ = ["render_metrics"]

Value = int | float | None
Labels = tuple[tuple[str, str], ...]
R = TypeVar("R")

# all-smi reports Rust's std::env::consts::{OS, ARCH}; Python's names differ on some hosts.
_OS_NAMES: Final = {"Linux": "linux", "Darwin": "macos", "Windows": "windows"}
_ARCH_NAMES: Final = {"amd64": "x86_64", "arm64": "aarch64"}
_OS: Final = _OS_NAMES.get(platform.system(), platform.system().lower())
_ARCH: Final = _ARCH_NAMES.get(platform.machine().lower(), platform.machine().lower())

# all-smi exports only these device types as GPU rows (gpu.rs collect_rows).
_GPU_TYPES: Final = frozenset({"GPU", "NPU", "TPU"})
_CORE_TYPE_LETTER: Final = {"Super": "S", "Performance": "P", "Efficiency": "E"}
_KNOWN_PLATFORMS: Final = frozenset({"Intel", "Amd", "AppleSilicon", "Arm"})
# Chassis detail key → label name, in all-smi's order (chassis.rs).
_CHASSIS_INFO_KEYS: Final = (
    ("Product Name", "product_name"),
    ("Vendor", "vendor"),
    ("Board", "board"),
    ("Version", "version"),
    ("BIOS Version", "bios_version"),
    ("platform", "platform"),
)
# Process label limits in UTF-8 bytes (§6.1).
_COMMAND_MAX_BYTES: Final = 256
_NAME_MAX_BYTES: Final = 128


@attrs.frozen
class _Context:
    ready: bool
    version: str


@attrs.frozen
class _Family(Generic[R]):
    name: str
    help: str
    value: Callable[[R], Value]
    extra: Callable[[R], Labels] | None = None  # labels after the section's base labels


@attrs.frozen
class _Section(Generic[R]):
    rows: Callable[[Frame, _Context], Iterable[tuple[R, Labels]]]
    families: tuple[_Family[R], ...]


# --- text primitives -------------------------------------------------------------------

_LABEL_ESCAPES: Final[dict[int, str | None]] = {
    **{c: None for c in (*range(0x20), *range(0x7F, 0xA0))},
    ord("\\"): "\\\\",
    ord('"'): '\\"',
    ord("\n"): "\\n",
}


@lru_cache(maxsize=8192)
def _escape(value: str) -> str:
    if not value.isascii():
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value.translate(_LABEL_ESCAPES)


def _labels(**labels: str) -> Labels:
    return tuple(labels.items())  # keyword order is label order


def _block(labels: Labels) -> str:
    return ",".join(f'{name}="{_escape(value)}"' for name, value in labels)


def _format_value(value: int | float) -> str | None:
    if isinstance(value, int):
        return str(int(value))
    if not math.isfinite(value):
        return None
    text = repr(value)
    if "e" in text:
        text = format(Decimal(text), "f")
    return text


_NOT_LABEL_CHAR: Final = re.compile(r"[^a-z0-9_]")


@lru_cache(maxsize=4096)
def _label_name(key: str) -> str | None:
    """A detail key as a label name, or ``None`` when nothing valid is left of it."""
    name = _NOT_LABEL_CHAR.sub("_", key.lower())
    if name[:1].isdigit():
        name = "_" + name
    if not name or name.startswith("__"):
        return None
    return name


def _truncate(text: str, limit: int) -> str:
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return text
    kept = data[:limit].decode("utf-8", "ignore")  # never split a character
    return f"{kept}...({len(data) - len(kept.encode('utf-8'))} bytes truncated)"


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


# --- baseline --------------------------------------------------------------------------


class _Host(NamedTuple):
    instance: str
    hostname: str
    context: _Context


def _host_rows(frame: Frame, context: _Context) -> Iterator[tuple[_Host, Labels]]:
    seen: dict[str, tuple[str, str]] = {}
    for section in (frame.gpus, frame.cpus, frame.memory, frame.chassis):
        for row in section or ():
            seen.setdefault(row.host_id, (row.instance, row.hostname))
    for disk in frame.storage or ():
        seen.setdefault(disk.host_id, (disk.hostname, disk.hostname))
    if not seen:  # before the first collection: the exporter speaks for itself
        seen[""] = (platform.node(), platform.node())
    for instance, hostname in seen.values():
        yield _Host(instance, hostname, context), (("instance", instance), ("hostname", hostname))


def _build_labels(host: _Host) -> Labels:
    return (("version", host.context.version), ("os", _OS), ("arch", _ARCH))


# fmt: off
_BASELINE: Final = _Section[_Host](_host_rows, (
    _Family("all_smi_up", "Whether the exporter has completed a collection (1) or not (0)",
            lambda h: int(h.context.ready)),
    _Family("all_smi_build_info", "Build information of the exporter", lambda h: 1,
            _build_labels),
))
# fmt: on


# --- GPU -------------------------------------------------------------------------------


def _gpu_rows(frame: Frame, context: _Context) -> Iterator[tuple[Gpu, Labels]]:
    position: dict[str, int] = {}  # per host, counting every device as all-smi's enumerate does
    for gpu in frame.gpus or ():
        fallback = position.get(gpu.host_id, 0)
        position[gpu.host_id] = fallback + 1
        if gpu.device_type not in _GPU_TYPES:
            continue
        index = gpu.detail.get("index", "")  # the driver's index when the reader recorded it
        if not (index.isascii() and index.isdigit()):
            index = str(fallback)
        yield gpu, _labels(gpu=gpu.name, instance=gpu.instance, gpu_uuid=gpu.uuid, gpu_index=index)


_GPU_BASE_NAMES: Final = frozenset({"gpu", "instance", "gpu_uuid", "gpu_index", "type"})


def _gpu_info_labels(gpu: Gpu) -> Labels:
    labels: list[tuple[str, str]] = [("type", gpu.device_type)]
    taken = set(_GPU_BASE_NAMES)
    for key in sorted(gpu.detail):
        name = _label_name(key)
        if name is not None and name not in taken:
            taken.add(name)
            labels.append((name, gpu.detail[key]))
    return tuple(labels)


def _gpu_power_limit(gpu: Gpu) -> Value:
    if gpu.power_limit is not None:
        return gpu.power_limit
    return _number(gpu.detail.get("power_limit_current"))


def _gpu_pstate(gpu: Gpu) -> Value:
    if gpu.performance_state is not None:
        return gpu.performance_state
    text = gpu.detail.get("performance_state", "")  # legacy "P2" form
    return int(text[1:]) if text[:1] == "P" and text[1:].isdecimal() else None


def _sm_occupancy(gpu: Gpu) -> Value:
    return None if gpu.gpm_metrics is None else gpu.gpm_metrics.sm_occupancy


def _memory_bandwidth(gpu: Gpu) -> Value:
    return None if gpu.gpm_metrics is None else gpu.gpm_metrics.memory_bandwidth_utilization


# fmt: off
_GPU: Final = _Section[Gpu](_gpu_rows, (
    _Family("all_smi_gpu_utilization", "GPU utilization percentage", lambda g: g.utilization),
    _Family("all_smi_gpu_memory_used_bytes", "GPU memory used in bytes", lambda g: g.used_memory),
    _Family("all_smi_gpu_memory_total_bytes", "GPU memory total in bytes",
            lambda g: g.total_memory),
    _Family("all_smi_gpu_temperature_celsius", "GPU temperature in celsius",
            lambda g: g.temperature),
    _Family("all_smi_gpu_power_consumption_watts", "GPU power consumption in watts",
            lambda g: g.power_consumption),
    _Family("all_smi_gpu_frequency_mhz", "GPU frequency in MHz", lambda g: g.frequency),
    _Family("all_smi_gpu_info", "GPU/NPU device information", lambda g: 1, _gpu_info_labels),
    _Family("all_smi_gpu_power_limit_current_watts", "Current power limit in watts",
            _gpu_power_limit),
    _Family("all_smi_gpu_power_limit_max_watts", "Maximum power limit in watts",
            lambda g: _number(g.detail.get("power_limit_max"))),
    _Family("all_smi_gpu_performance_state",
            "GPU performance state (0=P0 fastest, 15=P15 idlest)", _gpu_pstate),
    _Family("all_smi_gpu_temperature_threshold_slowdown_celsius",
            "GPU slowdown temperature threshold in Celsius",
            lambda g: g.temperature_threshold_slowdown),
    _Family("all_smi_gpu_temperature_threshold_shutdown_celsius",
            "GPU shutdown temperature threshold in Celsius",
            lambda g: g.temperature_threshold_shutdown),
    _Family("all_smi_gpu_numa_node_id", "NUMA node the GPU is attached to",
            lambda g: g.numa_node_id),
    _Family("all_smi_gpu_sm_occupancy", "GPM SM occupancy (fraction 0..1)", _sm_occupancy),
    _Family("all_smi_gpu_memory_bandwidth_utilization",
            "GPM memory bandwidth utilization (fraction 0..1)", _memory_bandwidth),
))
# fmt: on


# --- processes -------------------------------------------------------------------------


def _process_rows(frame: Frame, context: _Context) -> Iterator[tuple[GpuProcess, Labels]]:
    for proc in frame.processes or ():
        device_id = str(proc.device_id)
        yield (
            proc,
            _labels(
                pid=str(proc.pid),
                name=_truncate(proc.process_name or "", _NAME_MAX_BYTES),
                user=_truncate(proc.user or "", _NAME_MAX_BYTES),
                device_id=device_id,
                gpu_index=device_id,
                device_uuid=proc.device_uuid,
                command=_truncate(proc.command or "", _COMMAND_MAX_BYTES),
            ),
        )


def _elapsed_seconds(start_time: str | None) -> Value:
    """``[[HH:]MM:]SS[.f]`` (the model's ``start_time``) in whole seconds; junk → None."""
    if not start_time:
        return None
    total = 0
    for part in start_time.strip().split(".", 1)[0].split(":"):
        if not part.isdecimal():
            return None
        total = total * 60 + int(part)
    return total


# fmt: off
_PROCESS: Final = _Section[GpuProcess](_process_rows, (
    _Family("all_smi_process_memory_used_bytes", "Process GPU memory used in bytes",
            lambda p: p.used_memory),
    _Family("all_smi_process_start_time_seconds", "Wall-clock seconds since the process started",
            lambda p: _elapsed_seconds(p.start_time)),
    _Family("all_smi_process_cpu_percent", "Process CPU utilization percentage",
            lambda p: p.cpu_percent),
))
# fmt: on


# --- CPU -------------------------------------------------------------------------------


def _cpu_base(cpu: Cpu) -> Labels:
    return (
        ("cpu_model", cpu.cpu_model or ""),
        ("instance", cpu.instance),
        ("hostname", cpu.hostname),
    )


def _cpu_rows(frame: Frame, context: _Context) -> Iterator[tuple[Cpu, Labels]]:
    for cpu in frame.cpus or ():
        yield cpu, (*_cpu_base(cpu), ("index", str(cpu.index)))


def _cpu_frequency(cpu: Cpu) -> Value:
    # all-smi exports its base frequency here; fall back to the current one we also have.
    if cpu.base_frequency_mhz is not None:
        return cpu.base_frequency_mhz
    return cpu.current_frequency_mhz


def _cpu_info_labels(cpu: Cpu) -> Labels:
    platform_type = cpu.platform_type or ""
    if platform_type and platform_type not in _KNOWN_PLATFORMS:
        platform_type = f'Other("{platform_type}")'  # all-smi writes its enum's Debug form
    return (("architecture", cpu.architecture or ""), ("platform_type", platform_type))


# fmt: off
_CPU: Final = _Section[Cpu](_cpu_rows, (
    _Family("all_smi_cpu_info", "CPU model and platform information", lambda c: 1,
            _cpu_info_labels),
    _Family("all_smi_cpu_utilization", "CPU utilization percentage", lambda c: c.utilization),
    _Family("all_smi_cpu_socket_count", "Number of CPU sockets", lambda c: c.socket_count),
    _Family("all_smi_cpu_core_count", "Total number of CPU cores", lambda c: c.total_cores),
    _Family("all_smi_cpu_thread_count", "Total number of CPU threads", lambda c: c.total_threads),
    _Family("all_smi_cpu_frequency_mhz", "CPU frequency in MHz", _cpu_frequency),
    _Family("all_smi_cpu_temperature_celsius", "CPU temperature in celsius",
            lambda c: c.temperature),
    _Family("all_smi_cpu_power_consumption_watts", "CPU power consumption in watts",
            lambda c: c.power_consumption),
))
# fmt: on


def _socket_rows(frame: Frame, context: _Context) -> Iterator[tuple[CpuSocket, Labels]]:
    for cpu in frame.cpus or ():
        base = (*_cpu_base(cpu), ("cpu_index", str(cpu.index)))
        for socket in cpu.per_socket_info:
            yield socket, (*base, ("socket_id", str(socket.socket_id)))


# fmt: off
_SOCKET: Final = _Section[CpuSocket](_socket_rows, (
    _Family("all_smi_cpu_socket_utilization", "Per-socket CPU utilization percentage",
            lambda s: s.utilization),
    _Family("all_smi_cpu_socket_frequency_mhz", "Per-socket CPU frequency in MHz",
            lambda s: s.frequency_mhz),
    _Family("all_smi_cpu_socket_temperature_celsius", "Per-socket CPU temperature in celsius",
            lambda s: s.temperature),
))
# fmt: on


def _core_rows(frame: Frame, context: _Context) -> Iterator[tuple[CoreUtilization, Labels]]:
    for cpu in frame.cpus or ():
        base = _cpu_base(cpu)
        for core in cpu.per_core_utilization:
            letter = _CORE_TYPE_LETTER.get(core.core_type, "C")  # C = Standard
            yield core, (*base, ("core_id", str(core.core_id)), ("core_type", letter))


# fmt: off
_CORE: Final = _Section[CoreUtilization](_core_rows, (
    _Family("all_smi_cpu_core_utilization", "Per-core CPU utilization percentage",
            lambda c: c.utilization),
))
# fmt: on


# --- memory, disk ----------------------------------------------------------------------


def _memory_rows(frame: Frame, context: _Context) -> Iterator[tuple[Memory, Labels]]:
    for mem in frame.memory or ():
        yield mem, _labels(instance=mem.instance, hostname=mem.hostname, index=str(mem.index))


def _if_swap(mem: Memory, value: int | None) -> Value:
    return value if (mem.swap_total_bytes or 0) > 0 else None


def _if_positive(value: int | None) -> Value:
    return value if value is not None and value > 0 else None


# fmt: off
_MEMORY: Final = _Section[Memory](_memory_rows, (
    _Family("all_smi_memory_total_bytes", "Total system memory in bytes", lambda m: m.total_bytes),
    _Family("all_smi_memory_used_bytes", "Used system memory in bytes", lambda m: m.used_bytes),
    _Family("all_smi_memory_available_bytes", "Available system memory in bytes",
            lambda m: m.available_bytes),
    _Family("all_smi_memory_free_bytes", "Free system memory in bytes", lambda m: m.free_bytes),
    _Family("all_smi_memory_utilization", "Memory utilization percentage",
            lambda m: m.utilization),
    _Family("all_smi_swap_total_bytes", "Total swap space in bytes",
            lambda m: _if_swap(m, m.swap_total_bytes)),
    _Family("all_smi_swap_used_bytes", "Used swap space in bytes",
            lambda m: _if_swap(m, m.swap_used_bytes)),
    _Family("all_smi_swap_free_bytes", "Free swap space in bytes",
            lambda m: _if_swap(m, m.swap_free_bytes)),
    _Family("all_smi_memory_buffers_bytes", "Memory used for buffers in bytes",
            lambda m: _if_positive(m.buffers_bytes)),
    _Family("all_smi_memory_cached_bytes", "Memory used for cache in bytes",
            lambda m: _if_positive(m.cached_bytes)),
))
# fmt: on


def _disk_rows(frame: Frame, context: _Context) -> Iterator[tuple[Storage, Labels]]:
    for disk in frame.storage or ():
        labels = _labels(
            instance=disk.hostname, mount_point=disk.mount_point, index=str(disk.index)
        )
        yield disk, labels


# fmt: off
_DISK: Final = _Section[Storage](_disk_rows, (
    _Family("all_smi_disk_total_bytes", "Total disk space in bytes", lambda d: d.total_bytes),
    _Family("all_smi_disk_available_bytes", "Available disk space in bytes",
            lambda d: d.available_bytes),
))
# fmt: on


# --- chassis ---------------------------------------------------------------------------


def _chassis_rows(frame: Frame, context: _Context) -> Iterator[tuple[Chassis, Labels]]:
    for chassis in frame.chassis or ():
        yield chassis, (("hostname", chassis.hostname), ("instance", chassis.instance))


def _chassis_info_labels(chassis: Chassis) -> Labels:
    return tuple(
        (name, chassis.detail[key]) for key, name in _CHASSIS_INFO_KEYS if key in chassis.detail
    )


# fmt: off
_CHASSIS: Final = _Section[Chassis](_chassis_rows, (
    _Family("all_smi_chassis_info", "Chassis/node information", lambda c: 1,
            _chassis_info_labels),
    _Family("all_smi_chassis_power_watts", "Total chassis power consumption in watts",
            lambda c: c.total_power_watts),
    _Family("all_smi_chassis_thermal_pressure_info", "Chassis thermal pressure level",
            lambda c: None if c.thermal_pressure is None else 1,
            lambda c: (("level", c.thermal_pressure or ""),)),
    _Family("all_smi_chassis_inlet_temperature_celsius", "Chassis inlet temperature in celsius",
            lambda c: c.inlet_temperature),
    _Family("all_smi_chassis_outlet_temperature_celsius", "Chassis outlet temperature in celsius",
            lambda c: c.outlet_temperature),
))
# fmt: on


def _fan_rows(frame: Frame, context: _Context) -> Iterator[tuple[Fan, Labels]]:
    for chassis in frame.chassis or ():
        host, instance = chassis.hostname, chassis.instance
        for fan in chassis.fan_speeds:
            fan_id, fan_name = str(fan.id), fan.name
            yield fan, _labels(hostname=host, instance=instance, fan_id=fan_id, fan_name=fan_name)


# fmt: off
_FAN: Final = _Section[Fan](_fan_rows, (
    _Family("all_smi_chassis_fan_speed_rpm", "Chassis fan speed in RPM", lambda f: f.speed_rpm),
))
# fmt: on

# all-smi's family order (render.rs): baseline, GPU, process, CPU, memory, disk, chassis.
_SECTIONS: Final[tuple[_Section[Any], ...]] = (
    _BASELINE,
    _GPU,
    _PROCESS,
    _CPU,
    _SOCKET,
    _CORE,
    _MEMORY,
    _DISK,
    _CHASSIS,
    _FAN,
)


# --- rendering -------------------------------------------------------------------------


def _render_section(section: _Section[R], frame: Frame, context: _Context, out: list[str]) -> None:
    rows = [(row, _block(labels)) for row, labels in section.rows(frame, context)]
    for family in section.families:
        lines: list[str] = []
        for row, block in rows:
            raw = family.value(row)
            text = None if raw is None else _format_value(raw)
            if text is None:
                continue
            if family.extra is not None and (extra := family.extra(row)):
                lines.append(f"{family.name}{{{block},{_block(extra)}}} {text}\n")
            else:
                lines.append(f"{family.name}{{{block}}} {text}\n")
        if lines:
            help_text = family.help.replace("\\", "\\\\").replace("\n", "\\n")
            out.append(f"# HELP {family.name} {help_text}\n# TYPE {family.name} gauge\n")
            out.extend(lines)


def render_metrics(frame: Frame, *, ready: bool = True, version: str) -> str:
    """The ``/metrics`` page for ``frame``: all-smi's families, strictly written.

    ``ready`` is ``all_smi_up`` (False before the first collection); ``version`` goes into
    ``all_smi_build_info``. Baseline families get one sample per host of the frame, or one
    for this machine when the frame has no rows.
    """
    context = _Context(ready=ready, version=version)
    out: list[str] = []
    for section in _SECTIONS:
        _render_section(section, frame, context, out)
    return "".join(out)
