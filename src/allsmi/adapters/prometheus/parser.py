"""A ``/metrics`` page (all-smi's exporter, its mock, or ours) back into model rows.

The inverse of :func:`allsmi.adapters.prometheus.writer.render_metrics`: our own page parses
back to the rows it was rendered from, for every field the page carries. It also reads
all-smi's page better than all-smi does (reference/all-smi-behaviour.md §6.3): free memory,
CPU sockets, chassis, negative values and exponents are all kept.

Grammar: ``prometheus_client``'s text parser (exposition 0.0.4: exponents, ``NaN``, ``±Inf``,
escaped label values, HELP/TYPE, comments, timestamps), kept behind this one typed module;
pages in the everyday shape every exporter writes are read ~5× faster by
:mod:`allsmi.adapters.prometheus.exposition`, which gives exactly the vendor's
answer or steps aside.
That parser stops at the first bad line, so a page that fails as a whole is parsed again one
line at a time, and the lines that fail alone are dropped and counted (``skipped_lines``).
:func:`parse_metrics` never raises but :class:`OverLimit`.

Limits (:class:`PageLimits`, the scraper's per-host caps): samples are read one at a time and
folded into rows as they come, so a page past a cap — too many lines, series, GPUs or
processes — raises :class:`OverLimit` where the reading reaches it, and the rest of the page
is never parsed. Lines are split a piece at a time, never all at once: a page of tiny lines
never becomes a list of millions of strings. The vendor parser holds a family's samples
until the family ends, so its input lines are counted as it reads them.

Mapping rules:

- Families are all-smi's (§6.1); unknown families and samples missing their key labels are
  ignored. The older all-smi mock's shape (CPU and memory series with only ``instance``,
  ``all_smi_cpu_model{instance,model}``) is read as well.
- NaN and ±Inf become ``None``; a family absent from the page leaves its field ``None``, and
  so does a clock of 0 MHz (all-smi's "no reading").
  Byte counts, MHz, °C and counts are rounded to ``int``; percentages and watts are ``float``.
- Every row's ``host_id`` is the scrape target (normalised); ``hostname``/``instance`` come
  from the ``hostname``/``instance`` labels, each standing in for the other when absent.
  Process series carry no host label: their hostname is the page's one host, or the target
  when the page speaks for several.
- Rows are sorted by (host, index) so output is stable whatever the page's order.
"""

from __future__ import annotations

import collections
import math
import sys
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any, Final, NamedTuple, TextIO, cast

import attrs
from prometheus_client.parser import text_fd_to_metric_families, text_string_to_metric_families

from allsmi.adapters.prometheus.exposition import NotPlain, Sample, iter_plain_samples
from allsmi.domain.model import (
    Chassis,
    CoreUtilization,
    Cpu,
    CpuSocket,
    Fan,
    GpmMetrics,
    Gpu,
    GpuProcess,
    Memory,
    NvLinkRemoteDevice,
    Storage,
    bounded_int,
    normalise_host_id,
)
from allsmi.domain.parse import format_elapsed

__all__ = ["NO_LIMITS", "HostRows", "OverLimit", "PageLimits", "parse_metrics"]

Number = int | float
Labels = dict[str, str]
Convert = Callable[[Number | None], Number | None]


@attrs.frozen
class HostRows:
    """The rows of one scraped page, each section sorted by (host, index)."""

    gpus: tuple[Gpu, ...] = ()
    cpus: tuple[Cpu, ...] = ()
    memory: tuple[Memory, ...] = ()
    chassis: tuple[Chassis, ...] = ()
    processes: tuple[GpuProcess, ...] = ()
    storage: tuple[Storage, ...] = ()
    skipped_lines: int = 0  # lines the exposition grammar rejected


_INT_LIMIT: Final = 2**64


class _Sample(NamedTuple):
    name: str
    labels: Labels
    value: Number | None  # None: NaN or ±Inf


# --- grammar ---------------------------------------------------------------------------


