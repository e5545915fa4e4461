"""A seeded model of GPU nodes (docs/architecture.md §3.6): the one simulator behind
``mock`` and ``demo``.

Rules this module obeys:
- Deterministic: every node owns a ``random.Random`` seeded from ``(seed, node index)``, so the
  same spec and the same sequence of :meth:`ClusterSimulator.advance` calls give equal frames,
  and nodes do not disturb each other's streams. Reading never draws from a generator.
- Time is an input: :meth:`~ClusterSimulator.advance` takes ``dt_ms``; readings take the
  simulated ``t_ms`` (ms since the epoch) only to decide which incidents apply.
- Ranges and formats follow all-smi's mock server: utilization
  walks ±5 per 3 s clamped to 0–100 and is written with 2 decimals, memory drifts ±3 GiB,
  power is idle + load + memory + per-GPU bias + noise clamped to 80 W–TDP with 3 decimals,
  temperature follows power clamped to 35–85 °C, frequency is 1200 + 6·util ± 100 clamped to
  1000–1980 MHz, disks are 1, 4 or 12 TiB and drift ±1 GiB. CPU cores are shown in whole
  percents (their rows are then shared, not built), temperatures in whole °C.

Theory of operation: ``advance`` steps each node's walks (a node-wide "job" level that the
node's GPUs follow with their own noise, per-core CPU load, host memory, disks, process CPU
time) and stores the rounded readings. Rows are built from those readings on first use and
kept until the next ``advance``, so serving one state many times is cheap. An incident does
not touch the walks: ``gpu_idle`` is applied when rows are built, as a function of the time
since it started (and, for the recovery, since it ended), so it is exact for any ``t_ms``.

Health signals (docs/recording-format.md §5.3.3), only with ``ClusterSpec.health``: each GPU
row then carries a ``GpuHealth``. Its walks draw from a second generator per node, so turning
health on leaves every other reading as it was, and with health off nothing of it runs (rows,
recordings and benches stay byte for byte as before). Clocks and the clock event reasons follow
the shown readings: ``gpu_idle`` while a GPU is idle, a transient ``sw_power_cap`` (a quarter of
the steps near the board power, never for long), nothing otherwise. ECC, remap and PCIe replay
counters stay 0. Energy and the power-cap violation time are integrated at each reading of the
node's GPUs, from the power shown then, over the time since the node's previous reading (a meter
read at that instant): the same advances and the same reading instants give the same counters.
A ``throttle`` incident (one GPU or all of a host's, over ``[start_ms, end_ms)``) sets
``hw_slowdown`` and ``sw_thermal``, halves utilization, power and clocks, and grows the thermal
violation time by exactly the time spent inside it; an ``xid`` incident (one GPU, at
``start_ms``) counts its code in ``xid_counts`` from then on and is the ``last_xid`` until a
later one. Throttle and XID incidents need ``health``.

NVLink topology (docs/recording-format.md §5.3.1), only with ``ClusterSpec.nvlink``: every GPU
of an SXM board lists its links, all active and to NVSwitches, as an HGX board wires them (18
links per GPU on B200, H200 and H100, 12 on A100; none on PCIe boards such as L40), with no
bandwidth (the NVML reader reads none). The links are one tuple shared by every row, drawn from
no generator: turning it on changes nothing else, and with it off rows stay byte for byte as
before.
"""

from __future__ import annotations

import ipaddress
import math
import random
import re
from collections.abc import Callable, Iterable
from itertools import chain
from typing import Final, Literal, NamedTuple, TypeVar

import attrs

from allsmi.domain.model import (
    CLOCK_EVENT_BITS,
    DEFAULT_SECTIONS,
    SECTION_TABLE,
    SECTIONS,
    Chassis,
    CoreUtilization,
    Cpu,
    CpuSocket,
    Fan,
    Frame,
    Gpu,
    GpuHealth,
    GpuProcess,
    Memory,
    NvLinkRemoteDevice,
    Psu,
    Row,
    Storage,
)
from allsmi.domain.parse import format_elapsed
from allsmi.domain.sections import build_frame

GIB: Final = 1024**3
TIB: Final = 1024**4
STEP_MS: Final = 3000  # all-smi's mock updates every 3 s; walk step sizes are per 3 s
DRIVER_VERSION: Final = "550.54.15"
CUDA_VERSION: Final = "12.4"

IDLE_UTIL_MAX: Final = 2.0  # percent, a GPU whose job hung or died
IDLE_POWER_W: Final = (70.0, 90.0)  # W, an idle H200 at its floor
COOL_TEMP_C: Final = 35.0  # °C, where an idle GPU settles (all-smi's lower clamp)
THERMAL_TAU_MS: Final = 60_000  # temperature lag behind power
RECOVERY_TAU_MS: Final = 20_000  # a restarted job ramps back up
RECOVERY_SPAN_MS: Final = 300_000  # after this the incident no longer shows
BASE_POWER_W: Final = 350.0  # W, a node's CPUs, fans, NICs and drives around its GPUs
CPU_BASE_MHZ: Final = 3250  # MHz, EPYC 9354
CPU_MAX_MHZ: Final = 3800  # MHz
# Health (docs/recording-format.md §5.3.3), only with ClusterSpec.health.
THROTTLE_SHARE: Final = 0.5  # a throttled GPU's utilization, power and clocks, of the walk's
POWER_CAP_SHARE: Final = 0.97  # of the board power, where a transient sw_power_cap may show
POWER_CAP_CHANCE: Final = 0.25  # per step near the board power: it never lasts long
PCIE_RX_B_S: Final = (0.3e9, 6.0e9)  # B/s host→GPU, idle and at full load
PCIE_TX_SHARE: Final = 0.35  # GPU→host, of the received rate
UPTIME_S: Final = 14 * 86400.0  # since the driver loaded, for the energy counter's start

