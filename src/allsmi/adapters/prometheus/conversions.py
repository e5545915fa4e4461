"""The conversions of the family table (:mod:`.families`), both ways.

The writer's side takes a row to a sample: its value (``None``: no sample) and the labels a
family adds to its entity's. The parser's side takes a sample back: its value to a field
(``to_int``, ``to_mhz``, ``to_float``, ``number_text``; NaN and ±Inf arrive as ``None``) or
its labels to fields (the ``*_read`` functions). Where a family carries its reading in labels,
the two directions sit side by side, so one is seen to undo the other.

all-smi's exporter forms (docs/architecture.md §3.3) are kept: the platform as its enum's
Debug form (``Other("x")``), chassis detail keys as snake-case labels, a process's age in
seconds, no swap families without swap, no buffer or cache sample for 0 bytes.

A GPU's health signals (``Gpu.health``, docs/recording-format.md §5.3.3) go on the page in
Prometheus base units: the model's µs of violation time as seconds and its ms of the last XID
as Unix seconds (read back rounded to the nearest µs and ms: exact below 2**51 of them, 71
years of µs), booleans as 0/1. Clock event reasons are a state set, one sample per known
reason (1 active, 0 not) and one for each other name the row lists: ``[]`` is every known
reason at 0, ``None`` no sample at all. XID counts are one sample per code, and a
``…_xid_watched`` sample of 1 says they were read, so ``{}`` is not ``None`` either.
"""

from __future__ import annotations

import math
import platform
import re
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from operator import attrgetter
from typing import Any, Final

from allsmi.adapters.prometheus.entities import CHASSIS, GPU, Host
from allsmi.domain.model import (
    CLOCK_EVENT_BITS,
    Chassis,
    Cpu,
    Gpu,
    GpuProcess,
    Memory,
    NvLinkRemoteDevice,
    bounded_int,
)
from allsmi.domain.parse import format_elapsed

__all__ = [
    "CHASSIS_INFO_LABELS",
    "Convert",
    "Labels",
    "Number",
    "PageLabels",
    "Parts",
    "Samples",
    "Value",
    "build_labels",
    "chassis_info_labels",
    "chassis_info_read",
    "clock_event_samples",
    "clock_events_build",
    "cpu_frequency",
    "cpu_info_labels",
    "cpu_info_read",
    "cpu_model_read",
    "elapsed_text",
    "gpu_info_labels",
    "gpu_info_read",
    "gpu_power_limit",
    "gpu_power_limit_max",
    "gpu_pstate",
    "gsp_version_read",
    "health_value",
    "if_positive",
    "if_swap",
    "label_int",
    "memory_bandwidth",
    "ms_to_seconds",
    "number_text",
    "nvlink_read",
    "one",
    "process_elapsed_seconds",
    "seconds_to_ms",
    "seconds_to_us",
    "sm_occupancy",
    "thermal_pressure",
    "thermal_pressure_labels",
    "thermal_pressure_read",
    "to_flag",
    "to_float",
    "to_int",
    "to_mhz",
    "up",
    "us_to_seconds",
    "xid_counts_build",
    "xid_samples",
    "xid_watched",
]

Number = int | float
Value = int | float | None
Labels = tuple[tuple[str, str], ...]  # (name, value) pairs, in the order they are written
PageLabels = Mapping[str, str]  # a sample's labels as the parser reads them
Convert = Callable[[Number | None], Any]  # a value on the page (None: NaN, ±Inf) → a field
Samples = Iterable[tuple[Labels, Value]]  # a row's samples of a family of several per row
Parts = Mapping[str, Number | None]  # label value → sample value, of one row's samples

# all-smi reports Rust's std::env::consts::{OS, ARCH}; Python's names differ on some hosts.
_OS_NAMES: Final = {"Linux": "linux", "Darwin": "macos", "Windows": "windows"}
_ARCH_NAMES: Final = {"amd64": "x86_64", "arm64": "aarch64"}
_OS: Final = _OS_NAMES.get(platform.system(), platform.system().lower())
_ARCH: Final = _ARCH_NAMES.get(platform.machine().lower(), platform.machine().lower())

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
CHASSIS_INFO_LABELS: Final = tuple(label for _, label in _CHASSIS_INFO_KEYS)
_CHASSIS_DETAIL_KEY: Final = {label: key for key, label in _CHASSIS_INFO_KEYS}
# gpu_info labels that name the device rather than describe it: never detail. all-smi's NPU
# exporters write npu/npu_uuid; a foreign page may add hostname.
_GPU_INFO_TAKEN: Final = frozenset({*GPU.labels, "type"})
_GPU_NOT_DETAIL: Final = frozenset({*_GPU_INFO_TAKEN, "hostname", "npu", "npu_uuid"})


# --- numbers: a value on the page → a field --------------------------------------------


def to_int(value: Number | None) -> int | None:
    return None if value is None else bounded_int(round(value))


def to_mhz(value: Number | None) -> int | None:
    """A clock of 0 MHz is all-smi's "no reading" (a CPU in a container reports it)."""
    return None if value is None or value == 0 else bounded_int(round(value))


