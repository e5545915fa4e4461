"""Local host readers: CPU, memory, storage and chassis of this machine (docs/architecture.md §3.4).

Rules this module obeys:
- Each field comes from the source docs/architecture.md §3.4 names: psutil for utilization,
  memory, storage and sensors; ``/proc/cpuinfo`` and sysfs for model, sockets and
  frequencies; ``/sys/class/dmi/id`` for chassis identity. A reading that is not available
  is ``None``, never an invented 0 (docs/architecture.md §8, rule 8).
- A missing or unreadable file, or an absent sensor, gives ``None``; an unexpected failure
  of a psutil call the row cannot do without becomes ``SourceUnavailable("psutil: <what>")``.
- Plain sync methods, no threads, no clock: the composition root runs each call in a worker
  thread with a timeout (docs/architecture.md §7.6). Samples are stamped by the caller.
- Storage never touches a network, cluster or pseudo filesystem: mounts are filtered by
  fstype from ``/etc/mtab`` (read, not stat'ed) *before* any ``statvfs`` (a hung mount would
  block it).

Theory of operation: the static facts (cpuinfo parse, sysfs topology and cpufreq limits, DMI
identity, core counts) are read once, on the first call, and cached on the reader. Each
``read_*`` then costs a handful of psutil calls, all well under a millisecond on a small box.

CPU utilization comes from ONE measurement window per reading: one per-CPU times sample
(``psutil.cpu_times(percpu=True)``, one call per cycle) at each ``read_cpu``, compared with the
reader's own previous sample. Every figure is derived from those same per-CPU deltas: a core
is its busy share of its own time; the overall figure is busy time over total time summed
across all CPUs (so it is the time-weighted mean of the cores); a socket is the mean of its
cores. psutil's ``cpu_percent`` is not used: it keeps a hidden "last call" per thread and per
``percpu`` flag, so figures read in different worker threads measured different windows.
The first window starts at ``prime()`` (the local source waits ``CPU_PRIME_S`` after it); a
``read_cpu`` with no usable previous sample (never primed, or the CPU count changed) has no
window, and its utilizations are ``None``, never an invented 0. The sample is the reader's
state, so ``read_cpu`` must not run twice at once (one call in flight per source,
docs/architecture.md §7.6).
"""

from __future__ import annotations

import math
import os
import platform
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from statistics import fmean
from typing import Final, TypeVar

import attrs
import psutil

from allsmi.domain.errors import SourceUnavailable
from allsmi.domain.filesystems import is_local_fs
from allsmi.domain.model import Chassis, CoreUtilization, Cpu, CpuSocket, Fan, Memory, Storage

T = TypeVar("T")

# /sys/class/dmi/id file → all-smi's chassis ``detail`` key (the names all-smi writes).
DMI_DETAIL_KEYS: Final = (
    ("product_name", "Product Name"),
    ("sys_vendor", "Vendor"),
    ("board_name", "Board"),
    ("product_version", "Version"),
    ("bios_version", "BIOS Version"),
)

# Arm CPUs have no "model name" in /proc/cpuinfo; name them from the MIDR implementer and
# part numbers (Arm ARM, MIDR_EL1), as lscpu does. Only the common server parts.
ARM_IMPLEMENTERS: Final = {
    0x41: "ARM", 0x42: "Broadcom", 0x43: "Cavium", 0x48: "HiSilicon", 0x4E: "NVIDIA",
    0x50: "APM", 0x51: "Qualcomm", 0x61: "Apple", 0xC0: "Ampere",
}  # fmt: skip
ARM_PARTS: Final = {
    (0x41, 0xD08): "Cortex-A72", (0x41, 0xD0B): "Cortex-A76", (0x41, 0xD0C): "Neoverse-N1",
    (0x41, 0xD40): "Neoverse-V1", (0x41, 0xD49): "Neoverse-N2", (0x41, 0xD4F): "Neoverse-V2",
    (0x41, 0xD8E): "Neoverse-N3", (0x41, 0xD84): "Neoverse-V3", (0xC0, 0xAC3): "Ampere-1",
    (0xC0, 0xAC4): "Ampere-1a", (0x48, 0xD01): "Kunpeng-920",
}  # fmt: skip