# (substring of the name, board power W, CUDA cores); the first match wins.
_GPU_BOARDS: Final = (
    ("B200", 1000.0, None),
    ("H200", 700.0, 16896),
    ("H100", 700.0, 16896),
    ("A100", 400.0, 6912),
    ("L40", 300.0, 18176),
)
_EPYC_BY_CORES: Final = {16: "9124", 24: "9254", 32: "9354", 48: "9454", 64: "9554", 96: "9654"}
_USERS: Final = ("inureyes", "yeonji", "mira", "root")  # all-smi's mock pool
_COMMANDS: Final = (
    "torchrun --nproc_per_node=8 pretrain.py --config configs/llama3-8b.yaml",
    "python train.py --model gpt-neox-20b --batch-size 32 --bf16",
    "deepspeed --num_gpus 8 train_sft.py --zero-stage 3",
    "python -m vllm.entrypoints.openai.api_server --model meta-llama/Llama-3.1-70B-Instruct",
    "python -m sglang.launch_server --model-path Qwen/Qwen2.5-72B-Instruct --tp 8",
    "python finetune.py --base mistral-7b --lora-r 16 --epochs 3",
)
_SIDE_COMMANDS: Final = ("python eval.py --shard 0", "jupyter-lab --no-browser --port 8888")
# (substring of the name, NVLinks per GPU to the board's NVSwitches); the first match wins,
# none on any other board (PCIe).
_NVLINKS: Final = (("B200", 18), ("H200", 18), ("H100", 18), ("A100", 12))
# (substring of the name, memory clock MHz); the first match wins, else the last entry's.
_MEMORY_CLOCKS: Final = (("B200", 3996), ("H200", 3201), ("A100", 1593), ("L40", 9001), ("", 2619))
_FANS: Final = 6
_PSUS: Final = 4
_DISKS: Final = (("/", (1, 4)), ("/raid", (4, 12)))  # mount, sizes in TiB to pick from

IncidentKind = Literal["gpu_idle", "host_down", "throttle", "xid"]
INCIDENT_KINDS: Final = ("gpu_idle", "host_down", "throttle", "xid")
HEALTH_INCIDENTS: Final = ("throttle", "xid")  # they need ClusterSpec.health


@attrs.frozen
class Incident:
    """A scripted fault on one node over ``[start_ms, end_ms)``; ``end_ms=None``: forever.
    ``throttle``: on GPU ``gpu_index`` (None: every GPU of the host); ``xid``: code ``xid`` on
    GPU ``gpu_index`` at ``start_ms``, an instant (``end_ms`` None)."""

    host_index: int = attrs.field(validator=attrs.validators.ge(0))
    start_ms: int
    end_ms: int | None = attrs.field()
    kind: IncidentKind = attrs.field(validator=attrs.validators.in_(INCIDENT_KINDS))
    gpu_index: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.ge(0))
    )
    xid: int | None = attrs.field(default=None)

    @end_ms.validator
    def _after_start(self, _: attrs.Attribute[int | None], value: int | None) -> None:
        if value is not None and value <= self.start_ms:
            raise ValueError(f"incident end_ms {value} is not after start_ms {self.start_ms}")

    @xid.validator
    def _xid_fits_kind(self, _: attrs.Attribute[int | None], value: int | None) -> None:
        if self.kind != "xid":
            if value is not None:
                raise ValueError(f"a {self.kind} incident has no XID code")
            if self.gpu_index is not None and self.kind != "throttle":
                raise ValueError(f"a {self.kind} incident takes the whole host, not one GPU")
            return
        if value is None or value < 1:
            raise ValueError(f"an xid incident needs a positive XID code, not {value}")
        if self.gpu_index is None or self.end_ms is not None:
            raise ValueError("an xid incident is an instant on one GPU (gpu_index, no end_ms)")

    def gpus(self, count: int) -> range:
        """The GPU indices it strikes, of ``count``."""
        return range(count) if self.gpu_index is None else range(self.gpu_index, self.gpu_index + 1)

    def covers(self, t_ms: int, tail_ms: int = 0) -> bool:
        """Whether ``t_ms`` is inside the incident, or within ``tail_ms`` after its end."""
        return self.start_ms <= t_ms and (self.end_ms is None or t_ms < self.end_ms + tail_ms)


def gpu_memory_from_name(name: str) -> int:
    """Bytes from the name's ``NNGB`` token (``… H200 141GB HBM3`` → 141e9), else 24 GB."""
    match = re.search(r"(\d+)\s*GB", name, re.IGNORECASE)
    return int(match.group(1)) * 10**9 if match else 24 * 10**9


def _default_memory(spec: ClusterSpec) -> int:
    return gpu_memory_from_name(spec.gpu_name)


def spread_address(index: int) -> str:
    """The loopback address of node ``index`` of a spread mock cluster: 127.0.0.2, 127.0.0.3…
    (Linux answers on all of 127.0.0.0/8), so each node is a host of its own, as in a real
    cluster where every node serves the same port."""
    return str(ipaddress.IPv4Address("127.0.0.2") + index)


