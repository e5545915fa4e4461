"""Pages in the shapes of NVIDIA's dcgm-exporter and Prometheus' node_exporter, written from
one node's rows, for ``allsmi mock --flavor dcgm|node`` (docs/architecture.md §3.6): the
remote reader's path for clusters that already run those exporters, tested without a GPU.

Rules this module obeys:
- dcgm-exporter's page: one series per GPU in each ``DCGM_FI_*`` family, labelled ``gpu``,
  ``UUID``, ``pci_bus_id``, ``device`` (``nvidia0``…), ``modelName``, ``Hostname``,
  ``DCGM_FI_DRIVER_VERSION`` and ``container``/``namespace``/``pod`` (empty strings for a GPU
  no pod holds, as dcgm-exporter prints them). Units are dcgm's: memory in MiB, energy in mJ,
  violation time in µs, PCIe in KB (1024 B). A value the row does not hold (no ``health``, a
  field ``None``, docs/recording-format.md §5.3.3) leaves its series out, as dcgm-exporter
  leaves out fields a GPU does not support; a family without series is left out whole.
  ``DCGM_FI_DEV_XID_ERRORS`` is the last XID (0: none), a gauge.
- Counters the model holds as rates are the page's own: PCIe KB accumulate the rates over the
  time between :meth:`DcgmPage.update` calls, and ``node_cpu_seconds_total`` the per-core
  utilization between :meth:`NodePage.update` calls (split into modes so that
  ``1 - Δ(idle + iowait) / Δtotal`` is that utilization). An update at an instant not after the
  last one moves no counter; rendering never does.
- node_exporter's page: families sorted by name, series by their label values, numbers as Go
  prints them; ``collect[]`` query parameters (:func:`node_collectors`) keep only the named
  collectors' families (an unknown name is an error, as node_exporter answers 400); the
  exporter's own families (``go_*``, ``process_*``, ``node_scrape_collector_*``) are always
  there, and a reader ignores them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Final
from urllib.parse import parse_qs

import attrs

from allsmi.domain.model import CLOCK_EVENT_BITS, Cpu, Gpu, GpuHealth, Memory, Storage

MIB: Final = 1024 * 1024
KB: Final = 1024
DRIVER_VERSION: Final = "550.54.15"
NODE_COLLECTORS: Final = ("cpu", "filesystem", "hwmon", "loadavg", "meminfo", "uname")
# node_cpu_seconds_total's modes: shares of the busy time, and of the rest.
BUSY_MODES: Final = (("user", 0.80), ("system", 0.14), ("nice", 0.02), ("irq", 0.01))
BUSY_MODES_REST: Final = ("softirq", 0.03)
QUIET_MODES: Final = (("idle", 0.99), ("iowait", 0.01))
CPU_MODES: Final = ("idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user")
UPTIME_S: Final = 12 * 86400.0  # at the first update
KERNEL_RELEASE: Final = "6.8.0-45-generic"
KERNEL_VERSION: Final = "#45-Ubuntu SMP PREEMPT_DYNAMIC Fri Aug 30 12:02:04 UTC 2024"

Labels = tuple[tuple[str, str], ...]
Sample = tuple[Labels, str]


@attrs.frozen
class Workload:
    """The Kubernetes pod holding a GPU, as dcgm-exporter's pod attribution labels it."""

    namespace: str
    pod: str
    container: str


