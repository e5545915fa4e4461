"""What the samples of the ``/metrics`` page are about: the entities (a host, a GPU, a CPU
socket, a fan…) that families describe, and the base labels that name each one
(all-smi's exporter labels, docs/architecture.md §3.3).

An :class:`Entity` is a kind of row with its base label names, in all-smi's order, and a
function that yields each such row of a frame with those labels' values. Every family of
:mod:`.families` is about one entity; the writer escapes an entity's base label block once
and reuses it for every family about it, and the parser finds the row a sample belongs to
from the same labels. (These are finer than a frame's sections: one CPU row of the frame is
a CPU, its sockets and its cores here.)

Rules the rows follow (all-smi's, ``src/api/metrics/*.rs``):

- Baseline families get one row per host of the frame, or one for this machine when the
  frame has no rows at all (before the first collection the exporter speaks for itself).
- Only GPU, NPU and TPU devices are GPU rows; ``gpu_index`` is the driver's index when the
  reader recorded one, else the device's position among all of its host's devices.
- Process labels are truncated to 128 (name, user) and 256 (command) UTF-8 bytes, with a
  ``...(N bytes truncated)`` suffix, never splitting a character.
- A core's type is one letter: ``S``, ``P``, ``E``, or ``C`` for any other (Standard).
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable, Iterator
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

__all__ = [
    "CHASSIS",
    "CORE",
    "CORE_TYPE_OF",
    "CPU",
    "DISK",
    "ENTITIES",
    "FAN",
    "GPU",
    "HOST",
    "MEMORY",
    "PROCESS",
    "SOCKET",
    "Context",
    "Entity",
    "Host",
]

R = TypeVar("R")
LabelValues = tuple[str, ...]

# all-smi exports only these device types as GPU rows (gpu.rs collect_rows).
_GPU_TYPES: Final = frozenset({"GPU", "NPU", "TPU"})
# Core type → all-smi's letter; any other type is written C (Standard).
_CORE_TYPE_LETTER: Final = {"Super": "S", "Performance": "P", "Efficiency": "E"}
# And back, for the parser: a letter or a full name → the type; anything else is Standard.
CORE_TYPE_OF: Final = {
    "Standard": "Standard",
    **{kind: kind for kind in _CORE_TYPE_LETTER},
    **{letter: kind for kind, letter in _CORE_TYPE_LETTER.items()},
}
# Process label limits in UTF-8 bytes (§6.1).
_COMMAND_MAX_BYTES: Final = 256
_NAME_MAX_BYTES: Final = 128


@attrs.frozen
class Context:
    """What the exporter knows beside the frame."""

    ready: bool  # a collection has completed
    version: str  # the exporter's version, for all_smi_build_info


@attrs.frozen
class Entity(Generic[R]):
    """A kind of row that samples are about, and the base labels that name one."""

    key: str  # the parser's name for it: it looks rows of each entity up its own way
    labels: tuple[str, ...]  # base label names, in the order they are written
    rows: Callable[[Frame, Context], Iterable[tuple[R, LabelValues]]]  # rows, label values


def _truncate(text: str, limit: int) -> str:
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return text
    kept = data[:limit].decode("utf-8", "ignore")  # never split a character
    return f"{kept}...({len(data) - len(kept.encode('utf-8'))} bytes truncated)"


# --- baseline --------------------------------------------------------------------------


class Host(NamedTuple):
    instance: str
    hostname: str
    context: Context


def _host_rows(frame: Frame, context: Context) -> Iterator[tuple[Host, LabelValues]]:
    seen: dict[str, tuple[str, str]] = {}
    for rows in (frame.gpus, frame.cpus, frame.memory, frame.chassis):
        for row in rows or ():
            seen.setdefault(row.host_id, (row.instance, row.hostname))
    for disk in frame.storage or ():
        seen.setdefault(disk.host_id, (disk.hostname, disk.hostname))
    if not seen:  # before the first collection: the exporter speaks for itself
        seen[""] = (platform.node(), platform.node())
    for instance, hostname in seen.values():
        yield Host(instance, hostname, context), (instance, hostname)


HOST: Final = Entity[Host]("host", ("instance", "hostname"), _host_rows)


# --- GPU, processes --------------------------------------------------------------------


def _gpu_rows(frame: Frame, context: Context) -> Iterator[tuple[Gpu, LabelValues]]:
    position: dict[str, int] = {}  # per host, counting every device as all-smi's enumerate does
    for gpu in frame.gpus or ():
        fallback = position.get(gpu.host_id, 0)
        position[gpu.host_id] = fallback + 1
        if gpu.device_type not in _GPU_TYPES:
            continue
        index = gpu.detail.get("index", "")  # the driver's index when the reader recorded it
        if not (index.isascii() and index.isdigit()):
            index = str(fallback)
        yield gpu, (gpu.name, gpu.instance, gpu.uuid, index)


GPU: Final = Entity[Gpu]("gpu", ("gpu", "instance", "gpu_uuid", "gpu_index"), _gpu_rows)


def _process_rows(frame: Frame, context: Context) -> Iterator[tuple[GpuProcess, LabelValues]]:
    for proc in frame.processes or ():
        device_id = str(proc.device_id)
        yield (
            proc,
            (
                str(proc.pid),
                _truncate(proc.process_name or "", _NAME_MAX_BYTES),
                _truncate(proc.user or "", _NAME_MAX_BYTES),
                device_id,
                device_id,
                proc.device_uuid,
                _truncate(proc.command or "", _COMMAND_MAX_BYTES),
            ),
        )


PROCESS: Final = Entity[GpuProcess](
    "process",
    ("pid", "name", "user", "device_id", "gpu_index", "device_uuid", "command"),
    _process_rows,
)


# --- CPU -------------------------------------------------------------------------------


def _cpu_base(cpu: Cpu) -> LabelValues:
    return (cpu.cpu_model or "", cpu.instance, cpu.hostname)


def _cpu_rows(frame: Frame, context: Context) -> Iterator[tuple[Cpu, LabelValues]]:
    for cpu in frame.cpus or ():
        yield cpu, (*_cpu_base(cpu), str(cpu.index))


CPU: Final = Entity[Cpu]("cpu", ("cpu_model", "instance", "hostname", "index"), _cpu_rows)


def _socket_rows(frame: Frame, context: Context) -> Iterator[tuple[CpuSocket, LabelValues]]:
    for cpu in frame.cpus or ():
        base = (*_cpu_base(cpu), str(cpu.index))
        for socket in cpu.per_socket_info:
            yield socket, (*base, str(socket.socket_id))


SOCKET: Final = Entity[CpuSocket](
    "socket", ("cpu_model", "instance", "hostname", "cpu_index", "socket_id"), _socket_rows
)


def _core_rows(frame: Frame, context: Context) -> Iterator[tuple[CoreUtilization, LabelValues]]:
    for cpu in frame.cpus or ():
        base = _cpu_base(cpu)
        for core in cpu.per_core_utilization:
            letter = _CORE_TYPE_LETTER.get(core.core_type, "C")  # C = Standard
            yield core, (*base, str(core.core_id), letter)


CORE: Final = Entity[CoreUtilization](
    "core", ("cpu_model", "instance", "hostname", "core_id", "core_type"), _core_rows
)


# --- memory, disk ----------------------------------------------------------------------


def _memory_rows(frame: Frame, context: Context) -> Iterator[tuple[Memory, LabelValues]]:
    for mem in frame.memory or ():
        yield mem, (mem.instance, mem.hostname, str(mem.index))


MEMORY: Final = Entity[Memory]("memory", ("instance", "hostname", "index"), _memory_rows)


def _disk_rows(frame: Frame, context: Context) -> Iterator[tuple[Storage, LabelValues]]:
    for disk in frame.storage or ():
        yield disk, (disk.hostname, disk.mount_point, str(disk.index))  # instance = hostname


DISK: Final = Entity[Storage]("disk", ("instance", "mount_point", "index"), _disk_rows)


# --- chassis ---------------------------------------------------------------------------


def _chassis_rows(frame: Frame, context: Context) -> Iterator[tuple[Chassis, LabelValues]]:
    for chassis in frame.chassis or ():
        yield chassis, (chassis.hostname, chassis.instance)


CHASSIS: Final = Entity[Chassis]("chassis", ("hostname", "instance"), _chassis_rows)


def _fan_rows(frame: Frame, context: Context) -> Iterator[tuple[Fan, LabelValues]]:
    for chassis in frame.chassis or ():
        host, instance = chassis.hostname, chassis.instance
        for fan in chassis.fan_speeds:
            yield fan, (host, instance, str(fan.id), fan.name)


FAN: Final = Entity[Fan]("fan", ("hostname", "instance", "fan_id", "fan_name"), _fan_rows)

# all-smi's family order (render.rs): baseline, GPU, process, CPU, memory, disk, chassis.
ENTITIES: Final[tuple[Entity[Any], ...]] = (
    HOST,
    GPU,
    PROCESS,
    CPU,
    SOCKET,
    CORE,
    MEMORY,
    DISK,
    CHASSIS,
    FAN,
)