@attrs.frozen
class ClusterSpec:
    """What to simulate. Host ids are ``node-01``… or, with ``base_port``, the loopback
    ``127.0.0.1:PORT`` targets of ``allsmi mock`` with all-smi's ``node-0001`` hostnames.
    ``gpu_memory_bytes`` defaults to the name's ``NNGB`` token, as all-smi's mock does."""

    nodes: int = attrs.field(default=4, validator=attrs.validators.ge(1))
    gpus_per_node: int = attrs.field(default=8, validator=attrs.validators.ge(1))
    gpu_name: str = "NVIDIA H200 141GB HBM3"
    gpu_memory_bytes: int = attrs.field(
        default=attrs.Factory(_default_memory, takes_self=True),
        validator=attrs.validators.gt(0),
    )
    cores_per_node: int = attrs.field(default=64, validator=attrs.validators.ge(2))
    memory_bytes: int = attrs.field(default=2 * TIB, validator=attrs.validators.gt(0))
    seed: int = 0
    incidents: tuple[Incident, ...] = attrs.field(default=())
    host_prefix: str = "node"
    base_port: int | None = attrs.field(default=None)
    spread: bool = False  # with base_port: node i at spread_address(i):base_port
    health: bool = False  # GPU rows carry GpuHealth (docs/recording-format.md §5.3.3)
    nvlink: bool = False  # GPU rows list their NVLinks (docs/recording-format.md §5.3.1)

    @incidents.validator
    def _on_known_hosts(self, _: attrs.Attribute[tuple[Incident, ...]], value: object) -> None:
        for incident in self.incidents:
            if incident.host_index >= self.nodes:
                raise ValueError(f"incident on host {incident.host_index} of {self.nodes}")
            gpu = incident.gpu_index
            if gpu is not None and gpu >= self.gpus_per_node:
                raise ValueError(f"incident on GPU {gpu} of {self.gpus_per_node}")
            if incident.kind in HEALTH_INCIDENTS and not self.health:
                raise ValueError(f"a {incident.kind} incident needs health=True")

    @base_port.validator
    def _ports_fit(self, _: attrs.Attribute[int | None], value: int | None) -> None:
        top = 65535 if self.spread else 65536 - self.nodes
        if value is not None and not 1 <= value <= top:
            raise ValueError(f"ports {value}..{value + self.nodes - 1} are not all valid")

    def host_id(self, index: int) -> str:
        if self.base_port is None:
            return f"{self.host_prefix}-{index + 1:02d}"
        if self.spread:
            return f"{spread_address(index)}:{self.base_port}"
        return f"127.0.0.1:{self.base_port + index}"

    def hostname(self, index: int) -> str:
        if self.base_port is None:
            return self.host_id(index)
        return f"node-{index + 1:04d}"  # all-smi's mock names its nodes so


@attrs.frozen
class NodeReading:
    """The rows one node answers with at one instant (every section, named as in Frame)."""

    host_id: str
    hostname: str
    gpus: tuple[Gpu, ...]
    cpus: tuple[Cpu, ...]
    memory: tuple[Memory, ...]
    chassis: tuple[Chassis, ...]
    processes: tuple[GpuProcess, ...]
    storage: tuple[Storage, ...]

    def rows(self) -> dict[str, tuple[Row, ...]]:
        """Every section's rows by name: :func:`~allsmi.domain.sections.build_frame`'s input."""
        return {s.name: getattr(self, s.attr) for s in SECTION_TABLE}


class _Idle(NamedTuple):
    """Where a ``gpu_idle`` incident stands at one instant."""

    since_start_ms: int
    since_end_ms: int | None  # None while the incident lasts


class _At(NamedTuple):
    """What bends a node's readings at one instant."""

    t_ms: int
    idle: _Idle | None
    throttled: frozenset[int]  # GPU indices inside a throttle incident

    @property
    def bent(self) -> bool:
        return self.idle is not None or bool(self.throttled)


_NONE: Final[frozenset[int]] = frozenset()


class _GpuShown(NamedTuple):
    """Per-GPU readings as shown (rounded), parallel lists."""

    util: list[float]
    power: list[float]
    temp: list[int]
    freq: list[int]


_T = TypeVar("_T", int, float)


def _clamp(value: _T, low: _T, high: _T) -> _T:
    return low if value < low else high if value > high else value


def _ease(dt_ms: int, tau_ms: float) -> float:
    """The share of a gap closed in ``dt_ms`` by a first-order lag of time constant ``tau_ms``."""
    return 1.0 - math.exp(-dt_ms / tau_ms)


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"GPU-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class _Board(NamedTuple):
    tdp_w: float
    cores: int | None


def _board(name: str) -> _Board:
    for token, tdp, cores in _GPU_BOARDS:
        if token in name.upper():
            return _Board(tdp, cores)
    return _Board(700.0, None)


def _throttled(shown: _GpuShown, gpus: frozenset[int]) -> _GpuShown:
    """``shown`` with the GPUs in ``gpus`` held down by a throttle incident."""
    out = _GpuShown(list(shown.util), list(shown.power), list(shown.temp), list(shown.freq))
    for i in gpus:
        out.util[i] = round(shown.util[i] * THROTTLE_SHARE, 2)
        out.power[i] = round(max(shown.power[i] * THROTTLE_SHARE, IDLE_POWER_W[0]), 3)
        out.freq[i] = round(shown.freq[i] * THROTTLE_SHARE)
    return out


def _inside_ms(incident: Incident, t_ms: int) -> int:
    """How long of ``incident`` has passed by ``t_ms``."""
    end = t_ms if incident.end_ms is None else min(t_ms, incident.end_ms)
    return max(0, end - incident.start_ms)


def _frequency(util: float, noise: float) -> int:
    return round(_clamp(1200.0 + 6.0 * util + noise, 1000.0, 1980.0))


def _cpu_mhz(util: float) -> int:
    """Boost clock falls as more cores are busy; whole 10 MHz like sysfs shows."""
    return int(round(CPU_MAX_MHZ - 4.5 * util, -1))