def _sample(name: str, labels: Labels, raw: Number) -> _Sample:
    value: Number | None = raw
    if isinstance(raw, float):
        if not math.isfinite(raw):
            value = None
    elif not -_INT_LIMIT < raw < _INT_LIMIT:  # a 400-digit integer: no float holds it
        value = None
    return _Sample(name, labels, value)


@attrs.frozen
class PageLimits:
    """What one page may hold (the values are the scraper's, ``allsmi.adapters.network.scrape``)."""

    lines: int  # of any kind: samples, comments, blanks
    series: int  # samples
    gpus: int  # distinct GPUs
    processes: int  # distinct (pid, GPU) pairs
    rows: int = sys.maxsize  # CPUs, cores, sockets, memory, disks, chassis and fans together


NO_LIMITS: Final = PageLimits(sys.maxsize, sys.maxsize, sys.maxsize, sys.maxsize)
_PIECE_CHARS: Final = 1 << 16  # text split into lines this much at a time


class OverLimit(Exception):
    """The page is past one of its :class:`PageLimits`; the message names it
    (``over 256 GPUs``)."""


class _Unparsed(Exception):
    """The vendor parser refused the page as a whole: read it again line by line."""


def _lines(text: str, most: int) -> Iterable[str]:
    """``text.split("\\n")``, a piece at a time for a long text; past ``most`` lines (a final
    empty one, after the last newline, aside) raises :class:`OverLimit` instead."""
    if len(text) <= _PIECE_CHARS:  # an everyday page: one split, no generator in the way
        parts = text.split("\n")
        if len(parts) - (not parts[-1]) <= most:
            return parts
    return _pieces(text, most, _PIECE_CHARS)


def _pieces(text: str, most: int, piece: int) -> Iterator[str]:
    start, seen = 0, 0
    while True:
        cut = text.find("\n", start + piece)  # the piece ends at a line's end
        parts = (text[start:] if cut < 0 else text[start:cut]).split("\n")
        room = most - seen
        if len(parts) > room and not (cut < 0 and len(parts) == room + 1 and not parts[-1]):
            yield from parts[:room]
            raise OverLimit(f"over {most} lines")
        yield from parts
        if cut < 0:
            return
        seen += len(parts)
        start = cut + 1


def _counted_samples(lines: Iterable[str], most: int) -> Iterator[str]:
    """``lines`` as they are, counting the sample lines among them: the vendor parser holds a
    family's samples until the family ends, so counting what it returns would come late."""
    count = 0
    for line in lines:
        head = line.lstrip()[:1]
        if head and head != "#":
            count += 1
            if count > most:
                raise OverLimit(f"over {most} series")
        yield line


