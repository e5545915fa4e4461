"""A ``/metrics`` page (all-smi's exporter, its mock, or ours) back into model rows.

The inverse of :func:`allsmi.adapters.prometheus.writer.render_metrics`: our own page parses
back to the rows it was rendered from, for every field the page carries. It also reads
all-smi's page better than all-smi's own scraper does (docs/architecture.md §3.3): free memory,
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

- Families are the rows of :data:`~allsmi.adapters.prometheus.families.FAMILIES` — those we
  write, and all-smi's and its older mock's that we only read; each row's ``read`` says which
  field a sample fills and how its value converts, and a family's entity says which row it
  belongs to. Unknown families and samples missing their key labels are ignored. The older
  mock's shape (CPU and memory series with only ``instance``) is read as well.
- NaN and ±Inf become ``None``; a family absent from the page leaves its field ``None``, and
  so does a clock of 0 MHz (all-smi's "no reading").
- A GPU's ``health`` (docs/recording-format.md §5.3.3) is rebuilt from its health families:
  ``None`` when none of them gave that GPU a reading. A sample with only all-smi's ``host``
  label (its energy family) names the host by it.
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
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any, Final, NamedTuple, TextIO, TypeVar, cast

import attrs
from prometheus_client.parser import text_fd_to_metric_families, text_string_to_metric_families

from allsmi.adapters.prometheus.conversions import (
    Number,
    PageLabels,
    Parts,
    label_int,
    number_text,
    to_float,
)
from allsmi.adapters.prometheus.entities import CORE_TYPE_OF
from allsmi.adapters.prometheus.exposition import NotPlain, Sample, iter_plain_samples
from allsmi.adapters.prometheus.families import (
    FAMILIES,
    Detail,
    Field,
    FromLabels,
    Gpm,
    Health,
    HealthParts,
    Presence,
    Read,
)
from allsmi.domain.model import (
    Chassis,
    CoreUtilization,
    Cpu,
    CpuSocket,
    Fan,
    GpmMetrics,
    Gpu,
    GpuHealth,
    GpuProcess,
    Memory,
    NvLinkRemoteDevice,
    Storage,
    normalise_host_id,
)

__all__ = [
    "NO_LIMITS",
    "HostRows",
    "OverLimit",
    "PageLimits",
    "fold_page",
    "parse_metrics",
    "rows_from_samples",
]

_R = TypeVar("_R")
_NAME_AT: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")  # a sample line's metric name


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
    labels: PageLabels
    value: Number | None  # None: NaN or ±Inf


# --- grammar ---------------------------------------------------------------------------


def _sample(name: str, labels: PageLabels, raw: Number) -> _Sample:
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


# --- label helpers ---------------------------------------------------------------------


def _host(labels: PageLabels) -> tuple[str, str]:
    """``(instance, hostname)`` of a sample, each standing in for the other."""
    instance = labels.get("instance") or labels.get("hostname") or labels.get("host") or ""
    return instance, labels.get("hostname") or instance


def _index_key(text: str | None) -> tuple[int, str]:
    text = text or ""
    return (int(text), "") if text.isascii() and text.isdigit() else (2**63, text)


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
    info: dict[str, str] = attrs.Factory(dict)  # gpu_info labels (type, detail): win over `detail`
    detail: dict[str, str] = attrs.Factory(dict)  # detail values from other families
    gpm: dict[str, float | None] = attrs.Factory(dict)
    nvlinks: dict[int, NvLinkRemoteDevice] = attrs.Factory(dict)
    health: dict[str, Any] = attrs.Factory(dict)  # health field → reading
    # health field → (how its parts make it, label value → sample value)
    health_parts: dict[str, tuple[Callable[[Parts], Any], dict[str, Number | None]]] = (
        attrs.Factory(dict)
    )


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

    def add(self, sample: _Sample) -> None:
        name, labels, value = sample
        route = _ROUTES.get(name)  # a family of the table, or none of ours
        if route is not None:
            route[0](self, labels, value, route[1])

    def _seen(self, labels: PageLabels) -> tuple[str, str]:
        instance, hostname = _host(labels)
        if hostname:
            self.hosts.setdefault(hostname, None)
        return instance, hostname

    # -- each entity's reads (see _handler) --

    def _presence(self, labels: PageLabels, value: Number | None, read: Presence) -> None:
        self._seen(labels)

    @staticmethod
    def _merge(row: _Row | None, labels: PageLabels, read: FromLabels) -> None:
        if row is not None:
            getattr(row, read.into).update(read.read(labels))

    @staticmethod
    def _says_something(labels: PageLabels, read: FromLabels) -> bool:
        """Whether the sample has the label its reading needs (checked before the row is
        looked up: a sample without it makes no row)."""
        return read.needs is None or bool(labels.get(read.needs))

    # -- GPU --

    def _gpu(self, labels: PageLabels) -> _GpuRow | None:
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

    def _gpu_field(self, labels: PageLabels, value: Number | None, read: Field) -> None:
        if (gpu := self._gpu(labels)) is not None:
            gpu.fields[read.name] = read.convert(value)

    def _gpu_fallback(self, labels: PageLabels, value: Number | None, read: Field) -> None:
        if (gpu := self._gpu(labels)) is not None and gpu.fields.get(read.name) is None:
            gpu.fields[read.name] = read.convert(value)

    def _gpu_detail(self, labels: PageLabels, value: Number | None, read: Detail) -> None:
        if (gpu := self._gpu(labels)) is not None and value is not None:
            gpu.detail[read.key] = number_text(value)

    def _gpu_gpm(self, labels: PageLabels, value: Number | None, read: Gpm) -> None:
        if (gpu := self._gpu(labels)) is not None:
            gpu.gpm[read.name] = to_float(value)

    def _gpu_labels(self, labels: PageLabels, value: Number | None, read: FromLabels) -> None:
        if self._says_something(labels, read):
            self._merge(self._gpu(labels), labels, read)

    def _gpu_health(self, labels: PageLabels, value: Number | None, read: Health) -> None:
        if (gpu := self._gpu(labels)) is not None:
            gpu.health[read.name] = read.convert(value)

    def _gpu_health_part(self, labels: PageLabels, value: Number | None, read: HealthParts) -> None:
        key = None if read.label is None else labels.get(read.label)
        if read.label is not None and not key:
            return  # the sample lacks the label its part is named by
        if key is None and not value:
            return  # "not read" (0), or NaN: no part, and no sign that it was read
        if (gpu := self._gpu(labels)) is None:
            return
        parts = gpu.health_parts.setdefault(read.name, (read.build, {}))[1]
        if key is not None:
            parts[key] = value

    # -- CPU --

    def _cpu(self, labels: PageLabels, *index_labels: str) -> _CpuRow:
        instance, hostname = self._seen(labels)
        index = label_int(labels, *index_labels) or 0
        cpu = self.cpus.get((instance, index))
        if cpu is None:
            self._count_row()
            cpu = self.cpus[instance, index] = _CpuRow(instance, hostname)
        if cpu.fields.get("cpu_model") is None and labels.get("cpu_model"):
            cpu.fields["cpu_model"] = labels["cpu_model"]
        return cpu

    def _cpu_field(self, labels: PageLabels, value: Number | None, read: Field) -> None:
        self._cpu(labels, "index").fields[read.name] = read.convert(value)

    def _cpu_labels(self, labels: PageLabels, value: Number | None, read: FromLabels) -> None:
        if self._says_something(labels, read):
            self._merge(self._cpu(labels, "index"), labels, read)

    def _socket_field(self, labels: PageLabels, value: Number | None, read: Field) -> None:
        socket_id = label_int(labels, "socket_id")
        if socket_id is not None:
            cpu = self._cpu(labels, "cpu_index", "index")
            if socket_id not in cpu.sockets:
                self._count_row()
            cpu.sockets.setdefault(socket_id, {})[read.name] = read.convert(value)

    def _core_field(self, labels: PageLabels, value: Number | None, read: Field) -> None:
        core_id = label_int(labels, "core_id")
        if core_id is None:
            return
        instance, hostname = self._seen(labels)
        self.core_hosts.setdefault(instance, hostname)
        kind = CORE_TYPE_OF.get(labels.get("core_type", ""), "Standard")
        core = CoreUtilization(core_id, kind, **{read.name: read.convert(value)})
        model = labels.get("cpu_model", "")
        cores = self.cores.setdefault(instance, {})
        if (model, core_id) not in cores:
            self._count_row()
        cores[model, core_id] = _Core(model, core)

    # -- memory, disks --

    def _memory_field(self, labels: PageLabels, value: Number | None, read: Field) -> None:
        instance, hostname = self._seen(labels)
        key = (instance, label_int(labels, "index") or 0)
        row = self.memory.get(key)
        if row is None:
            self._count_row()
            row = self.memory[key] = _Row(instance, hostname)
        row.fields[read.name] = read.convert(value)

    def _disk_field(self, labels: PageLabels, value: Number | None, read: Field) -> None:
        mount = labels.get("mount_point")
        if not mount:
            return
        instance, hostname = self._seen(labels)
        row = self.disks.get((instance, mount))
        if row is None:
            self._count_row()
            row = self.disks[instance, mount] = _Row(instance, hostname)
        if "index" not in row.fields:
            row.fields["index"] = label_int(labels, "index")
        row.fields[read.name] = read.convert(value)

    # -- chassis --

    def _chassis(self, labels: PageLabels) -> _ChassisRow:
        instance, hostname = self._seen(labels)
        row = self.chassis.get(instance)
        if row is None:
            self._count_row()
            row = self.chassis[instance] = _ChassisRow(instance, hostname)
        return row

    def _chassis_field(self, labels: PageLabels, value: Number | None, read: Field) -> None:
        self._chassis(labels).fields[read.name] = read.convert(value)

    def _chassis_detail(self, labels: PageLabels, value: Number | None, read: Detail) -> None:
        row = self._chassis(labels)
        if value is not None:
            row.detail[read.key] = number_text(value)

    def _chassis_labels(self, labels: PageLabels, value: Number | None, read: FromLabels) -> None:
        if self._says_something(labels, read):
            self._merge(self._chassis(labels), labels, read)

    def _fan_field(self, labels: PageLabels, value: Number | None, read: Field) -> None:
        row = self._chassis(labels)
        fan_id = label_int(labels, "fan_id")
        fan_name = labels.get("fan_name", "")
        fan_id = len(row.fans) if fan_id is None else fan_id
        if (fan_id, fan_name) not in row.fans:
            self._count_row()
        row.fans[fan_id, fan_name] = Fan(fan_id, fan_name, **{read.name: read.convert(value)})

    # -- processes --

    def _process_field(self, labels: PageLabels, value: Number | None, read: Field) -> None:
        if not self.keep_processes:
            return
        pid = label_int(labels, "pid")
        device = label_int(labels, "device_id", "gpu_index")
        if pid is None or device is None:
            return
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
        row.fields[read.name] = read.convert(value)

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
        info = dict(gpu.info)
        device_type = info.pop("type", None) or "GPU"
        detail = {**gpu.detail, **info}
        if gpu.index is not None:
            detail["index"] = gpu.index
        gpm = None
        if any(v is not None for v in gpu.gpm.values()):
            gpm = GpmMetrics(**gpu.gpm)
        health = dict(gpu.health)
        for name, (build, parts) in gpu.health_parts.items():
            health[name] = build(parts)
        health_row = None
        if any(v is not None for v in health.values()):
            health_row = GpuHealth(**health)
        return Gpu(
            uuid=gpu.uuid,
            name=gpu.name or "",
            device_type=device_type,
            host_id=self.host_id,
            hostname=gpu.hostname,
            instance=gpu.instance,
            nvlink_remote_devices=tuple(gpu.nvlinks[k] for k in sorted(gpu.nvlinks)),
            gpm_metrics=gpm,
            detail=detail,
            health=health_row,
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
        return GpuProcess(host_id=self.host_id, hostname=hostname, **row.fields)

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


Handler = Callable[[_Builder, PageLabels, Number | None, Any], None]


def _handler(entity: str, read: Read) -> Handler:
    """How a sample of a family with ``read`` goes into an ``entity`` row."""
    match entity, read:
        case "host", Presence():
            return _Builder._presence
        case "gpu", Field(fallback=True):
            return _Builder._gpu_fallback
        case "gpu", Field():
            return _Builder._gpu_field
        case "gpu", Detail():
            return _Builder._gpu_detail
        case "gpu", Gpm():
            return _Builder._gpu_gpm
        case "gpu", FromLabels():
            return _Builder._gpu_labels
        case "gpu", Health():
            return _Builder._gpu_health
        case "gpu", HealthParts():
            return _Builder._gpu_health_part
        case "cpu", Field(fallback=False):
            return _Builder._cpu_field
        case "cpu", FromLabels():
            return _Builder._cpu_labels
        case "socket", Field(fallback=False):
            return _Builder._socket_field
        case "core", Field(fallback=False):
            return _Builder._core_field
        case "memory", Field(fallback=False):
            return _Builder._memory_field
        case "disk", Field(fallback=False):
            return _Builder._disk_field
        case "chassis", Field(fallback=False):
            return _Builder._chassis_field
        case "chassis", Detail():
            return _Builder._chassis_detail
        case "chassis", FromLabels():
            return _Builder._chassis_labels
        case "fan", Field(fallback=False):
            return _Builder._fan_field
        case "process", Field(fallback=False):
            return _Builder._process_field
    raise ValueError(f"no way to read {read!r} into a {entity} row")


# Family name → (handler, its read), worked out once: the hot path is one dict lookup.
_ROUTES: Final[dict[str, tuple[Handler, Read]]] = {
    family.name: (_handler(family.entity.key, family.read), family.read) for family in FAMILIES
}


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


def rows_from_samples(
    samples: Iterable[Sample],
    host_id: str,
    limits: PageLimits = NO_LIMITS,
    *,
    processes: bool = True,
) -> HostRows:
    """The rows of one host's samples given as ``(name, labels, value)``, as
    :func:`parse_metrics` folds a page's (a Prometheus server's stored series at one instant,
    :mod:`allsmi.adapters.prometheus.history`). Raises only :class:`OverLimit`."""
    return _fold(samples, normalise_host_id(host_id), limits, processes).rows(0)


def _fold(samples: Iterable[Sample], host_id: str, limits: PageLimits, processes: bool) -> _Builder:
    """Each sample into the rows as it is read: a page past a cap stops where it passes it."""
    builder = _Builder(host_id, limits, processes)
    add, most = builder.add, limits.series
    for count, (name, labels, value) in enumerate(samples, 1):
        if count > most:
            raise OverLimit(f"over {most} series")
        add(_sample(name, labels, value))
    return builder


def fold_page(
    text: str,
    limits: PageLimits,
    fold: Callable[[Iterable[tuple[str, PageLabels, Number | None]]], _R],
    names: frozenset[str],
) -> _R:
    """``fold`` over the samples of ``text`` whose family is in ``names`` (a counter's sample
    may carry ``_total`` in addition), NaN and ±Inf as ``None``, read as
    :func:`parse_metrics` reads a page: the fast reader, else the vendor's grammar, else line
    by line. Sample lines of other families are dropped by their name before the fast reader
    parses them. ``fold`` may be called again on a later grammar: it must not keep state
    outside what it returns. Raises only :class:`OverLimit` (and what ``fold`` raises)."""

    def kept(lines: Iterable[str]) -> Iterator[str]:
        for line in lines:
            head = line.lstrip()
            if head and head[0] != "#":
                match = _NAME_AT.match(head)
                if match is not None and match.group(0) not in names:
                    continue
            yield line

    def samples(source: Iterable[Sample]) -> Iterator[tuple[str, PageLabels, Number | None]]:
        # a wanted family's sample, as _sample() reads it, inlined: once per exporter sample
        count, cap, isfinite = 0, limits.series, math.isfinite
        for name, labels, value in source:
            if name not in names and not (name.endswith("_total") and name[:-6] in names):
                continue
            count += 1
            if count > cap:
                raise OverLimit(f"over {cap} series")
            if type(value) is float:
                yield name, labels, (value if isfinite(value) else None)
            else:
                yield name, labels, (value if -_INT_LIMIT < value < _INT_LIMIT else None)

    try:
        return fold(samples(iter_plain_samples(kept(_lines(text, limits.lines)))))
    except NotPlain:
        pass
    try:
        return fold(samples(_vendor(text, limits)))
    except _Unparsed:
        pass
    return fold(samples(_line_by_line(text, limits, [0])))