class _Shared(NamedTuple):
    """Facts common to all nodes, built once; rows share these objects by reference."""

    board: _Board
    incidents: tuple[tuple[Incident, ...], ...]  # by node index
    details: tuple[dict[str, str], ...]  # by GPU index
    chassis_detail: dict[str, str]
    cpu_model: str
    links: tuple[NvLinkRemoteDevice, ...]  # every GPU's, () without ClusterSpec.nvlink
    # Per-core rows by [core_id][whole percent]: cores are shown as whole percents, so the
    # 64 rows of every node in every frame are picked from here instead of built.
    core_rows: tuple[tuple[CoreUtilization, ...], ...]


def _shared(spec: ClusterSpec) -> _Shared:
    per_socket = spec.cores_per_node // 2
    number = _EPYC_BY_CORES.get(per_socket, "9004")
    return _Shared(
        board=_board(spec.gpu_name),
        incidents=tuple(
            tuple(i for i in spec.incidents if i.host_index == n) for n in range(spec.nodes)
        ),
        details=tuple(
            {"driver_version": DRIVER_VERSION, "cuda_version": CUDA_VERSION, "index": str(g)}
            for g in range(spec.gpus_per_node)
        ),
        chassis_detail={
            "Vendor": "allsmi simulator",
            "Product Name": f"{spec.gpus_per_node}x {spec.gpu_name}",
            "platform": "nvidia",
        },
        cpu_model=f"AMD EPYC {number} {per_socket}-Core Processor",
        links=_links(spec),
        core_rows=tuple(
            tuple(CoreUtilization(core_id=c, utilization=float(u)) for u in range(101))
            for c in range(spec.cores_per_node)
        ),
    )


def _links(spec: ClusterSpec) -> tuple[NvLinkRemoteDevice, ...]:
    if not spec.nvlink:
        return ()
    count = next((n for key, n in _NVLINKS if key in spec.gpu_name), 0)
    return tuple(NvLinkRemoteDevice(link, "switch", state="active") for link in range(count))


class _Health:
    """One node's health walks and meters (the module docstring's rules)."""

    def __init__(self, spec: ClusterSpec, index: int, tdp_w: float) -> None:
        rng = self.rng = random.Random(f"allsmi-sim-health:{spec.seed}:{index}")
        n, name = spec.gpus_per_node, spec.gpu_name.upper()
        self.tdp_w = tdp_w
        self.memory_clock = next(mhz for token, mhz in _MEMORY_CLOCKS if token in name)
        self.capped = [False] * n  # sw_power_cap in this step
        self.pcie_jitter = [1.0] * n
        self.energy_j = [UPTIME_S * rng.uniform(0.4, 0.6) * tdp_w for _ in range(n)]
        self.power_cap_us = [0] * n
        self.read_ms: int | None = None  # the meters' last reading

    def step(self, shown: _GpuShown) -> None:
        rng, near_cap = self.rng, POWER_CAP_SHARE * self.tdp_w
        for i, power in enumerate(shown.power):
            self.capped[i] = power >= near_cap and rng.random() < POWER_CAP_CHANCE
            self.pcie_jitter[i] = rng.uniform(0.8, 1.2)

    def read(self, node: _Node, at: _At, shown: _GpuShown) -> tuple[GpuHealth, ...]:
        """Every GPU's health at ``at.t_ms``; advances the meters to it (never back)."""
        t_ms, n = at.t_ms, len(shown.util)
        idle = [u <= IDLE_UTIL_MAX for u in shown.util]
        capped = [c and not idle[i] and i not in at.throttled for i, c in enumerate(self.capped)]
        if self.read_ms is None or t_ms > self.read_ms:
            dt_ms = 0 if self.read_ms is None else t_ms - self.read_ms
            for i, power in enumerate(shown.power):
                self.energy_j[i] += power * dt_ms / 1000.0
                self.power_cap_us[i] += dt_ms * 1000 if capped[i] else 0
            self.read_ms = t_ms
        incidents = node.shared.incidents[node.index]
        throttles = [i for i in incidents if i.kind == "throttle" and i.start_ms < t_ms]
        xids = sorted(
            (i for i in incidents if i.kind == "xid" and i.start_ms <= t_ms),
            key=lambda incident: incident.start_ms,
        )
        low, high = PCIE_RX_B_S
        rows = []
        for g in range(n):
            names = {"gpu_idle"} if idle[g] else set()
            if capped[g]:
                names.add("sw_power_cap")
            if g in at.throttled:
                names.update(("hw_slowdown", "sw_thermal"))
            thermal_ms = sum(_inside_ms(i, t_ms) for i in throttles if g in i.gpus(n))
            counts: dict[str, int] = {}
            last: Incident | None = None
            for incident in xids:
                if incident.gpu_index == g:
                    code = str(incident.xid)
                    counts[code] = counts.get(code, 0) + 1
                    last = incident
            rx = (low + (high - low) * shown.util[g] / 100.0) * self.pcie_jitter[g]
            rows.append(
                GpuHealth(
                    clock_events=tuple(name for _, name in CLOCK_EVENT_BITS if name in names),
                    sm_clock_mhz=shown.freq[g],
                    memory_clock_mhz=self.memory_clock,
                    power_violation_us=self.power_cap_us[g],
                    thermal_violation_us=thermal_ms * 1000,
                    ecc_corrected=0,
                    ecc_uncorrected=0,
                    remapped_correctable=0,
                    remapped_uncorrectable=0,
                    remap_pending=False,
                    remap_failure=False,
                    pcie_tx_bytes_s=float(round(rx * PCIE_TX_SHARE)),
                    pcie_rx_bytes_s=float(round(rx)),
                    pcie_replays=0,
                    encoder_utilization=0.0,
                    decoder_utilization=0.0,
                    energy_j=round(self.energy_j[g], 3),
                    xid_counts=counts,
                    last_xid=None if last is None else last.xid,
                    last_xid_ms=None if last is None else last.start_ms,
                )
            )
        return tuple(rows)