def to_float(value: Number | None) -> float | None:
    return None if value is None else float(value)


def number_text(value: Number) -> str:
    """A number as ``detail`` holds it: ``700.0`` → ``"700"``."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return str(value)


def label_int(labels: PageLabels, *names: str) -> int | None:
    """The first of ``names`` present in ``labels``, as an integer (None if it is not one)."""
    for name in names:
        text = labels.get(name)
        if text is not None:
            text = text.strip()
            try:
                return bounded_int(int(text))
            except ValueError:
                return None
    return None


def _number(text: str | None) -> float | None:
    """A number kept as text in ``detail``, when it is a finite one."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


# --- baseline --------------------------------------------------------------------------


def one(row: object) -> int:
    """The value of a family whose labels are its reading (``…_info``)."""
    return 1


def up(host: Host) -> int:
    return int(host.context.ready)


def build_labels(host: Host) -> Labels:
    return (("version", host.context.version), ("os", _OS), ("arch", _ARCH))


# --- GPU -------------------------------------------------------------------------------

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


def gpu_info_labels(gpu: Gpu) -> Labels:
    """``type``, then every detail key as a sanitised label name (all-smi: ``"Source: Fan"``
    → ``source__fan``, ``"3D Engine"`` → ``_3d_engine``), never one already taken."""
    labels: list[tuple[str, str]] = [("type", gpu.device_type)]
    taken = set(_GPU_INFO_TAKEN)
    for key in sorted(gpu.detail):
        name = _label_name(key)
        if name is not None and name not in taken:
            taken.add(name)
            labels.append((name, gpu.detail[key]))
    return tuple(labels)


def gpu_info_read(labels: PageLabels) -> dict[str, str]:
    """The device's type (when given) and detail; sanitised keys stay sanitised."""
    info = {key: text for key, text in labels.items() if key not in _GPU_NOT_DETAIL}
    if labels.get("type"):
        info["type"] = labels["type"]
    return info


def gpu_power_limit_max(gpu: Gpu) -> Value:
    return _number(gpu.detail.get("power_limit_max"))


def gpu_power_limit(gpu: Gpu) -> Value:
    if gpu.power_limit is not None:
        return gpu.power_limit
    return _number(gpu.detail.get("power_limit_current"))


def gpu_pstate(gpu: Gpu) -> Value:
    if gpu.performance_state is not None:
        return gpu.performance_state
    text = gpu.detail.get("performance_state", "")  # legacy "P2" form
    return int(text[1:]) if text[:1] == "P" and text[1:].isdecimal() else None


def sm_occupancy(gpu: Gpu) -> Value:
    return None if gpu.gpm_metrics is None else gpu.gpm_metrics.sm_occupancy


def memory_bandwidth(gpu: Gpu) -> Value:
    return None if gpu.gpm_metrics is None else gpu.gpm_metrics.memory_bandwidth_utilization


def gsp_version_read(labels: PageLabels) -> dict[str, str]:
    return {"gsp_firmware_version": labels["version"]} if "version" in labels else {}


def nvlink_read(labels: PageLabels) -> dict[int, NvLinkRemoteDevice]:
    link = label_int(labels, "link_index")
    if link is None:
        return {}
    return {
        link: NvLinkRemoteDevice(
            link_index=link,
            remote_type=labels.get("remote_type") or "unknown",
            bandwidth_mb_s=label_int(labels, "bandwidth_mb_s"),
        )
    }


# --- GPU health (docs/recording-format.md §5.3.3) --------------------------------------

_MICRO: Final = 1_000_000
_MILLI: Final = 1_000
_KNOWN_CLOCK_EVENTS: Final = tuple(name for _, name in CLOCK_EVENT_BITS)


def _same(value: Any) -> Value:
    return value  # type: ignore[no-any-return]


def health_value(field: str, to_page: Callable[[Any], Value] = _same) -> Callable[[Gpu], Value]:
    """A GPU's ``health.<field>`` as the page has it (``to_page``); a GPU without health, or
    without that reading, has no sample."""
    get = attrgetter(field)

    def value(gpu: Gpu) -> Value:
        reading = None if gpu.health is None else get(gpu.health)
        return None if reading is None else to_page(reading)

    return value


def us_to_seconds(us: int) -> float:
    return us / _MICRO


def ms_to_seconds(ms: int) -> float:
    return ms / _MILLI


def _scaled(value: Number | None, factor: int) -> int | None:
    if value is None:
        return None
    scaled = value * factor
    return bounded_int(round(scaled)) if math.isfinite(scaled) else None


def seconds_to_us(value: Number | None) -> int | None:
    """Seconds on the page → the model's integer µs, to the nearest (exact below 2**51 µs)."""
    return _scaled(value, _MICRO)


def seconds_to_ms(value: Number | None) -> int | None:
    """Unix seconds on the page → the model's integer ms, to the nearest."""
    return _scaled(value, _MILLI)