def _parse_all(text: str) -> list[Sample]:
    """Every sample of ``text``; raises whatever the vendor parser raises on a bad line."""
    return [
        (str(sample.name), dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def _vendor(text: str, limits: PageLimits) -> Iterator[Sample]:
    """``prometheus_client``'s samples; raises :class:`_Unparsed` where it fails."""
    feed = _counted_samples(_lines(text, limits.lines), limits.series)
    families = iter(text_fd_to_metric_families(cast(TextIO, feed)))  # it only iterates lines
    while True:
        try:
            family = next(families, None)
        except OverLimit:
            raise
        except Exception:  # untyped vendor code: ValueError mostly, but never let anything out
            raise _Unparsed from None
        if family is None:
            return
        for sample in family.samples:
            yield str(sample.name), dict(sample.labels), sample.value


def _line_by_line(text: str, limits: PageLimits, skipped: list[int]) -> Iterator[Sample]:
    """The samples of the lines that parse alone; the others are counted in ``skipped[0]``."""
    for line in _counted_samples(_lines(text, limits.lines), limits.series):
        line = line.strip()
        if not line:
            continue
        try:
            samples = _parse_all(line)  # a comment line alone is checked and yields none
        except Exception:
            skipped[0] += 1
            continue
        yield from samples


# --- value and label helpers -----------------------------------------------------------


def _int(value: Number | None) -> int | None:
    return None if value is None else bounded_int(round(value))


def _mhz(value: Number | None) -> int | None:
    """A clock of 0 MHz is all-smi's "no reading" (a CPU in a container reports it)."""
    return None if value is None or value == 0 else bounded_int(round(value))


def _float(value: Number | None) -> float | None:
    return None if value is None else float(value)


def _number_text(value: Number) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return str(value)


def _label_int(labels: Labels, *names: str) -> int | None:
    for name in names:
        text = labels.get(name)
        if text is not None:
            text = text.strip()
            try:
                return bounded_int(int(text))
            except ValueError:
                return None
    return None


def _host(labels: Labels) -> tuple[str, str]:
    """``(instance, hostname)`` of a sample, each standing in for the other."""
    instance = labels.get("instance") or labels.get("hostname") or ""
    return instance, labels.get("hostname") or instance


def _index_key(text: str | None) -> tuple[int, str]:
    text = text or ""
    return (int(text), "") if text.isascii() and text.isdigit() else (2**63, text)


_CORE_TYPES: Final = {"S": "Super", "P": "Performance", "E": "Efficiency"}
_CORE_NAMES: Final = frozenset({"Super", "Performance", "Efficiency", "Standard"})
_CHASSIS_KEYS: Final = {
    "product_name": "Product Name",
    "vendor": "Vendor",
    "board": "Board",
    "version": "Version",
    "bios_version": "BIOS Version",
}
_HOST_LABELS: Final = frozenset({"instance", "hostname"})
_GPU_BASE_LABELS: Final = frozenset(
    {"gpu", "instance", "hostname", "gpu_uuid", "gpu_index", "type", "npu", "npu_uuid"}
)


def _platform(text: str) -> str | None:
    """all-smi writes its enum's Debug form: ``Intel``, ``Other("x")``."""
    if text.startswith('Other("') and text.endswith('")'):
        text = text[7:-2]
    return text or None


# --- accumulators ----------------------------------------------------------------------


@attrs.define
class _Row:
    instance: str
    hostname: str
    fields: dict[str, Any] = attrs.Factory(dict)


@attrs.define
class _GpuRow(_Row):
    uuid: str = ""
    name: str | None = None
    index: str | None = None
    device_type: str | None = None
    info: dict[str, str] = attrs.Factory(dict)  # gpu_info labels: win over `derived`
    derived: dict[str, str] = attrs.Factory(dict)  # detail values from numeric families
    gpm: dict[str, float | None] = attrs.Factory(dict)
    nvlinks: dict[int, NvLinkRemoteDevice] = attrs.Factory(dict)


@attrs.define
class _CpuRow(_Row):
    sockets: dict[int, dict[str, Any]] = attrs.Factory(dict)


@attrs.define
class _ChassisRow(_Row):
    detail: dict[str, str] = attrs.Factory(dict)
    fans: dict[tuple[int, str], Fan] = attrs.Factory(dict)


class _Core(NamedTuple):
    cpu_model: str
    core: CoreUtilization


# fmt: off
_GPU_FIELDS: Final[dict[str, tuple[str, Convert]]] = {
    "all_smi_gpu_utilization": ("utilization", _float),
    "all_smi_gpu_memory_used_bytes": ("used_memory", _int),
    "all_smi_gpu_memory_total_bytes": ("total_memory", _int),
    "all_smi_gpu_temperature_celsius": ("temperature", _int),
    "all_smi_gpu_power_consumption_watts": ("power_consumption", _float),
    "all_smi_gpu_frequency_mhz": ("frequency", _mhz),
    "all_smi_gpu_power_limit_current_watts": ("power_limit", _float),
    "all_smi_gpu_performance_state": ("performance_state", _int),
    "all_smi_gpu_temperature_threshold_slowdown_celsius":
        ("temperature_threshold_slowdown", _int),
    "all_smi_gpu_temperature_threshold_shutdown_celsius":
        ("temperature_threshold_shutdown", _int),
    "all_smi_gpu_numa_node_id": ("numa_node_id", _int),
}
_GPU_LEGACY_FIELDS: Final[dict[str, tuple[str, Convert]]] = {
    "all_smi_gpu_pstate": ("performance_state", _int),  # the mock's older name
}
_GPU_DETAIL: Final = {  # numeric families all-smi derives from detail, back into detail
    "all_smi_gpu_power_limit_max_watts": "power_limit_max",
    "all_smi_gpu_temperature_threshold_max_operating_celsius":
        "temperature_threshold_max_operating",
    "all_smi_gpu_temperature_threshold_acoustic_celsius": "temperature_threshold_acoustic",
    "all_smi_gpu_gsp_firmware_mode": "gsp_firmware_mode",
}
_GPU_GPM: Final = {
    "all_smi_gpu_sm_occupancy": "sm_occupancy",
    "all_smi_gpu_memory_bandwidth_utilization": "memory_bandwidth_utilization",
}
_CPU_FIELDS: Final[dict[str, tuple[str, Convert]]] = {
    "all_smi_cpu_utilization": ("utilization", _float),
    "all_smi_cpu_socket_count": ("socket_count", _int),
    "all_smi_cpu_core_count": ("total_cores", _int),
    "all_smi_cpu_thread_count": ("total_threads", _int),
    "all_smi_cpu_frequency_mhz": ("base_frequency_mhz", _mhz),
    "all_smi_cpu_temperature_celsius": ("temperature", _int),
    "all_smi_cpu_power_consumption_watts": ("power_consumption", _float),
}
_SOCKET_FIELDS: Final[dict[str, tuple[str, Convert]]] = {
    "all_smi_cpu_socket_utilization": ("utilization", _float),
    "all_smi_cpu_socket_frequency_mhz": ("frequency_mhz", _mhz),
    "all_smi_cpu_socket_temperature_celsius": ("temperature", _int),
}
_MEMORY_FIELDS: Final[dict[str, tuple[str, Convert]]] = {
    "all_smi_memory_total_bytes": ("total_bytes", _int),
    "all_smi_memory_used_bytes": ("used_bytes", _int),
    "all_smi_memory_available_bytes": ("available_bytes", _int),
    "all_smi_memory_free_bytes": ("free_bytes", _int),
    "all_smi_memory_buffers_bytes": ("buffers_bytes", _int),
    "all_smi_memory_cached_bytes": ("cached_bytes", _int),
    "all_smi_memory_utilization": ("utilization", _float),
    "all_smi_swap_total_bytes": ("swap_total_bytes", _int),
    "all_smi_swap_used_bytes": ("swap_used_bytes", _int),
    "all_smi_swap_free_bytes": ("swap_free_bytes", _int),
}
_DISK_FIELDS: Final[dict[str, tuple[str, Convert]]] = {
    "all_smi_disk_total_bytes": ("total_bytes", _int),
    "all_smi_disk_available_bytes": ("available_bytes", _int),
}
_CHASSIS_FIELDS: Final[dict[str, tuple[str, Convert]]] = {
    "all_smi_chassis_power_watts": ("total_power_watts", _float),
    "all_smi_chassis_inlet_temperature_celsius": ("inlet_temperature", _float),
    "all_smi_chassis_outlet_temperature_celsius": ("outlet_temperature", _float),
}
_CHASSIS_DETAIL: Final = {
    "all_smi_chassis_cpu_power_watts": "cpu_power_watts",
    "all_smi_chassis_gpu_power_watts": "gpu_power_watts",
    "all_smi_chassis_ane_power_watts": "ane_power_watts",
}
_CHASSIS_NAMES: Final = frozenset(
    {
        *_CHASSIS_FIELDS,
        *_CHASSIS_DETAIL,
        "all_smi_chassis_info",
        "all_smi_chassis_thermal_pressure_info",
        "all_smi_chassis_fan_speed_rpm",
    }
)
_PROCESS_FIELDS: Final[dict[str, tuple[str, Convert]]] = {
    "all_smi_process_memory_used_bytes": ("used_memory", _int),
    "all_smi_process_cpu_percent": ("cpu_percent", _float),
    "all_smi_process_start_time_seconds": ("start_time", _int),  # formatted when built
}
# fmt: on


class _Builder:
    """Folds samples into per-device accumulators, then builds sorted model rows."""

    def __init__(self, host_id: str, limits: PageLimits, processes: bool) -> None:
        self.host_id = host_id
        self.limits = limits
        self.keep_processes = processes  # False: process series are read past, unbuilt
        self.hosts: dict[str, None] = {}  # hostnames this page speaks for, first-seen order
        self.gpus: dict[tuple[str, str], _GpuRow] = {}
        self.cpus: dict[tuple[str, int], _CpuRow] = {}
        self.cores: dict[str, dict[tuple[str, int], _Core]] = {}  # instance → (model, id)
        self.core_hosts: dict[str, str] = {}  # instance → hostname, for cores without a CPU
        self.memory: dict[tuple[str, int], _Row] = {}
        self.disks: dict[tuple[str, str], _Row] = {}
        self.chassis: dict[str, _ChassisRow] = {}
        self.processes: dict[tuple[int, int], _Row] = {}
        self.other_rows = 0  # rows of every kind but GPUs and processes (they have caps)

    def _count_row(self) -> None:
        self.other_rows += 1
        if self.other_rows > self.limits.rows:
            raise OverLimit(f"over {self.limits.rows} CPU, core, memory, disk or chassis rows")

    # -- routing --

    def add(self, sample: _Sample) -> None:
        name, labels, value = sample
        if not name.startswith("all_smi_"):
            return
        if name in _GPU_FIELDS or name in _GPU_LEGACY_FIELDS or name in _GPU_DETAIL:
            self._gpu_value(name, labels, value)
        elif name in _GPU_GPM:
            if (gpu := self._gpu(labels)) is not None:
                gpu.gpm[_GPU_GPM[name]] = _float(value)
        elif name == "all_smi_gpu_info":
            self._gpu_info(labels)
        elif name == "all_smi_gpu_gsp_firmware_version_info":
            if (gpu := self._gpu(labels)) is not None and "version" in labels:
                gpu.derived["gsp_firmware_version"] = labels["version"]
        elif name == "all_smi_nvlink_remote_device_type":
            self._nvlink(labels)
        elif name.startswith("all_smi_cpu_"):
            self._cpu_value(name, labels, value)
        elif name in _MEMORY_FIELDS:
            self._set(self._memory(labels), _MEMORY_FIELDS[name], value)
        elif name in _DISK_FIELDS:
            if (disk := self._disk(labels)) is not None:
                self._set(disk, _DISK_FIELDS[name], value)
        elif name in _CHASSIS_NAMES:
            self._chassis_value(name, labels, value)
        elif name in _PROCESS_FIELDS:
            if self.keep_processes and (proc := self._process(labels)) is not None:
                self._set(proc, _PROCESS_FIELDS[name], value)
        elif name in ("all_smi_up", "all_smi_build_info"):
            self._seen(labels)

    def _seen(self, labels: Labels) -> tuple[str, str]:
        instance, hostname = _host(labels)
        if hostname:
            self.hosts.setdefault(hostname, None)
        return instance, hostname

    @staticmethod
    def _set(row: _Row, target: tuple[str, Convert], value: Number | None) -> None:
        field, convert = target
        row.fields[field] = convert(value)

    # -- GPU --

    def _gpu(self, labels: Labels) -> _GpuRow | None:
        uuid = labels.get("gpu_uuid") or labels.get("npu_uuid") or labels.get("uuid")
        if not uuid:
            return None
        instance, hostname = self._seen(labels)
        gpu = self.gpus.get((instance, uuid))
        if gpu is None:
            if len(self.gpus) >= self.limits.gpus:
                raise OverLimit(f"over {self.limits.gpus} GPUs")
            gpu = self.gpus[instance, uuid] = _GpuRow(instance, hostname, uuid=uuid)
        if gpu.name is None:
            gpu.name = labels.get("gpu") or labels.get("npu")
        if gpu.index is None:
            gpu.index = labels.get("gpu_index") or labels.get("npu_index") or labels.get("index")
        return gpu

    def _gpu_value(self, name: str, labels: Labels, value: Number | None) -> None:
        gpu = self._gpu(labels)
        if gpu is None:
            return
        if name in _GPU_FIELDS:
            self._set(gpu, _GPU_FIELDS[name], value)
        elif name in _GPU_LEGACY_FIELDS:
            field, convert = _GPU_LEGACY_FIELDS[name]
            if gpu.fields.get(field) is None:
                gpu.fields[field] = convert(value)
        elif value is not None:
            gpu.derived[_GPU_DETAIL[name]] = _number_text(value)

    def _gpu_info(self, labels: Labels) -> None:
        gpu = self._gpu(labels)
        if gpu is None:
            return
        if labels.get("type"):
            gpu.device_type = labels["type"]
        for key, text in labels.items():
            if key not in _GPU_BASE_LABELS:
                gpu.info[key] = text

    def _nvlink(self, labels: Labels) -> None:
        gpu = self._gpu(labels)
        link = _label_int(labels, "link_index")
        if gpu is None or link is None:
            return
        gpu.nvlinks[link] = NvLinkRemoteDevice(
            link_index=link,
            remote_type=labels.get("remote_type") or "unknown",
            bandwidth_mb_s=_label_int(labels, "bandwidth_mb_s"),
        )

    # -- CPU --

    def _cpu(self, labels: Labels, *index_labels: str) -> _CpuRow:
        instance, hostname = self._seen(labels)
        index = _label_int(labels, *index_labels) or 0
        cpu = self.cpus.get((instance, index))
        if cpu is None:
            self._count_row()
            cpu = self.cpus[instance, index] = _CpuRow(instance, hostname)
        if cpu.fields.get("cpu_model") is None and labels.get("cpu_model"):
            cpu.fields["cpu_model"] = labels["cpu_model"]
        return cpu

    def _cpu_value(self, name: str, labels: Labels, value: Number | None) -> None:
        if name in _CPU_FIELDS:
            self._set(self._cpu(labels, "index"), _CPU_FIELDS[name], value)
        elif name in _SOCKET_FIELDS:
            socket_id = _label_int(labels, "socket_id")
            if socket_id is not None:
                cpu = self._cpu(labels, "cpu_index", "index")
                field, convert = _SOCKET_FIELDS[name]
                if socket_id not in cpu.sockets:
                    self._count_row()
                cpu.sockets.setdefault(socket_id, {})[field] = convert(value)
        elif name == "all_smi_cpu_core_utilization":
            core_id = _label_int(labels, "core_id")
            if core_id is not None:
                instance, hostname = self._seen(labels)
                self.core_hosts.setdefault(instance, hostname)
                letter = labels.get("core_type", "")
                kind = _CORE_TYPES.get(letter, letter if letter in _CORE_NAMES else "Standard")
                core = CoreUtilization(core_id=core_id, core_type=kind, utilization=_float(value))
                model = labels.get("cpu_model", "")
                cores = self.cores.setdefault(instance, {})
                if (model, core_id) not in cores:
                    self._count_row()
                cores[model, core_id] = _Core(model, core)
        elif name == "all_smi_cpu_info":
            cpu = self._cpu(labels, "index")
            cpu.fields["architecture"] = labels.get("architecture") or None
            cpu.fields["platform_type"] = _platform(labels.get("platform_type", ""))
        elif name == "all_smi_cpu_model" and labels.get("model"):  # the mock's form
            self._cpu(labels, "index").fields["cpu_model"] = labels["model"]

    # -- memory, disks --

    def _memory(self, labels: Labels) -> _Row:
        instance, hostname = self._seen(labels)
        key = (instance, _label_int(labels, "index") or 0)
        row = self.memory.get(key)
        if row is None:
            self._count_row()
            row = self.memory[key] = _Row(instance, hostname)
        return row

    def _disk(self, labels: Labels) -> _Row | None:
        mount = labels.get("mount_point")
        if not mount:
            return None
        instance, hostname = self._seen(labels)
        row = self.disks.get((instance, mount))
        if row is None:
            self._count_row()
            row = self.disks[instance, mount] = _Row(instance, hostname)
        if "index" not in row.fields:
            row.fields["index"] = _label_int(labels, "index")
        return row

    # -- chassis --

    def _chassis_value(self, name: str, labels: Labels, value: Number | None) -> None:
        instance, hostname = self._seen(labels)
        row = self.chassis.get(instance)
        if row is None:
            self._count_row()
            row = self.chassis[instance] = _ChassisRow(instance, hostname)
        if name in _CHASSIS_FIELDS:
            self._set(row, _CHASSIS_FIELDS[name], value)
        elif name in _CHASSIS_DETAIL:
            if value is not None:
                row.detail[_CHASSIS_DETAIL[name]] = _number_text(value)
        elif name == "all_smi_chassis_info":
            for key, text in labels.items():
                if key not in _HOST_LABELS:
                    row.detail[_CHASSIS_KEYS.get(key, key)] = text
        elif name == "all_smi_chassis_thermal_pressure_info":
            row.fields["thermal_pressure"] = labels.get("level") or None
        elif name == "all_smi_chassis_fan_speed_rpm":
            fan_id = _label_int(labels, "fan_id")
            fan_name = labels.get("fan_name", "")
            fan_id = len(row.fans) if fan_id is None else fan_id
            if (fan_id, fan_name) not in row.fans:
                self._count_row()
            row.fans[fan_id, fan_name] = Fan(id=fan_id, name=fan_name, speed_rpm=_int(value))

    # -- processes --

    def _process(self, labels: Labels) -> _Row | None:
        pid = _label_int(labels, "pid")
        device = _label_int(labels, "device_id", "gpu_index")
        if pid is None or device is None:
            return None
        row = self.processes.get((pid, device))
        if row is None:
            if len(self.processes) >= self.limits.processes:
                raise OverLimit(f"over {self.limits.processes} processes")
            row = self.processes[pid, device] = _Row("", "")
            row.fields.update(
                device_id=device,
                device_uuid=labels.get("device_uuid", ""),
                pid=pid,
                process_name=labels.get("name") or None,
                user=labels.get("user") or None,
                command=labels.get("command") or None,
            )
        return row

    # -- building --

    def rows(self, skipped: int) -> HostRows:
        host_id = self.host_id
        page_host = next(iter(self.hosts)) if len(self.hosts) == 1 else host_id
        return HostRows(
            gpus=tuple(self._build_gpu(g) for _, g in sorted(self.gpus.items(), key=_gpu_order)),
            cpus=self._build_cpus(),
            memory=tuple(
                Memory(host_id, row.hostname, row.instance, index, **row.fields)
                for (_, index), row in sorted(self.memory.items(), key=lambda kv: kv[0])
            ),
            chassis=tuple(self._build_chassis(row) for _, row in sorted(self.chassis.items())),
            processes=tuple(
                sorted(
                    (self._build_process(row, page_host) for row in self.processes.values()),
                    key=lambda p: (p.device_id, p.pid),
                )
            ),
            storage=self._build_storage(),
            skipped_lines=skipped,
        )

    def _build_gpu(self, gpu: _GpuRow) -> Gpu:
        detail = {**gpu.derived, **gpu.info}
        if gpu.index is not None:
            detail["index"] = gpu.index
        gpm = None
        if any(v is not None for v in gpu.gpm.values()):
            gpm = GpmMetrics(**gpu.gpm)
        return Gpu(
            uuid=gpu.uuid,
            name=gpu.name or "",
            device_type=gpu.device_type or "GPU",
            host_id=self.host_id,
            hostname=gpu.hostname,
            instance=gpu.instance,
            nvlink_remote_devices=tuple(gpu.nvlinks[k] for k in sorted(gpu.nvlinks)),
            gpm_metrics=gpm,
            detail=detail,
            **gpu.fields,
        )

    def _build_cpus(self) -> tuple[Cpu, ...]:
        # Linear in rows and cores: a hostile page of 100,000 CPU indices once took minutes.
        siblings = collections.Counter(instance for instance, _ in self.cpus)
        for instance in self.cores:  # cores carry no CPU index: make sure a row takes them
            if not siblings[instance]:
                self.cpus[instance, 0] = _CpuRow(instance, self.core_hosts[instance])
                siblings[instance] = 1
        by_model: dict[tuple[str, str], list[CoreUtilization]] = {}
        for instance, entries in self.cores.items():
            for entry in entries.values():
                by_model.setdefault((instance, entry.cpu_model), []).append(entry.core)
        out: list[Cpu] = []
        given = 0  # core readings handed out: a CPU of several shares its model's cores
        for (instance, index), row in sorted(self.cpus.items(), key=lambda kv: kv[0]):
            model = row.fields.get("cpu_model") or ""
            if siblings[instance] == 1:
                chosen = [entry.core for entry in self.cores.get(instance, {}).values()]
            else:
                chosen = by_model.get((instance, model), [])
            given += len(chosen)
            if given > self.limits.series:
                raise OverLimit(f"over {self.limits.series} series")
            sockets = tuple(
                CpuSocket(socket_id=sid, **fields) for sid, fields in sorted(row.sockets.items())
            )
            out.append(
                Cpu(
                    host_id=self.host_id,
                    hostname=row.hostname,
                    instance=instance,
                    index=index,
                    per_socket_info=sockets,
                    per_core_utilization=tuple(sorted(chosen, key=lambda c: c.core_id)),
                    **row.fields,
                )
            )
        return tuple(out)

    def _build_chassis(self, row: _ChassisRow) -> Chassis:
        fans = tuple(row.fans[k] for k in sorted(row.fans))
        return Chassis(
            self.host_id,
            row.hostname,
            row.instance,
            fan_speeds=fans,
            detail=dict(row.detail),
            **row.fields,
        )

    def _build_process(self, row: _Row, hostname: str) -> GpuProcess:
        fields = dict(row.fields)
        seconds = fields.pop("start_time", None)
        start = None if seconds is None or seconds < 0 else format_elapsed(seconds)
        return GpuProcess(host_id=self.host_id, hostname=hostname, start_time=start, **fields)

    def _build_storage(self) -> tuple[Storage, ...]:
        rows: list[tuple[tuple[str, int, str], Storage]] = []
        positions: dict[str, int] = {}
        for (instance, mount), row in self.disks.items():  # first-seen order per host
            fields = dict(row.fields)
            position = positions.get(instance, 0)
            positions[instance] = position + 1
            index = fields.pop("index", None)
            index = position if index is None else index
            disk = Storage(self.host_id, row.hostname, mount, index, **fields)
            rows.append(((instance, index, mount), disk))
        return tuple(disk for _, disk in sorted(rows, key=lambda kv: kv[0]))


def _gpu_order(item: tuple[tuple[str, str], _GpuRow]) -> tuple[str, tuple[int, str], str]:
    (instance, uuid), gpu = item
    return instance, _index_key(gpu.index), uuid


def parse_metrics(
    text: str, host_id: str, limits: PageLimits = NO_LIMITS, *, processes: bool = True
) -> HostRows:
    """Rows of the ``/metrics`` page ``text`` scraped from ``host_id``.

    Lines the exposition grammar rejects are dropped and counted in ``skipped_lines``; the
    rest still parse. An empty or wholly unparseable body gives empty sections. Raises only
    :class:`OverLimit`, as soon as the page passes one of ``limits``. ``processes=False``
    leaves the processes section empty (and its cap unchecked) when it is not recorded.
    """
    host = normalise_host_id(host_id)
    fold = partial(_fold, host_id=host, limits=limits, processes=processes)
    try:
        return fold(iter_plain_samples(_lines(text, limits.lines))).rows(0)
    except NotPlain:
        pass
    try:
        return fold(_vendor(text, limits)).rows(0)
    except _Unparsed:
        pass
    skipped = [0]
    return fold(_line_by_line(text, limits, skipped)).rows(skipped[0])


def _fold(samples: Iterable[Sample], host_id: str, limits: PageLimits, processes: bool) -> _Builder:
    """Each sample into the rows as it is read: a page past a cap stops where it passes it."""
    builder = _Builder(host_id, limits, processes)
    add, most = builder.add, limits.series
    for count, (name, labels, value) in enumerate(samples, 1):
        if count > most:
            raise OverLimit(f"over {most} series")
        add(_sample(name, labels, value))
    return builder