class _Node:
    """One node: its walks, its latest readings, and the rows built from them."""

    def __init__(self, spec: ClusterSpec, index: int, shared: _Shared) -> None:
        self.spec, self.index, self.shared = spec, index, shared
        self.host_id, self.hostname = spec.host_id(index), spec.hostname(index)
        rng = self.rng = random.Random(f"allsmi-sim:{spec.seed}:{index}")
        n, total = spec.gpus_per_node, spec.gpu_memory_bytes
        # Static facts are drawn first, so they depend on the seed and the node only.
        self.uuids = [_uuid(rng) for _ in range(n)]
        self.bias_w = [rng.uniform(-15.0, 15.0) for _ in range(n)]
        self.mem_ratio = [rng.uniform(0.45, 0.7) for _ in range(n)]
        self.disks = [(mount, rng.choice(sizes) * TIB) for mount, sizes in _DISKS]
        self.fan_trim = [rng.randrange(-150, 151, 10) for _ in range(_FANS)]
        self.user, self.command = rng.choice(_USERS), rng.choice(_COMMANDS)
        self.launcher_pid = 10000 + rng.randrange(0, 40000, 100)
        self.rss = [rng.randrange(8, 40) * GIB for _ in range(n)]
        self.threads = [rng.randrange(40, 120) for _ in range(n)]
        self.age_s = rng.uniform(600.0, 3 * 86400.0)  # the job was already running
        self.side = (rng.choice(_SIDE_COMMANDS), rng.randrange(1, 4) * GIB)
        self.has_side = rng.random() < 0.5
        # Walk state, unrounded.
        self.target = self.job = rng.uniform(45.0, 95.0)  # percent
        self.offset = [rng.uniform(-5.0, 5.0) for _ in range(n)]
        self.mem_target = rng.uniform(0.5, 0.92) * total
        self.used = [self.mem_target * rng.uniform(0.9, 1.0) for _ in range(n)]
        self.temp = [COOL_TEMP_C + 0.45 * self.job for _ in range(n)]
        self.cores = [rng.uniform(5.0, 40.0) for _ in range(spec.cores_per_node)]
        self.load = [sum(self.cores) / 100.0] * 3  # busy threads, settled
        self.host_used = rng.uniform(0.15, 0.4) * spec.memory_bytes
        self.inlet = self.inlet_base = rng.uniform(20.0, 26.0)
        self.avail = [size * rng.uniform(0.3, 0.8) for _, size in self.disks]
        self.cpu_s = [0.0] * n
        self.elapsed_ms = 0
        self.util = [0.0] * n
        self.jitter = [0.0] * n  # 0..1, drawn each step; what an idle GPU shows
        self.freq_noise = [0.0] * n
        self.proc_cpu = [0.0] * n
        self.health = _Health(spec, index, shared.board.tdp_w) if spec.health else None
        # Readings as shown, and the rows built from them (None until first asked for).
        self.shown = _GpuShown([], [], [], [])
        self.used_r: list[int] = []
        self._gpus: tuple[Gpu, ...] | None = None
        self._cpus: tuple[Cpu, ...] | None = None
        self._memory: tuple[Memory, ...] | None = None
        self._chassis: tuple[Chassis, ...] | None = None
        self._processes: tuple[GpuProcess, ...] | None = None
        self._storage: tuple[Storage, ...] | None = None
        self.fans: dict[float, tuple[Fan, ...]] = {}  # by outlet °C; never changes
        self.step(STEP_MS)

    # -- walks

    def step(self, dt_ms: int) -> None:
        self._gpus = self._cpus = self._memory = self._chassis = None
        self._processes = self._storage = None
        self.elapsed_ms += dt_ms
        scale = math.sqrt(dt_ms / STEP_MS)  # so the spread per minute is the same at any dt
        self._step_job(dt_ms, scale)
        self._step_gpus(dt_ms, scale)
        self._step_host(dt_ms, scale)
        if self.health is not None:
            self.health.step(self.shown)

    def _step_job(self, dt_ms: int, scale: float) -> None:
        rng = self.rng
        if rng.random() < 1.0 - 0.996 ** (dt_ms / STEP_MS):  # a new phase every ~12 min
            self.target = rng.uniform(35.0, 97.0)
        pull = (self.target - self.job) * _ease(dt_ms, 45_000)
        self.job = _clamp(self.job + pull + rng.uniform(-5.0, 5.0) * scale, 0.0, 100.0)

    def _step_gpus(self, dt_ms: int, scale: float) -> None:
        rng, total, tdp = self.rng, self.spec.gpu_memory_bytes, self.shared.board.tdp_w
        back, lag, drift = _ease(dt_ms, 60_000), _ease(dt_ms, THERMAL_TAU_MS), 3.0 * GIB * scale
        span = tdp - IDLE_POWER_W[1]
        shown = _GpuShown([], [], [], [])
        used_r = []
        for i in range(len(self.uuids)):
            self.offset[i] += rng.uniform(-5.0, 5.0) * scale - self.offset[i] * back
            util = self.util[i] = _clamp(self.job + self.offset[i], 0.0, 100.0)
            step = rng.uniform(-drift, drift) + (self.mem_target - self.used[i]) * back
            used = self.used[i] = _clamp(self.used[i] + step, 0.0, float(total))
            power = IDLE_POWER_W[1] + span * util / 100.0 + 30.0 * used / total
            power = _clamp(power + self.bias_w[i] + rng.uniform(-8.0, 8.0), 80.0, tdp)
            goal = 30.0 + 52.0 * power / tdp
            temp = self.temp[i] = _clamp(self.temp[i] + (goal - self.temp[i]) * lag, 35.0, 85.0)
            noise = self.freq_noise[i] = rng.uniform(-100.0, 100.0)
            jitter = self.jitter[i] = rng.random()
            shown.util.append(round(util, 2))
            shown.power.append(round(power, 3))
            shown.temp.append(round(temp))
            shown.freq.append(_frequency(util, noise))
            used_r.append(int(used))
            self.proc_cpu[i] = round(85.0 + 15.0 * jitter, 1)
            self.cpu_s[i] += self.proc_cpu[i] / 100.0 * dt_ms / 1000.0
        self.shown, self.used_r = shown, used_r

    def _step_host(self, dt_ms: int, scale: float) -> None:
        rng, spec, cores = self.rng, self.spec, self.cores
        back = _ease(dt_ms, 30_000)
        goal = 8.0 + 0.3 * self.job  # data loaders follow the job
        uniform = rng.uniform
        for c, value in enumerate(cores):
            cores[c] = _clamp(
                value + uniform(-5.0, 5.0) * scale + (goal - value) * back, 0.0, 100.0
            )
        busy = sum(cores) / 100.0  # runnable threads, for the load averages
        for k, tau in enumerate((60_000, 300_000, 900_000)):
            self.load[k] += (busy - self.load[k]) * _ease(dt_ms, tau)
        total = spec.memory_bytes
        host_goal = (0.2 + 0.25 * self.job / 100.0) * total
        step = uniform(-2.0, 2.0) * GIB * scale + (host_goal - self.host_used) * back
        self.host_used = _clamp(self.host_used + step, 0.05 * total, 0.95 * total)
        self.inlet += uniform(-0.3, 0.3) * scale + (self.inlet_base - self.inlet) * back
        for d, (_, size) in enumerate(self.disks):
            delta = uniform(-1.0, 1.0) * GIB * scale
            self.avail[d] = _clamp(self.avail[d] + delta, 0.0, float(size))

    # -- incidents

    def down_at(self, t_ms: int) -> bool:
        incidents = self.shared.incidents[self.index]
        return any(i.kind == "host_down" and i.covers(t_ms) for i in incidents)

    def idle_at(self, t_ms: int) -> _Idle | None:
        for incident in reversed(self.shared.incidents[self.index]):
            if incident.kind == "gpu_idle" and incident.covers(t_ms, RECOVERY_SPAN_MS):
                end = incident.end_ms
                since_end = None if end is None or t_ms < end else t_ms - end
                return _Idle(t_ms - incident.start_ms, since_end)
        return None

    def at(self, t_ms: int) -> _At:
        """What bends this node's readings at ``t_ms``."""
        throttled = _NONE
        if self.health is not None:
            n = self.spec.gpus_per_node
            throttled = frozenset(
                g
                for i in self.shared.incidents[self.index]
                if i.kind == "throttle" and i.covers(t_ms)
                for g in i.gpus(n)
            )
        return _At(t_ms, self.idle_at(t_ms), throttled)

    def shown_at(self, at: _At) -> _GpuShown:
        """The GPU readings as shown at an instant: the walk's, bent by the incidents."""
        shown = self.gpu_shown(at.idle)
        return _throttled(shown, at.throttled) if at.throttled else shown

    def gpu_shown(self, idle: _Idle | None) -> _GpuShown:
        """The GPU readings as shown at an instant: the walk's, or bent by a gpu_idle."""
        if idle is None:
            return self.shown
        out = _GpuShown([], [], [], [])
        low_w, high_w = IDLE_POWER_W
        held = (
            idle.since_start_ms
            if idle.since_end_ms is None
            else idle.since_start_ms - idle.since_end_ms
        )
        fall = math.exp(-held / THERMAL_TAU_MS)
        for i, temp in enumerate(self.temp):
            jitter = self.jitter[i]
            util, power = IDLE_UTIL_MAX * jitter, low_w + (high_w - low_w) * jitter
            cooled = COOL_TEMP_C + (temp - COOL_TEMP_C) * fall
            if idle.since_end_ms is not None:  # the job restarted: ramp back to the walk
                back = _ease(idle.since_end_ms, RECOVERY_TAU_MS)
                util += (self.util[i] - util) * back
                power += (self.shown.power[i] - power) * back
                cooled += (temp - cooled) * _ease(idle.since_end_ms, THERMAL_TAU_MS)
            out.util.append(round(util, 2))
            out.power.append(round(power, 3))
            out.temp.append(round(cooled))
            out.freq.append(_frequency(util, self.freq_noise[i]))
        return out

    # -- rows, built on first use after a step (or every time while an incident bends them)

    def gpus(self, at: _At) -> tuple[Gpu, ...]:
        if self.health is not None:  # the meters move with time: built at every reading
            shown = self.shown_at(at)
            return _gpu_rows(self, shown, self.health.read(self, at, shown))
        if at.bent:
            return _gpu_rows(self, self.shown_at(at))
        if self._gpus is None:
            self._gpus = _gpu_rows(self, self.shown)
        return self._gpus

    def chassis(self, at: _At) -> tuple[Chassis, ...]:
        if at.bent:
            return _chassis_rows(self, self.shown_at(at))
        if self._chassis is None:
            self._chassis = _chassis_rows(self, self.shown)
        return self._chassis

    def processes(self, at: _At) -> tuple[GpuProcess, ...]:
        if at.bent:
            return _process_rows(self, self.shown_at(at))
        if self._processes is None:
            self._processes = _process_rows(self, self.shown)
        return self._processes

    # GPU incidents leave these alone; ``_at`` makes every row maker alike (NODE_ROWS).
    def cpus(self, _at: _At | None = None) -> tuple[Cpu, ...]:
        if self._cpus is None:
            self._cpus = _cpu_rows(self)
        return self._cpus

    def memory(self, _at: _At | None = None) -> tuple[Memory, ...]:
        if self._memory is None:
            self._memory = _memory_rows(self)
        return self._memory

    def storage(self, _at: _At | None = None) -> tuple[Storage, ...]:
        if self._storage is None:
            self._storage = _storage_rows(self)
        return self._storage