NO_WORKLOAD: Final = Workload("", "", "")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def go_float(value: float) -> str:
    """``value`` as Go's ``strconv.FormatFloat(v, 'g', -1, 64)`` writes it (Prometheus'
    client_golang): the shortest digits, an exponent from 1e+06 and below 1e-04."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    sign, digits, exp = Decimal(repr(float(value))).normalize().as_tuple()
    if not isinstance(exp, int):  # NaN and infinities were answered above
        return repr(value)
    text = "".join(map(str, digits))
    point = len(text) + exp  # digits before the decimal point
    x = point - 1
    if x < -4 or x >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        out = f"{mantissa}e{'-' if x < 0 else '+'}{abs(x):02d}"
    elif point <= 0:
        out = "0." + "0" * -point + text
    elif point >= len(text):
        out = text + "0" * (point - len(text))
    else:
        out = text[:point] + "." + text[point:]
    return ("-" if sign else "") + out


def _series(name: str, labels: Labels, value: str) -> str:
    if not labels:
        return f"{name} {value}\n"
    inner = ",".join(f'{key}="{_escape(text)}"' for key, text in labels)
    return f"{name}{{{inner}}} {value}\n"


def _family(name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> str:
    lines = [_series(name, labels, value) for labels, value in samples]
    if not lines:
        return ""
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n" + "".join(lines)


# -- dcgm-exporter


class _GpuCounters:
    """What a dcgm page counts itself for one GPU: PCIe KB and when they were last moved."""

    def __init__(self, t_ms: int) -> None:
        self.t_ms = t_ms
        self.tx_kb = 0.0
        self.rx_kb = 0.0


def _int(value: float | None) -> str | None:
    return None if value is None else str(round(value))


def _throttle_mask(health: GpuHealth) -> str | None:
    if health.clock_events is None:
        return None
    names = set(health.clock_events)
    return str(sum(bit for bit, name in CLOCK_EVENT_BITS if name in names))


def _health(read: Callable[[GpuHealth], float | None]) -> Callable[[Gpu, _GpuCounters], str | None]:
    def value(gpu: Gpu, _: _GpuCounters) -> str | None:
        return None if gpu.health is None else _int(read(gpu.health))

    return value


def _bool(read: Callable[[GpuHealth], bool | None]) -> Callable[[Gpu, _GpuCounters], str | None]:
    def value(gpu: Gpu, _: _GpuCounters) -> str | None:
        flag = None if gpu.health is None else read(gpu.health)
        return None if flag is None else str(int(flag))

    return value


def _mib(value: int | None) -> str | None:
    return None if value is None else str(value // MIB)


def _fb_free(gpu: Gpu) -> str | None:
    if gpu.total_memory is None or gpu.used_memory is None:
        return None
    return str((gpu.total_memory - gpu.used_memory) // MIB)


def _power(gpu: Gpu) -> str | None:
    return None if gpu.power_consumption is None else f"{gpu.power_consumption:f}"


def _memory_temp(gpu: Gpu) -> str | None:
    return None if gpu.temperature is None else str(gpu.temperature + 5)  # HBM runs warmer


def _energy_mj(health: GpuHealth) -> float | None:
    return None if health.energy_j is None else health.energy_j * 1000.0


def _xid(gpu: Gpu, _: _GpuCounters) -> str | None:
    health = gpu.health
    if health is None or health.xid_counts is None:
        return None
    return str(health.last_xid or 0)


def _row(read: Callable[[Gpu], str | None]) -> Callable[[Gpu, _GpuCounters], str | None]:
    return lambda gpu, _: read(gpu)


DcgmValue = Callable[[Gpu, _GpuCounters], str | None]

# (family, type, help, value): dcgm-exporter's default counters and the commonly enabled ones.
# fmt: off
DCGM_FAMILIES: Final[tuple[tuple[str, str, str, DcgmValue], ...]] = (
    ("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz).",
     _health(lambda h: h.sm_clock_mhz)),
    ("DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz).",
     _health(lambda h: h.memory_clock_mhz)),
    ("DCGM_FI_DEV_MEMORY_TEMP", "gauge", "Memory temperature (in C).", _row(_memory_temp)),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).",
     _row(lambda g: _int(g.temperature))),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).", _row(_power)),
    ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter",
     "Total energy consumption since boot (in mJ).", _health(_energy_mj)),
    ("DCGM_FI_DEV_PCIE_TX_THROUGHPUT", "counter",
     "Total number of bytes transmitted through PCIe TX (in KB) via NVML.",
     lambda g, c: None if g.health is None or g.health.pcie_tx_bytes_s is None
     else str(int(c.tx_kb))),
    ("DCGM_FI_DEV_PCIE_RX_THROUGHPUT", "counter",
     "Total number of bytes received through PCIe RX (in KB) via NVML.",
     lambda g, c: None if g.health is None or g.health.pcie_rx_bytes_s is None
     else str(int(c.rx_kb))),
    ("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter", "Total number of PCIe retries.",
     _health(lambda h: h.pcie_replays)),
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).",
     _row(lambda g: _int(g.utilization))),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %).",
     _row(lambda g: _int(g.memory_utilization))),
    ("DCGM_FI_DEV_ENC_UTIL", "gauge", "Encoder utilization (in %).",
     _health(lambda h: h.encoder_utilization)),
    ("DCGM_FI_DEV_DEC_UTIL", "gauge", "Decoder utilization (in %).",
     _health(lambda h: h.decoder_utilization)),
    ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered.", _xid),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB).", _row(_fb_free)),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).",
     _row(lambda g: _mib(g.used_memory))),
    ("DCGM_FI_DEV_VGPU_LICENSE_STATUS", "gauge", "vGPU License status",
     _row(lambda g: "0")),
    ("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "counter",
     "Number of remapped rows for uncorrectable errors",
     _health(lambda h: h.remapped_uncorrectable)),
    ("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "counter",
     "Number of remapped rows for correctable errors",
     _health(lambda h: h.remapped_correctable)),
    ("DCGM_FI_DEV_ROW_REMAP_FAILURE", "gauge", "Whether remapping of rows has failed",
     _bool(lambda h: h.remap_failure)),
    ("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", "gauge", "Current clock throttle reasons.",
     lambda g, _: None if g.health is None else _throttle_mask(g.health)),
    ("DCGM_FI_DEV_POWER_VIOLATION", "counter",
     "Throttling duration due to power constraints (in us).",
     _health(lambda h: h.power_violation_us)),
    ("DCGM_FI_DEV_THERMAL_VIOLATION", "counter",
     "Throttling duration due to thermal constraints (in us).",
     _health(lambda h: h.thermal_violation_us)),
    ("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "counter",
     "Total number of single-bit volatile ECC errors.", _health(lambda h: h.ecc_corrected)),
    ("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "counter",
     "Total number of double-bit volatile ECC errors.", _health(lambda h: h.ecc_uncorrected)),
)
# fmt: on


class DcgmPage:
    """One node's dcgm-exporter page. :meth:`update` with the node's GPU rows at each
    instant (it moves the page's own counters), :meth:`render` the page of the last update.
    ``workloads``: the pod holding each GPU, by GPU index (others: no pod)."""

    def __init__(
        self, workloads: Mapping[int, Workload] | None = None, driver: str = DRIVER_VERSION
    ) -> None:
        self.workloads = dict(workloads or {})
        self.driver = driver
        self.gpus: tuple[Gpu, ...] = ()
        self._counters: dict[str, _GpuCounters] = {}

    def update(self, gpus: Sequence[Gpu], t_ms: int) -> None:
        self.gpus = tuple(gpus)
        for gpu in self.gpus:
            counters = self._counters.get(gpu.uuid)
            if counters is None:
                self._counters[gpu.uuid] = _GpuCounters(t_ms)
                continue
            if t_ms <= counters.t_ms:
                continue
            seconds = (t_ms - counters.t_ms) / 1000.0
            health = gpu.health
            if health is not None:
                counters.tx_kb += (health.pcie_tx_bytes_s or 0.0) * seconds / KB
                counters.rx_kb += (health.pcie_rx_bytes_s or 0.0) * seconds / KB
            counters.t_ms = t_ms

    def labels(self, index: int, gpu: Gpu) -> Labels:
        work = self.workloads.get(index, NO_WORKLOAD)
        return (
            ("gpu", str(index)),
            ("UUID", gpu.uuid),
            ("pci_bus_id", f"00000000:{0x18 + 0x10 * index:02X}:00.0"),
            ("device", f"nvidia{index}"),
            ("modelName", gpu.name),
            ("Hostname", gpu.hostname),
            ("DCGM_FI_DRIVER_VERSION", self.driver),
            ("container", work.container),
            ("namespace", work.namespace),
            ("pod", work.pod),
        )

    def render(self) -> bytes:
        rows = [
            (self.labels(i, gpu), gpu, self._counters[gpu.uuid]) for i, gpu in enumerate(self.gpus)
        ]
        parts = []
        for name, kind, help_text, read in DCGM_FAMILIES:
            samples: list[Sample] = []
            for labels, gpu, counters in rows:
                value = read(gpu, counters)
                if value is not None:
                    samples.append((labels, value))
            parts.append(_family(name, kind, help_text, samples))
        return "".join(parts).encode()


# -- node_exporter


def node_collectors(query: str) -> frozenset[str] | None:
    """The collectors a node_exporter query asks for with ``collect[]`` (None: all of them);
    ValueError naming an unknown one."""
    wanted = parse_qs(query, keep_blank_values=True).get("collect[]")
    if not wanted:
        return None
    for name in wanted:
        if name not in NODE_COLLECTORS:
            raise ValueError(f"couldn't create filtered metrics handler: missing collector: {name}")
    return frozenset(wanted)


def _mode_shares(busy: float) -> dict[str, float]:
    """Each mode's share of a core's time at ``busy`` (0..1): the busy modes sum to ``busy``,
    idle and iowait to the rest."""
    shares = {mode: busy * share for mode, share in BUSY_MODES}
    shares[BUSY_MODES_REST[0]] = busy * BUSY_MODES_REST[1]
    shares.update({mode: (1.0 - busy) * share for mode, share in QUIET_MODES})
    shares["steal"] = 0.0
    return shares


_FILESYSTEMS: Final = {"/": ("/dev/nvme0n1p2", "ext4"), "/raid": ("/dev/md0", "xfs")}
# Mounted on every node and skipped by a reader (tmpfs), with their sizes.
_TMPFS: Final = (("/run", 26 * 1024**3), ("/dev/shm", 1024**4))


class NodePage:
    """One node's node_exporter page: :meth:`update` with the node's CPU, memory and storage
    rows at each instant (it moves the CPU counters), :meth:`render` the last update's page."""

    def __init__(self, hostname: str, uptime_s: float = UPTIME_S) -> None:
        self.hostname = hostname
        self.uptime_s = uptime_s
        self.cpu: Cpu | None = None
        self.memory: Memory | None = None
        self.storage: tuple[Storage, ...] = ()
        self.cpu_seconds: dict[int, dict[str, float]] = {}  # by core, by mode
        self.t_ms: int | None = None

    def update(
        self, cpus: Sequence[Cpu], memory: Sequence[Memory], storage: Sequence[Storage], t_ms: int
    ) -> None:
        self.cpu = cpus[0] if cpus else None
        self.memory = memory[0] if memory else None
        self.storage = tuple(storage)
        if self.t_ms is not None and t_ms <= self.t_ms:
            return
        seconds = self.uptime_s if self.t_ms is None else (t_ms - self.t_ms) / 1000.0
        self.t_ms = t_ms
        for core in self.cpu.per_core_utilization if self.cpu else ():
            totals = self.cpu_seconds.setdefault(core.core_id, dict.fromkeys(CPU_MODES, 0.0))
            for mode, share in _mode_shares((core.utilization or 0.0) / 100.0).items():
                totals[mode] += share * seconds

    def render(self, collectors: Collection[str] | None = None) -> bytes:
        wanted = NODE_COLLECTORS if collectors is None else tuple(sorted(collectors))
        families: list[tuple[str, str]] = []  # (name, text)
        makers: dict[str, Callable[[], list[tuple[str, str]]]] = {
            "cpu": self._cpu,
            "filesystem": self._filesystem,
            "hwmon": self._hwmon,
            "loadavg": self._loadavg,
            "meminfo": self._meminfo,
            "uname": self._uname,
        }
        for name in wanted:
            families.extend(makers[name]())
        families.extend(self._own(wanted))
        families.sort(key=lambda family: family[0])
        return "".join(text for _, text in families).encode()

    @staticmethod
    def _one(name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> tuple[str, str]:
        ordered = sorted(samples, key=lambda sample: tuple(v for _, v in sample[0]))
        return name, _family(name, kind, help_text, ordered)

    def _cpu(self) -> list[tuple[str, str]]:
        cpu = self.cpu
        if cpu is None:
            return []
        seconds = [
            ((("cpu", str(core)), ("mode", mode)), go_float(round(value, 2)))
            for core, modes in self.cpu_seconds.items()
            for mode, value in modes.items()
        ]
        guest = [
            ((("cpu", str(core)), ("mode", mode)), "0")
            for core in self.cpu_seconds
            for mode in ("nice", "user")
        ]
        sockets = max(cpu.socket_count or 1, 1)
        per_socket = max(len(self.cpu_seconds) // sockets, 1)
        info = [
            (
                (
                    ("cachesize", "1024 KB"),
                    ("core", str(core % per_socket)),
                    ("cpu", str(core)),
                    ("family", "25"),
                    ("microcode", "0xa101148"),
                    ("model", "17"),
                    ("model_name", cpu.cpu_model or ""),
                    ("package", str(core // per_socket)),
                    ("stepping", "1"),
                    ("vendor", "AuthenticAMD"),
                ),
                "1",
            )
            for core in self.cpu_seconds
        ]
        return [
            self._one(
                "node_cpu_seconds_total",
                "counter",
                "Seconds the CPUs spent in each mode.",
                seconds,
            ),
            self._one(
                "node_cpu_guest_seconds_total",
                "counter",
                "Seconds the CPUs spent in guests (VMs) for each mode.",
                guest,
            ),
            self._one("node_cpu_info", "gauge", "CPU information from /proc/cpuinfo.", info),
        ]

    def _loadavg(self) -> list[tuple[str, str]]:
        load = self.cpu.load_average if self.cpu else None
        if load is None:
            return []
        return [
            self._one(
                f"node_load{minutes}", "gauge", f"{minutes}m load average.", [((), go_float(v))]
            )
            for minutes, v in zip((1, 5, 15), load, strict=True)
        ]

    def _meminfo(self) -> list[tuple[str, str]]:
        mem = self.memory
        if mem is None:
            return []
        used = mem.used_bytes or 0
        fields = (
            ("MemTotal", mem.total_bytes),
            ("MemFree", mem.free_bytes),
            ("MemAvailable", mem.available_bytes),
            ("Buffers", mem.buffers_bytes),
            ("Cached", mem.cached_bytes),
            ("SwapTotal", mem.swap_total_bytes),
            ("SwapFree", mem.swap_free_bytes),
            ("Active", used * 3 // 5),  # a reader ignores these
            ("Dirty", 48 * MIB),
        )
        return [
            self._one(
                f"node_memory_{field}_bytes",
                "gauge",
                f"Memory information field {field}_bytes.",
                [((), go_float(float(value)))],
            )
            for field, value in fields
            if value is not None
        ]

    def _filesystem(self) -> list[tuple[str, str]]:
        mounts: list[tuple[Labels, float, float]] = []
        for row in self.storage:
            device, fstype = _FILESYSTEMS.get(row.mount_point, (f"/dev/nvme{row.index}n1", "ext4"))
            if row.total_bytes is None or row.available_bytes is None:
                continue
            labels = (("device", device), ("fstype", fstype), ("mountpoint", row.mount_point))
            mounts.append((labels, float(row.total_bytes), float(row.available_bytes)))
        for mount, size in _TMPFS:
            labels = (("device", "tmpfs"), ("fstype", "tmpfs"), ("mountpoint", mount))
            mounts.append((labels, float(size), float(size) * 0.99))
        return [
            self._one(
                "node_filesystem_size_bytes",
                "gauge",
                "Filesystem size in bytes.",
                [(labels, go_float(size)) for labels, size, _ in mounts],
            ),
            self._one(
                "node_filesystem_avail_bytes",
                "gauge",
                "Filesystem space available to non-root users in bytes.",
                [(labels, go_float(avail)) for labels, _, avail in mounts],
            ),
            self._one(
                "node_filesystem_free_bytes",
                "gauge",
                "Filesystem free space in bytes.",
                [(labels, go_float(avail)) for labels, _, avail in mounts],
            ),
            self._one(
                "node_filesystem_readonly",
                "gauge",
                "Filesystem read-only status.",
                [(labels, "0") for labels, _, _ in mounts],
            ),
        ]

    def _uname(self) -> list[tuple[str, str]]:
        labels = (
            ("domainname", "(none)"),
            ("machine", (self.cpu.architecture if self.cpu else None) or "x86_64"),
            ("nodename", self.hostname),
            ("release", KERNEL_RELEASE),
            ("sysname", "Linux"),
            ("version", KERNEL_VERSION),
        )
        return [
            self._one(
                "node_uname_info",
                "gauge",
                "Labeled system information as provided by the uname system call.",
                [(labels, "1")],
            )
        ]

    def _hwmon(self) -> list[tuple[str, str]]:
        sockets = self.cpu.per_socket_info if self.cpu else ()
        chips = [(f"pci0000:00_0000:00:{0x18 + s.socket_id:02x}_3", s) for s in sockets]
        return [
            self._one(
                "node_hwmon_temp_celsius",
                "gauge",
                "Hardware monitor for temperature (input)",
                [
                    ((("chip", chip), ("sensor", "temp1")), go_float(float(s.temperature)))
                    for chip, s in chips
                    if s.temperature is not None
                ],
            ),
            self._one(
                "node_hwmon_chip_names",
                "gauge",
                "Annotation metric for human-readable chip names",
                [((("chip", chip), ("chip_name", "k10temp")), "1") for chip, _ in chips],
            ),
        ]

    def _own(self, collectors: Sequence[str]) -> list[tuple[str, str]]:
        """The exporter's own families, which a reader ignores."""
        pauses = (("0", 2.1e-05), ("0.25", 3.4e-05), ("0.5", 4.1e-05), ("0.75", 5.6e-05))
        gc = "".join(
            _series("go_gc_duration_seconds", (("quantile", q),), go_float(v))
            for q, v in (*pauses, ("1", 0.000212))
        )
        gc += _series("go_gc_duration_seconds_sum", (), "0.1375")
        gc += _series("go_gc_duration_seconds_count", (), "4125")
        gc_help = "# HELP go_gc_duration_seconds A summary of the pause duration of GC cycles.\n"
        gc_type = "# TYPE go_gc_duration_seconds summary\n"
        return [
            ("go_gc_duration_seconds", gc_help + gc_type + gc),
            self._one(
                "go_goroutines", "gauge", "Number of goroutines that currently exist.", [((), "9")]
            ),
            self._one(
                "node_exporter_build_info",
                "gauge",
                "A metric with a constant '1' value labeled by version, revision, branch, "
                "goversion from which node_exporter was built, and the goos and goarch for the "
                "build.",
                [
                    (
                        (
                            ("branch", "HEAD"),
                            ("goarch", "amd64"),
                            ("goos", "linux"),
                            ("goversion", "go1.22.5"),
                            ("revision", "0000000"),
                            ("tags", "unknown"),
                            ("version", "1.8.2"),
                        ),
                        "1",
                    )
                ],
            ),
            self._one(
                "node_scrape_collector_success",
                "gauge",
                "node_exporter: Whether a collector succeeded.",
                [((("collector", name),), "1") for name in collectors],
            ),
            self._one(
                "node_scrape_collector_duration_seconds",
                "gauge",
                "node_exporter: Duration of a collector scrape.",
                [((("collector", name),), "0.000125") for name in collectors],
            ),
            self._one(
                "process_start_time_seconds",
                "gauge",
                "Start time of the process since unix epoch in seconds.",
                [((), go_float(1.7e9))],
            ),
        ]