_GHZ_IN_MODEL: Final = re.compile(r"@\s*([0-9]+(?:\.[0-9]+)?)\s*GHz", re.IGNORECASE)
_PACKAGE_LABEL: Final = re.compile(r"^Package id (\d+)$")
_CPU_SENSOR_CHIPS: Final = ("coretemp", "k10temp", "zenpower")


# --------------------------------------------------------------------------- pure helpers


@attrs.frozen
class Processor:
    """One logical CPU: its number and, when known, its package (socket) and core ids."""

    number: int
    package: int | None = None
    core: int | None = None


@attrs.frozen
class CpuInfo:
    """What ``/proc/cpuinfo`` says that does not change while the machine runs."""

    model: str | None = None
    vendor: str | None = None
    cache_size_mb: int | None = None  # MiB
    processors: tuple[Processor, ...] = ()


def _int_or_none(text: str | None, base: int = 10) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip(), base)
    except ValueError:
        return None


def _cache_mb(text: str | None) -> int | None:
    """``307200 KB`` → 300; ``512 KB`` → 1 (a real cache is never reported as 0)."""
    if text is None:
        return None
    parts = text.split()
    size = _int_or_none(parts[0]) if parts else None
    if size is None or size <= 0:
        return None
    unit = parts[1].upper() if len(parts) > 1 else "KB"
    kib = size * 1024 if unit.startswith("M") else size
    return max(1, round(kib / 1024))


def _arm_model(block: Mapping[str, str]) -> str | None:
    implementer = _int_or_none(block.get("CPU implementer"), 16)
    if implementer is None:
        return None
    part = _int_or_none(block.get("CPU part"), 16)
    vendor = ARM_IMPLEMENTERS.get(implementer, f"implementer 0x{implementer:02x}")
    name = ARM_PARTS.get((implementer, part or -1))
    if name is not None:
        return f"{vendor} {name}"
    return vendor if part is None else f"{vendor} part 0x{part:03x}"


def parse_cpuinfo(text: str) -> CpuInfo:
    """Parse ``/proc/cpuinfo`` (x86 and Arm layouts): model, vendor, cache, topology."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in [*text.splitlines(), ""]:
        key, sep, value = line.partition(":")
        if not sep:
            if current:
                blocks.append(current)
                current = {}
            continue
        current.setdefault(key.strip(), value.strip())
    cpus = [b for b in blocks if _int_or_none(b.get("processor")) is not None]
    first = cpus[0] if cpus else {}
    model = first.get("model name") or _arm_model(first) or None
    processors = tuple(
        Processor(
            number=_int_or_none(b.get("processor")) or 0,
            package=_int_or_none(b.get("physical id")),
            core=_int_or_none(b.get("core id")),
        )
        for b in cpus
    )
    return CpuInfo(
        model=model,
        vendor=first.get("vendor_id") or None,
        cache_size_mb=_cache_mb(first.get("cache size")),
        processors=processors,
    )


def platform_type(vendor: str | None, model: str | None, machine: str) -> str | None:
    """all-smi's ``platform_type``: ``Intel``, ``Amd``, ``Arm`` or the vendor's own text."""
    text = f"{vendor or ''} {model or ''}".lower()
    if "intel" in text:
        return "Intel"
    if "amd" in text or "hygon" in text:
        return "Amd"
    if machine.lower().startswith(("aarch64", "arm")):
        return "Arm"
    return vendor


CpuTimes = Mapping[str, float]
"""One logical CPU's cumulative seconds per state (``user``, ``idle``…), named as psutil does."""

# Not busy: idle, and iowait (Linux keeps it out of idle). Guest time is already inside
# user/nice on Linux, so it is left out of the total. The accounting psutil and top use.
_IDLE_FIELDS: Final = ("idle", "iowait")
_GUEST_FIELDS: Final = frozenset({"guest", "guest_nice"})


@attrs.frozen
class CpuWindow:
    """Utilization (percent) over one window between two per-CPU samples.

    ``overall`` is busy over total time summed across the CPUs (the time-weighted mean of
    ``per_cpu``). ``None``: no window (no previous sample) or no time passed in it.
    """

    overall: float | None
    per_cpu: tuple[float | None, ...]