def _gpu_rows(
    node: _Node, shown: _GpuShown, health: tuple[GpuHealth, ...] | None = None
) -> tuple[Gpu, ...]:
    spec, shared = node.spec, node.shared
    name, total, n = spec.gpu_name, spec.gpu_memory_bytes, spec.gpus_per_node
    host_id, hostname = node.host_id, node.hostname
    tdp, cores, details = shared.board.tdp_w, shared.board.cores, shared.details
    links = shared.links
    return tuple(
        Gpu(
            uuid=uuid,
            name=name,
            device_type="GPU",
            host_id=host_id,
            hostname=hostname,
            instance=hostname,
            utilization=shown.util[i],
            temperature=shown.temp[i],
            used_memory=node.used_r[i],
            total_memory=total,
            frequency=shown.freq[i],
            power_consumption=shown.power[i],
            power_limit=tdp,
            memory_utilization=round(shown.util[i] * node.mem_ratio[i], 2),
            performance_state=0,
            temperature_threshold_slowdown=90,  # all-smi's mock hardware details
            temperature_threshold_shutdown=95,
            gpu_core_count=cores,
            numa_node_id=i * 2 // n,  # half the GPUs hang off each socket
            nvlink_remote_devices=links,
            detail=details[i],
            health=None if health is None else health[i],
        )
        for i, uuid in enumerate(node.uuids)
    )