def to_flag(value: Number | None) -> bool | None:
    """0 is False, any other number True."""
    return None if value is None else value != 0


def clock_event_samples(gpu: Gpu) -> Samples:
    """One ``reason`` sample per known reason (1: active now), then one of 1 for each other
    name the row lists; none when the reasons were not read."""
    active = None if gpu.health is None else gpu.health.clock_events
    if active is None:
        return ()
    names = dict.fromkeys(active)  # a name listed twice is one sample
    known = [((("reason", name),), int(name in names)) for name in _KNOWN_CLOCK_EVENTS]
    others = [((("reason", name),), 1) for name in names if name not in _KNOWN_CLOCK_EVENTS]
    return (*known, *others)


def clock_events_build(parts: Parts) -> tuple[str, ...]:
    """The reasons at a non-zero value: the known ones in bit order, then the others in page
    order (a name written twice is listed once)."""
    active = [name for name, value in parts.items() if value]  # NaN (None) is not active
    known = [name for name in _KNOWN_CLOCK_EVENTS if name in active]
    return (*known, *(name for name in active if name not in _KNOWN_CLOCK_EVENTS))


def xid_watched(gpu: Gpu) -> Value:
    """1 when the GPU's XIDs were read (its counts may still be ``{}``)."""
    return None if gpu.health is None or gpu.health.xid_counts is None else 1


def _code_order(code: str) -> tuple[int, str]:
    return (int(code), "") if code.isascii() and code.isdigit() else (2**63, code)


def xid_samples(gpu: Gpu) -> Samples:
    """One ``code`` sample per XID code seen, in code order."""
    counts = None if gpu.health is None else gpu.health.xid_counts
    if not counts:
        return ()
    return tuple(((("code", code),), counts[code]) for code in sorted(counts, key=_code_order))


def xid_counts_build(parts: Parts) -> dict[str, int]:
    """Code → count; a count that is no number (NaN) is no count."""
    counts = {code: to_int(value) for code, value in parts.items()}
    return {code: count for code, count in counts.items() if count is not None}


# --- processes -------------------------------------------------------------------------


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


def process_elapsed_seconds(proc: GpuProcess) -> Value:
    return _elapsed_seconds(proc.start_time)


def elapsed_text(value: Number | None) -> str | None:
    """Seconds since a process started → the model's ``[[HH:]MM:]SS``."""
    seconds = to_int(value)
    return None if seconds is None or seconds < 0 else format_elapsed(seconds)


# --- CPU -------------------------------------------------------------------------------


def cpu_frequency(cpu: Cpu) -> Value:
    # all-smi exports its base frequency here; fall back to the current one we also have.
    if cpu.base_frequency_mhz is not None:
        return cpu.base_frequency_mhz
    return cpu.current_frequency_mhz


def cpu_info_labels(cpu: Cpu) -> Labels:
    platform_type = cpu.platform_type or ""
    if platform_type and platform_type not in _KNOWN_PLATFORMS:
        platform_type = f'Other("{platform_type}")'  # all-smi writes its enum's Debug form
    return (("architecture", cpu.architecture or ""), ("platform_type", platform_type))


def cpu_info_read(labels: PageLabels) -> dict[str, str | None]:
    platform_type = labels.get("platform_type", "")
    if platform_type.startswith('Other("') and platform_type.endswith('")'):
        platform_type = platform_type[7:-2]
    return {
        "architecture": labels.get("architecture") or None,
        "platform_type": platform_type or None,
    }


def cpu_model_read(labels: PageLabels) -> dict[str, str]:
    return {"cpu_model": labels["model"]}  # FromLabels.needs: the label is there


# --- memory, chassis -------------------------------------------------------------------


def if_swap(field: str) -> Callable[[Memory], Value]:
    """``field`` of a host with swap; all-smi writes no swap family without it."""
    get = attrgetter(field)

    def value(mem: Memory) -> Value:
        return get(mem) if (mem.swap_total_bytes or 0) > 0 else None

    return value


def if_positive(field: str) -> Callable[[Memory], Value]:
    """``field`` when above 0; all-smi writes no sample for 0 buffers or cache."""
    get = attrgetter(field)

    def value(mem: Memory) -> Value:
        number: int | None = get(mem)
        return number if number is not None and number > 0 else None

    return value


def chassis_info_labels(chassis: Chassis) -> Labels:
    return tuple(
        (name, chassis.detail[key]) for key, name in _CHASSIS_INFO_KEYS if key in chassis.detail
    )


def chassis_info_read(labels: PageLabels) -> dict[str, str]:
    return {
        _CHASSIS_DETAIL_KEY.get(name, name): text
        for name, text in labels.items()
        if name not in CHASSIS.labels
    }


def thermal_pressure(chassis: Chassis) -> Value:
    return None if chassis.thermal_pressure is None else 1


def thermal_pressure_labels(chassis: Chassis) -> Labels:
    return (("level", chassis.thermal_pressure or ""),)


def thermal_pressure_read(labels: PageLabels) -> dict[str, str | None]:
    return {"thermal_pressure": labels.get("level") or None}