def _busy_and_total(before: CpuTimes, after: CpuTimes) -> tuple[float, float]:
    """One CPU's busy and total seconds between two samples; a counter that went backwards
    (Linux iowait can) counts as 0."""
    deltas = {name: max(0.0, value - before.get(name, value)) for name, value in after.items()}
    total = sum(value for name, value in deltas.items() if name not in _GUEST_FIELDS)
    idle = sum(deltas.get(name, 0.0) for name in _IDLE_FIELDS)
    return total - idle, total


def _percent(busy: float, total: float) -> float | None:
    if total <= 0.0:
        return None
    return round(min(100.0, max(0.0, 100.0 * busy / total)), 1)


def cpu_window(before: Sequence[CpuTimes] | None, after: Sequence[CpuTimes]) -> CpuWindow:
    """Every CPU figure from one window: the per-CPU deltas between ``before`` and ``after``.

    CPUs are paired by position; when the counts differ (a CPU went on- or offline) there is
    no consistent window, so nothing is measured.
    """
    if before is None or len(before) != len(after):
        return CpuWindow(overall=None, per_cpu=(None,) * len(after))
    spans = [_busy_and_total(b, a) for b, a in zip(before, after, strict=True)]
    return CpuWindow(
        overall=_percent(sum(busy for busy, _ in spans), sum(total for _, total in spans)),
        per_cpu=tuple(_percent(busy, total) for busy, total in spans),
    )


def psutil_cpu_times() -> list[dict[str, float]]:
    """The real per-CPU times source: one ``psutil.cpu_times(percpu=True)`` call."""
    return [times._asdict() for times in psutil.cpu_times(percpu=True)]


def socket_rows(
    processors: Sequence[Processor],
    percpu_utilization: Sequence[float | None],
    percpu_frequency_mhz: Sequence[float] | None,
    temperatures: Mapping[int, int],
) -> tuple[CpuSocket, ...]:
    """One ``CpuSocket`` per package, when every processor's package is known.

    Utilization and frequency are means over the socket's logical CPUs (utilization over
    those that have a figure); psutil lists CPUs in the order ``/proc/cpuinfo`` does, so a
    list is mapped by position only when its length matches (otherwise that field is ``None``).
    """
    if not processors or any(p.package is None for p in processors):
        return ()
    util_ok = len(percpu_utilization) == len(processors)
    freq_ok = percpu_frequency_mhz is not None and len(percpu_frequency_mhz) == len(processors)
    rows = []
    for package in sorted({p.package for p in processors if p.package is not None}):
        members = [i for i, p in enumerate(processors) if p.package == package]
        cores = {processors[i].core for i in members}
        freq = None
        if freq_ok and percpu_frequency_mhz is not None:
            freq = _positive_mhz(fmean(percpu_frequency_mhz[i] for i in members))
        known = [u for i in members if util_ok and (u := percpu_utilization[i]) is not None]
        rows.append(
            CpuSocket(
                socket_id=package,
                utilization=fmean(known) if known else None,
                cores=None if None in cores else len(cores),
                threads=len(members),
                temperature=temperatures.get(package),
                frequency_mhz=freq,
            )
        )
    return tuple(rows)


def cpu_temperatures(
    sensors: Mapping[str, Sequence[tuple[str, float]]], socket_ids: Sequence[int]
) -> dict[int, int]:
    """Package temperatures by socket id, from hwmon ``coretemp`` / ``k10temp`` / ``zenpower``.

    ``coretemp`` labels its packages ``Package id N``; the AMD drivers give one ``Tdie`` (or
    ``Tctl``) per package, in socket order.
    """
    found: dict[int, int] = {}
    for label, value in sensors.get("coretemp", ()):
        match = _PACKAGE_LABEL.match(label)
        if match and math.isfinite(value):
            found[int(match.group(1))] = round(value)
    for chip in _CPU_SENSOR_CHIPS[1:]:
        entries = sensors.get(chip, ())
        labels = {label for label, _ in entries}
        wanted = "Tdie" if "Tdie" in labels else "Tctl"
        values = [v for label, v in entries if label == wanted and math.isfinite(v)]
        ids = list(socket_ids) or list(range(len(values)))
        for socket_id, value in zip(ids, values, strict=False):
            found.setdefault(socket_id, round(value))
    return found