def _cpu_rows(node: _Node) -> tuple[Cpu, ...]:
    cores = [int(u + 0.5) for u in node.cores]  # whole percents, as the rows show them
    n = len(cores)
    half = n // 2
    sockets = []
    for s, (lo, hi) in enumerate(((0, half), (half, n))):
        util = sum(cores[lo:hi]) / (hi - lo)
        sockets.append(
            CpuSocket(
                socket_id=s,
                utilization=round(util, 2),
                cores=hi - lo,
                threads=hi - lo,
                temperature=round(38.0 + 0.42 * util),
                frequency_mhz=_cpu_mhz(util),
            )
        )
    util = sum(cores) / n
    load = node.load
    row = Cpu(
        host_id=node.host_id,
        hostname=node.hostname,
        instance=node.hostname,
        cpu_model=node.shared.cpu_model,
        architecture="x86_64",
        platform_type="Amd",
        socket_count=2,
        total_cores=n,
        total_threads=n,
        base_frequency_mhz=CPU_BASE_MHZ,
        max_frequency_mhz=CPU_MAX_MHZ,
        current_frequency_mhz=_cpu_mhz(util),
        cache_size_mb=8 * n,
        utilization=round(util, 2),
        load_average=(round(load[0], 2), round(load[1], 2), round(load[2], 2)),
        temperature=max(s.temperature or 0 for s in sockets),
        power_consumption=round(2 * (90.0 + 2.7 * util), 3),  # two sockets
        per_socket_info=tuple(sockets),
        per_core_utilization=tuple(
            rows[u] for rows, u in zip(node.shared.core_rows, cores, strict=True)
        ),
    )
    return (row,)


def _memory_rows(node: _Node) -> tuple[Memory, ...]:
    total, used = node.spec.memory_bytes, int(node.host_used)
    buffers = total // 1024  # 2 GiB of 2 TiB
    cached = (total - used - buffers) * 11 // 20
    free = total - used - buffers - cached
    row = Memory(
        host_id=node.host_id,
        hostname=node.hostname,
        instance=node.hostname,
        total_bytes=total,
        used_bytes=used,
        available_bytes=free + buffers + cached,
        free_bytes=free,
        buffers_bytes=buffers,
        cached_bytes=cached,
        swap_total_bytes=0,  # GPU nodes run without swap
        swap_used_bytes=0,
        swap_free_bytes=0,
        utilization=round(used * 100 / total, 2),
    )
    return (row,)


def _chassis_rows(node: _Node, shown: _GpuShown) -> tuple[Chassis, ...]:
    gpu_w = sum(shown.power)
    total = round(gpu_w + BASE_POWER_W + sum(node.cores) / len(node.cores), 3)
    inlet = float(round(node.inlet))
    load = gpu_w / (len(shown.power) * node.shared.board.tdp_w)
    outlet = float(round(inlet + 8.0 + 17.0 * load))
    fans = node.fans.get(outlet)
    if fans is None:  # fans follow the outlet temperature only: a handful of distinct rows
        fans = node.fans[outlet] = _fan_rows(node, outlet)
    psu_w = round(total / _PSUS, 3)
    row = Chassis(
        host_id=node.host_id,
        hostname=node.hostname,
        instance=node.hostname,
        total_power_watts=total,
        inlet_temperature=inlet,
        outlet_temperature=outlet,
        fan_speeds=fans,
        psu_status=tuple(
            Psu(id=p, name=f"PSU{p + 1}", status="Ok", power_watts=psu_w) for p in range(_PSUS)
        ),
        detail=node.shared.chassis_detail,
    )
    return (row,)


