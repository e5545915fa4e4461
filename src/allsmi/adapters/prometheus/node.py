"""A node_exporter ``/metrics`` page (Prometheus's, port 9100) into CPU, memory and storage rows.

The remote scraper (:mod:`allsmi.adapters.network.scrape`) hands a page here when it carries
``node_cpu_seconds_total`` or ``node_memory_*`` samples (:func:`is_node_page`); no flag says
so. Once a host is known to be node_exporter, the scraper asks for :data:`NODE_PATH` — only the
collectors read here — so a 128-core node's page stays small. As for dcgm-exporter
(:mod:`.dcgm`): :func:`fold_node` folds the samples (pure), :meth:`NodePage.rows` builds the
rows with the host's :class:`NodeState`.

Rules this module obeys (docs/recording-format.md §5.4–§5.8 for the fields):

- :data:`NODE_FAMILIES` is the one table of what is read; unknown families are skipped before
  they are parsed (:data:`NODE_NAMES`), and no family is required.
- CPU utilization (percent) is ``1 − Δ(idle + iowait) / Δ(all modes)`` of
  ``node_cpu_seconds_total`` between two scrapes, per core and over the cores that have both
  readings; ``None`` on the first scrape, for a core whose counters went backwards (a reboot)
  or did not move. :class:`NodeState` keeps one entry per core of the last page.
- One CPU row per host: ``cpu_model``, sockets, physical cores from ``node_cpu_info`` when the
  exporter has it (``--collector.cpu.info``), threads as the cores of
  ``node_cpu_seconds_total``, load averages when all three are there, ``architecture`` from
  ``node_uname_info``'s ``machine``.
- One memory row from ``node_memory_*_bytes``: used is total − free − buffers − cached (the
  local reader's rule, psutil's), else total − available; utilization (total − available) /
  total.
- Storage rows from ``node_filesystem_size_bytes``/``avail_bytes``, one per mount point, the
  local reader's filesystems only (:func:`allsmi.domain.filesystems.is_local_fs`: no tmpfs,
  overlay but as ``/``, squashfs, network filesystems…), in mount point order.
- ``hostname`` is ``node_uname_info``'s ``nodename``, else the scrape target's host part.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import attrs

from allsmi.adapters.prometheus.conversions import Number, PageLabels
from allsmi.adapters.prometheus.parser import OverLimit, PageLimits
from allsmi.domain.filesystems import is_local_fs
from allsmi.domain.model import CoreUtilization, Cpu, Memory, Storage, bounded_int

__all__ = ["NODE_FAMILIES", "NODE_NAMES", "NODE_PATH", "NodePage", "NodeState", "fold_node"]

# The collectors read: the path asked of a host known to be node_exporter.
NODE_COLLECTORS: Final = ("cpu", "meminfo", "filesystem", "loadavg", "uname")
NODE_PATH: Final = "/metrics?" + "&".join(f"collect%5B%5D={c}" for c in NODE_COLLECTORS)
_IDLE_MODES: Final = frozenset({"idle", "iowait"})

# Family → what it fills.
# fmt: off
NODE_FAMILIES: Final[dict[str, str]] = {
    "node_cpu_seconds_total":       "cpu: seconds per core and mode → utilization",
    "node_cpu_info":                "cpu: cpu_model, socket_count, total_cores",
    "node_load1":                   "cpu: load_average[0]",
    "node_load5":                   "cpu: load_average[1]",
    "node_load15":                  "cpu: load_average[2]",
    "node_uname_info":              "hostname (nodename), cpu architecture (machine)",
    "node_memory_MemTotal_bytes":   "memory: total_bytes",
    "node_memory_MemAvailable_bytes": "memory: available_bytes",
    "node_memory_MemFree_bytes":    "memory: free_bytes",
    "node_memory_Buffers_bytes":    "memory: buffers_bytes",
    "node_memory_Cached_bytes":     "memory: cached_bytes",
    "node_memory_SwapTotal_bytes":  "memory: swap_total_bytes",
    "node_memory_SwapFree_bytes":   "memory: swap_free_bytes",
    "node_filesystem_size_bytes":   "storage: total_bytes",
    "node_filesystem_avail_bytes":  "storage: available_bytes",
}
# fmt: on
NODE_NAMES: Final = frozenset(NODE_FAMILIES)
_MEMORY: Final = {
    "node_memory_MemTotal_bytes": "total_bytes",
    "node_memory_MemAvailable_bytes": "available_bytes",
    "node_memory_MemFree_bytes": "free_bytes",
    "node_memory_Buffers_bytes": "buffers_bytes",
    "node_memory_Cached_bytes": "cached_bytes",
    "node_memory_SwapTotal_bytes": "swap_total_bytes",
    "node_memory_SwapFree_bytes": "swap_free_bytes",
}
_LOADS: Final = {"node_load1": 0, "node_load5": 1, "node_load15": 2}
_STORAGE: Final = {
    "node_filesystem_size_bytes": "total_bytes",
    "node_filesystem_avail_bytes": "available_bytes",
}


def is_node_page(text: str) -> bool:
    """Whether a page carries node_exporter's CPU or memory samples."""
    return any(
        text.startswith(name) or f"\n{name}" in text
        for name in ("node_cpu_seconds_total", "node_memory_")
    )