def _mhz_from_khz(text: str | None) -> int | None:
    khz = _int_or_none(text)
    return round(khz / 1000) if khz and khz > 0 else None


def _positive_mhz(value: float | None) -> int | None:
    if value is None or not math.isfinite(value) or value <= 0:
        return None
    return round(value)


def _read_text(path: Path) -> str | None:
    """A small text file's content, or ``None`` if it is missing or unreadable."""
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return None


def _required(what: str, call: Callable[[], T]) -> T:
    """A psutil call the row cannot do without: failure → ``SourceUnavailable``."""
    try:
        return call()
    except (psutil.Error, OSError, RuntimeError) as exc:
        raise SourceUnavailable(f"psutil: {what}: {exc}") from exc


def _optional(call: Callable[[], T]) -> T | None:
    """A psutil call for an optional reading (sensors, frequency): failure → ``None``."""
    try:
        return call()
    except (psutil.Error, OSError, RuntimeError, NotImplementedError, ValueError):
        return None


def _temperature_sensors() -> dict[str, list[tuple[str, float]]]:
    if not hasattr(psutil, "sensors_temperatures"):
        return {}
    found = _optional(psutil.sensors_temperatures) or {}
    return {chip: [(e.label, e.current) for e in entries] for chip, entries in found.items()}


# --------------------------------------------------------------------------- the reader


@attrs.frozen
class _CpuStatic:
    info: CpuInfo
    architecture: str | None
    platform_type: str | None
    socket_ids: tuple[int, ...]
    total_cores: int | None
    total_threads: int | None
    base_frequency_mhz: int | None
    max_frequency_mhz: int | None