def _fan_rows(node: _Node, outlet: float) -> tuple[Fan, ...]:
    rpm = int(round(4000 + 250 * (outlet - 30.0), -1))
    return tuple(
        Fan(id=f, name=f"FAN{f + 1}", speed_rpm=_clamp(rpm + trim, 2000, 16000), max_rpm=16000)
        for f, trim in enumerate(node.fan_trim)
    )


def _process_rows(node: _Node, shown: _GpuShown) -> tuple[GpuProcess, ...]:
    host_id, hostname, host_total = node.host_id, node.hostname, node.spec.memory_bytes
    started = format_elapsed(node.age_s + node.elapsed_ms / 1000.0)
    side_command, side_bytes = node.side
    side_bytes = min(side_bytes, node.used_r[0]) if node.has_side else 0
    rows = [
        GpuProcess(
            host_id=host_id,
            hostname=hostname,
            device_id=i,
            device_uuid=uuid,
            pid=node.launcher_pid + 1 + i,
            process_name="python3",
            used_memory=node.used_r[i] - (side_bytes if i == 0 else 0),
            cpu_percent=node.proc_cpu[i],
            memory_percent=round(node.rss[i] * 100 / host_total, 2),
            memory_rss=node.rss[i],
            memory_vms=node.rss[i] * 4,
            user=node.user,
            state="R" if shown.util[i] > IDLE_UTIL_MAX else "S",
            start_time=started,
            cpu_time=int(node.cpu_s[i]),
            command=node.command,
            ppid=node.launcher_pid,
            threads=node.threads[i],
            priority=20,
            nice_value=0,
            gpu_utilization=shown.util[i],
        )
        for i, uuid in enumerate(node.uuids)
    ]
    if node.has_side:
        rows.append(
            GpuProcess(
                host_id=host_id,
                hostname=hostname,
                device_id=0,
                device_uuid=node.uuids[0],
                pid=node.launcher_pid + len(node.uuids) + 1,
                process_name="python3",
                used_memory=side_bytes,
                cpu_percent=2.0,
                memory_percent=round(2 * GIB * 100 / host_total, 2),
                memory_rss=2 * GIB,
                memory_vms=8 * GIB,
                user=node.user,
                state="S",
                start_time=started,
                cpu_time=int(node.elapsed_ms / 50_000),
                command=side_command,
                ppid=1,
                threads=12,
                priority=20,
                nice_value=0,
                gpu_utilization=0.0,
            )
        )
    return tuple(rows)


def _storage_rows(node: _Node) -> tuple[Storage, ...]:
    return tuple(
        Storage(
            host_id=node.host_id,
            hostname=node.hostname,
            mount_point=mount,
            index=d,
            total_bytes=size,
            available_bytes=int(node.avail[d]),
        )
        for d, (mount, size) in enumerate(node.disks)
    )


class ClusterSimulator:
    """N simulated GPU nodes behind one seed; see the module docstring for the rules."""

    def __init__(self, spec: ClusterSpec) -> None:
        self.spec = spec
        shared = _shared(spec)
        self._nodes = tuple(_Node(spec, i, shared) for i in range(spec.nodes))
        self.hosts: tuple[str, ...] = tuple(node.host_id for node in self._nodes)

    def advance(self, dt_ms: int) -> None:
        """Step every node's walks by ``dt_ms`` of simulated time (0 changes nothing)."""
        if dt_ms < 0:
            raise ValueError(f"advance needs dt_ms >= 0, got {dt_ms}")
        if dt_ms:
            for node in self._nodes:
                node.step(dt_ms)

    def node_frame_parts(self, index: int, t_ms: int) -> NodeReading | None:
        """Node ``index``'s rows at ``t_ms``; ``None`` while a host_down incident holds it."""
        node = self._nodes[index]
        if node.down_at(t_ms):
            return None
        at = node.at(t_ms)
        return NodeReading(
            host_id=node.host_id,
            hostname=node.hostname,
            gpus=node.gpus(at),
            cpus=node.cpus(),
            memory=node.memory(),
            chassis=node.chassis(at),
            processes=node.processes(at),
            storage=node.storage(),
        )

    def frame(self, t_ms: int, include: tuple[str, ...] = DEFAULT_SECTIONS) -> Frame:
        """All nodes as one remote-style frame; sections not in ``include`` are ``None``."""
        unknown = [name for name in include if name not in SECTIONS]
        if unknown:
            raise ValueError(f"unknown sections {unknown}; known: {', '.join(SECTIONS)}")
        live: list[tuple[_Node, _At]] = []
        errors: list[str] = []
        for node in self._nodes:
            if node.down_at(t_ms):
                errors.append(f"{node.host_id}: connection refused")
            else:
                live.append((node, node.at(t_ms)))
        nodes, ats = [node for node, _ in live], [at for _, at in live]
        rows = {name: _joined(map(NODE_ROWS[name], nodes, ats)) for name in include}
        return build_frame(t_ms, rows, source="remote", errors=errors)


# How a node makes each section's rows, by section name (at: what bends them then).
NODE_ROWS: Final[dict[str, Callable[[_Node, _At], tuple[Row, ...]]]] = {
    "gpu": _Node.gpus,
    "cpu": _Node.cpus,
    "memory": _Node.memory,
    "chassis": _Node.chassis,
    "process": _Node.processes,
    "storage": _Node.storage,
}


_R = TypeVar("_R")


def _joined(parts: Iterable[tuple[_R, ...]]) -> tuple[_R, ...]:
    return tuple(chain.from_iterable(parts))