@attrs.define
class NodePage:
    """One page's readings, before the state across scrapes is applied."""

    limits: PageLimits
    seconds: dict[int, dict[str, float]] = attrs.Factory(dict)  # core → mode → seconds
    packages: set[str] = attrs.Factory(set)
    physical: set[tuple[str, str]] = attrs.Factory(set)  # (package, core)
    cpu_model: str | None = None
    loads: list[float | None] = attrs.Factory(lambda: [None, None, None])
    nodename: str = ""
    machine: str | None = None
    memory: dict[str, int] = attrs.Factory(dict)
    disks: dict[str, dict[str, int | str]] = attrs.Factory(dict)  # mount point → fields
    rows: int = 0  # cores and disks, against limits.rows

    def _count(self) -> None:
        self.rows += 1
        if self.rows > self.limits.rows:
            raise OverLimit(f"over {self.limits.rows} CPU, core, memory, disk or chassis rows")

    def add(self, name: str, labels: PageLabels, value: Number | None) -> None:
        if name == "node_cpu_seconds_total":
            core, mode = labels.get("cpu", ""), labels.get("mode", "")
            if value is None or not mode or not (core.isascii() and core.isdigit()):
                return
            if len(core) > 9:  # no machine has a billion cores; int() refuses 4,300 digits
                return
            key = int(core)
            if key not in self.seconds:
                self._count()
                self.seconds[key] = {}
            self.seconds[key][mode] = float(value)
        elif name in _MEMORY:
            if value is not None and (number := bounded_int(round(value))) is not None:
                self.memory[_MEMORY[name]] = number
        elif name in _STORAGE:
            mount = labels.get("mountpoint", "")
            if not mount or value is None or (number := bounded_int(round(value))) is None:
                return
            disk = self.disks.get(mount)
            if disk is None:
                self._count()
                disk = self.disks[mount] = {"fstype": labels.get("fstype", "")}
            disk[_STORAGE[name]] = number
        elif name in _LOADS:
            self.loads[_LOADS[name]] = None if value is None else float(value)
        elif name == "node_uname_info":
            self.nodename = labels.get("nodename", "") or self.nodename
            self.machine = labels.get("machine") or self.machine
        elif name == "node_cpu_info":
            self.cpu_model = self.cpu_model or labels.get("model_name") or None
            package = labels.get("package", "")
            self.packages.add(package)
            if labels.get("core") is not None:
                self.physical.add((package, labels["core"]))

    def rows_of(
        self, host_id: str, instance: str, fallback_hostname: str, state: NodeState
    ) -> dict[str, list[Cpu | Memory | Storage]]:
        """The ``cpus``, ``memory`` and ``storage`` rows (keys as a data line's); ``state``
        is updated to this page's cores."""
        hostname = self.nodename or fallback_hostname
        out: dict[str, list[Cpu | Memory | Storage]] = {"cpus": [], "memory": [], "storage": []}
        if self.seconds or self.cpu_model or any(v is not None for v in self.loads):
            out["cpus"].append(self._cpu(host_id, hostname, instance, state))
        if self.memory:
            out["memory"].append(self._memory(host_id, hostname, instance))
        out["storage"].extend(self._storage(host_id, hostname))
        return out

    def _cpu(self, host_id: str, hostname: str, instance: str, state: NodeState) -> Cpu:
        previous, state.cores = state.cores, {}
        cores: list[CoreUtilization] = []
        busy_sum = total_sum = 0.0
        for core_id in sorted(self.seconds):
            modes = self.seconds[core_id]
            total = sum(modes.values())
            idle = sum(seconds for mode, seconds in modes.items() if mode in _IDLE_MODES)
            state.cores[core_id] = (total, idle)
            before = previous.get(core_id)
            utilization = None
            if before is not None:
                d_total, d_idle = total - before[0], idle - before[1]
                if d_total > 0 and d_idle >= 0 and d_total >= d_idle:
                    utilization = 100.0 * (1.0 - d_idle / d_total)
                    busy_sum += d_total - d_idle
                    total_sum += d_total
            cores.append(CoreUtilization(core_id, "Standard", utilization))
        loads = self.loads
        load_average = None
        if loads[0] is not None and loads[1] is not None and loads[2] is not None:
            load_average = (loads[0], loads[1], loads[2])
        return Cpu(
            host_id=host_id,
            hostname=hostname,
            instance=instance,
            cpu_model=self.cpu_model,
            architecture=self.machine,
            socket_count=len(self.packages) or None,
            total_cores=len(self.physical) or None,
            total_threads=len(self.seconds) or None,
            utilization=100.0 * busy_sum / total_sum if total_sum > 0 else None,
            load_average=load_average,
            per_core_utilization=tuple(cores),
        )

    def _memory(self, host_id: str, hostname: str, instance: str) -> Memory:
        fields = self.memory
        total, available = fields.get("total_bytes"), fields.get("available_bytes")
        free = fields.get("free_bytes")
        buffers, cached = fields.get("buffers_bytes"), fields.get("cached_bytes")
        used = None
        if total is not None and None not in (free, buffers, cached):
            used = total - (free or 0) - (buffers or 0) - (cached or 0)
            used = used if used >= 0 else None
        if used is None and total is not None and available is not None:
            used = max(0, total - available)
        utilization = None
        if total and available is not None:
            utilization = 100.0 * max(0, total - available) / total
        swap_total, swap_free = fields.get("swap_total_bytes"), fields.get("swap_free_bytes")
        swap_used = None
        if swap_total is not None and swap_free is not None:
            swap_used = max(0, swap_total - swap_free)
        return Memory(
            host_id,
            hostname,
            instance,
            total_bytes=total,
            used_bytes=used,
            available_bytes=available,
            free_bytes=free,
            buffers_bytes=buffers,
            cached_bytes=cached,
            swap_total_bytes=swap_total,
            swap_used_bytes=swap_used,
            swap_free_bytes=swap_free,
            utilization=utilization,
        )

    def _storage(self, host_id: str, hostname: str) -> list[Storage]:
        if not self.disks:
            return []
        # Imported here: the local reader's module brings psutil, which a view of remote
        # hosts without node_exporter pages never needs.

        rows: list[Storage] = []
        for mount in sorted(self.disks):
            disk = self.disks[mount]
            if not is_local_fs(str(disk["fstype"]), mount):
                continue
            total, available = disk.get("total_bytes"), disk.get("available_bytes")
            rows.append(
                Storage(
                    host_id,
                    hostname,
                    mount,
                    len(rows),
                    total_bytes=total if isinstance(total, int) else None,
                    available_bytes=available if isinstance(available, int) else None,
                )
            )
        return rows


@attrs.define
class NodeState:
    """One host's node_exporter state across scrapes: (all modes, idle + iowait) seconds of
    each core of its last page."""

    cores: dict[int, tuple[float, float]] = attrs.Factory(dict)


def fold_node(
    samples: Iterable[tuple[str, PageLabels, Number | None]], limits: PageLimits
) -> NodePage:
    """A page's samples (NaN and ±Inf already ``None``) into a :class:`NodePage`."""
    page = NodePage(limits)
    for name, labels, value in samples:
        page.add(name, labels, value)
    return page