class HostReader:
    """Reads this machine's CPU, memory, storage and chassis rows.

    Construct, call :meth:`prime`, wait at least 0.1 s, then call the ``read_*`` methods
    once per cycle (each from a worker thread is fine, one ``read_cpu`` at a time: it owns the
    previous CPU sample; the rest share only the cached static facts, written once).
    ``cpu_times`` is the per-CPU times source, :func:`psutil_cpu_times` unless a test
    scripts it.
    """

    def __init__(
        self,
        host_id: str,
        hostname: str,
        proc_root: Path = Path("/proc"),
        sys_root: Path = Path("/sys"),
        cpu_times: Callable[[], Sequence[CpuTimes]] = psutil_cpu_times,
    ) -> None:
        self.host_id = host_id
        self.hostname = hostname
        self.proc_root = proc_root
        self.sys_root = sys_root
        self._cpu_times = cpu_times
        self._last_cpu_times: Sequence[CpuTimes] | None = None
        self._cpu_static: _CpuStatic | None = None
        self._chassis_detail: dict[str, str] | None = None

    # -- CPU

    def prime(self) -> None:
        """Take the first per-CPU sample: the first :meth:`read_cpu`'s window starts here.

        Without it the first reading has no window and its utilizations are ``None``. The
        caller waits (at least 0.1 s: ``/proc/stat`` counts in 10 ms ticks) before that read.
        """
        self._last_cpu_times = _required("cpu_times(percpu)", self._cpu_times)

    def read_cpu(self) -> tuple[Cpu, ...]:
        """One ``Cpu`` row: utilization over the window since the previous sample (the last
        ``read_cpu`` or ``prime``), overall, per core and per socket from that one window."""
        static = self._static_cpu()
        now = _required("cpu_times(percpu)", self._cpu_times)
        window = cpu_window(self._last_cpu_times, now)
        self._last_cpu_times = now
        percpu = window.per_cpu
        freqs = _optional(lambda: psutil.cpu_freq(percpu=True)) or []
        percpu_mhz = [f.current for f in freqs] or None
        load = _optional(psutil.getloadavg)
        temps = cpu_temperatures(_temperature_sensors(), static.socket_ids)
        processors = static.info.processors
        numbers = (
            [p.number for p in processors]
            if len(processors) == len(percpu)
            else list(range(len(percpu)))
        )
        cores = tuple(
            CoreUtilization(core_id=n, core_type="Standard", utilization=u)
            for n, u in zip(numbers, percpu, strict=True)
        )
        return (
            Cpu(
                host_id=self.host_id,
                hostname=self.hostname,
                instance=self.hostname,
                index=0,
                cpu_model=static.info.model,
                architecture=static.architecture,
                platform_type=static.platform_type,
                socket_count=len(static.socket_ids) or None,
                total_cores=static.total_cores,
                total_threads=static.total_threads,
                base_frequency_mhz=static.base_frequency_mhz,
                max_frequency_mhz=static.max_frequency_mhz,
                current_frequency_mhz=_positive_mhz(fmean(percpu_mhz) if percpu_mhz else None),
                cache_size_mb=static.info.cache_size_mb,
                utilization=window.overall,
                load_average=(load[0], load[1], load[2]) if load else None,
                temperature=max(temps.values()) if temps else None,
                power_consumption=None,  # no local source (RAPL is root-only and delta-based)
                per_socket_info=socket_rows(processors, percpu, percpu_mhz, temps),
                per_core_utilization=cores,
            ),
        )

    def _static_cpu(self) -> _CpuStatic:
        if self._cpu_static is None:
            self._cpu_static = self._load_cpu_static()
        return self._cpu_static

    def _load_cpu_static(self) -> _CpuStatic:
        info = parse_cpuinfo(_read_text(self.proc_root / "cpuinfo") or "")
        cpu_dir = self.sys_root / "devices" / "system" / "cpu"
        info = attrs.evolve(info, processors=self._fill_topology(info.processors, cpu_dir))
        first = info.processors[0].number if info.processors else 0
        cpufreq = cpu_dir / f"cpu{first}" / "cpufreq"
        base = _mhz_from_khz(_read_text(cpufreq / "base_frequency"))
        if base is None and info.model:
            match = _GHZ_IN_MODEL.search(info.model)  # "Xeon(R) Gold 6338 CPU @ 2.00GHz"
            base = round(float(match.group(1)) * 1000) if match else None
        max_mhz = _mhz_from_khz(_read_text(cpufreq / "cpuinfo_max_freq"))
        if max_mhz is None:
            freq = _optional(psutil.cpu_freq)
            max_mhz = _positive_mhz(freq.max if freq else None)
        machine = platform.machine() or None
        packages = {p.package for p in info.processors}
        socket_ids = () if None in packages else tuple(sorted(p for p in packages if p is not None))
        return _CpuStatic(
            info=info,
            architecture=machine,
            platform_type=platform_type(info.vendor, info.model, machine or ""),
            socket_ids=socket_ids,
            total_cores=psutil.cpu_count(logical=False),
            total_threads=psutil.cpu_count(logical=True),
            base_frequency_mhz=base,
            max_frequency_mhz=max_mhz,
        )

    @staticmethod
    def _fill_topology(processors: tuple[Processor, ...], cpu_dir: Path) -> tuple[Processor, ...]:
        """Complete package/core ids from sysfs ``topology/`` (Arm cpuinfo has neither)."""
        if not processors:
            numbers = sorted(
                n
                for n in (_int_or_none(d.name[3:]) for d in _list_dir(cpu_dir, "cpu[0-9]*"))
                if n is not None
            )
            processors = tuple(Processor(number=n) for n in numbers)
        filled = []
        for p in processors:
            topology = cpu_dir / f"cpu{p.number}" / "topology"
            package = p.package
            if package is None:
                package = _int_or_none(_read_text(topology / "physical_package_id"))
                package = package if package is not None and package >= 0 else None
            core = p.core
            if core is None:
                core = _int_or_none(_read_text(topology / "core_id"))
            filled.append(Processor(number=p.number, package=package, core=core))
        return tuple(filled)

    # -- memory

    def read_memory(self) -> tuple[Memory, ...]:
        """One ``Memory`` row from ``virtual_memory`` and ``swap_memory`` (bytes)."""
        vm = _required("virtual_memory", psutil.virtual_memory)
        swap = _required("swap_memory", psutil.swap_memory)
        buffers = getattr(vm, "buffers", None)  # Linux/BSD only
        cached = getattr(vm, "cached", None)
        return (
            Memory(
                host_id=self.host_id,
                hostname=self.hostname,
                instance=self.hostname,
                index=0,
                total_bytes=vm.total,
                used_bytes=vm.used,
                available_bytes=vm.available,
                free_bytes=vm.free,
                buffers_bytes=buffers if isinstance(buffers, int) else None,
                cached_bytes=cached if isinstance(cached, int) else None,
                swap_total_bytes=swap.total,
                swap_used_bytes=swap.used,
                swap_free_bytes=swap.free,
                utilization=vm.percent,
            ),
        )

    # -- storage

    def read_storage(self) -> tuple[Storage, ...]:
        """One ``Storage`` row per local filesystem, deduplicated by device, in mount order.

        ``disk_partitions(all=True)`` only reads the mount table; ``all=False`` would drop
        the ``overlay`` root of a container, so the filtering is ours (:func:`is_local_fs`),
        and ``disk_usage`` is called only on mounts that passed it.
        """
        parts = _required("disk_partitions", lambda: psutil.disk_partitions(all=True))
        rows: list[Storage] = []
        seen: set[str] = set()
        for part in parts:
            if not is_local_fs(part.fstype, part.mountpoint):
                continue
            key = part.device or part.mountpoint
            if key in seen:
                continue
            try:
                if not os.path.isdir(part.mountpoint):
                    continue  # a container's bind-mounted /etc/hosts, not a disk
                usage = psutil.disk_usage(part.mountpoint)
            except (OSError, psutil.Error):
                continue
            seen.add(key)
            rows.append(
                Storage(
                    host_id=self.host_id,
                    hostname=self.hostname,
                    mount_point=part.mountpoint,
                    index=len(rows),
                    total_bytes=usage.total,
                    available_bytes=usage.free,  # free to unprivileged users (f_bavail)
                )
            )
        return tuple(rows)

    # -- chassis

    def read_chassis(self) -> tuple[Chassis, ...]:
        """One ``Chassis`` row: DMI identity and fans; inlet/outlet only from sensors
        labelled so. Power is left unknown: no local reading has it, and the local source
        puts in the GPUs' sum (docs/architecture.md §3.4)."""
        if self._chassis_detail is None:
            self._chassis_detail = self._read_dmi()
        sensors = _temperature_sensors()
        return (
            Chassis(
                host_id=self.host_id,
                hostname=self.hostname,
                instance=self.hostname,
                total_power_watts=None,
                inlet_temperature=_labelled_temperature(sensors, "inlet"),
                outlet_temperature=_labelled_temperature(sensors, "outlet"),
                thermal_pressure=None,
                fan_speeds=_fans(),
                psu_status=(),
                detail=dict(self._chassis_detail),
            ),
        )

    def _read_dmi(self) -> dict[str, str]:
        dmi = self.sys_root / "class" / "dmi" / "id"
        detail: dict[str, str] = {}
        for name, key in DMI_DETAIL_KEYS:
            text = _read_text(dmi / name)  # some are root-only (EACCES): skipped
            if text is not None and text.strip():
                detail[key] = text.strip()
        return detail


def _list_dir(directory: Path, pattern: str) -> list[Path]:
    try:
        return list(directory.glob(pattern))
    except OSError:
        return []


def _labelled_temperature(
    sensors: Mapping[str, Sequence[tuple[str, float]]], word: str
) -> float | None:
    for entries in sensors.values():
        for label, value in entries:
            if word in label.lower() and math.isfinite(value):
                return float(value)
    return None


def _fans() -> tuple[Fan, ...]:
    if not hasattr(psutil, "sensors_fans"):
        return ()
    found = _optional(psutil.sensors_fans) or {}
    fans: list[Fan] = []
    for chip, entries in found.items():
        for n, entry in enumerate(entries):
            name = entry.label or f"{chip} fan{n + 1}"
            fans.append(Fan(id=len(fans), name=name, speed_rpm=int(entry.current), max_rpm=None))
    return tuple(fans)
