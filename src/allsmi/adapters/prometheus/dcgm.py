"""A dcgm-exporter ``/metrics`` page (NVIDIA's, port 9400) into GPU rows.

The remote scraper (:mod:`allsmi.adapters.network.scrape`) hands a page here when it carries
``DCGM_FI_*`` samples (:func:`is_dcgm_page`); no flag says so. The reading is in two steps:
:func:`fold_dcgm` folds the page's samples into one accumulator per GPU (pure: the page may be
read again by a slower grammar), and :meth:`DcgmPage.rows` builds the rows, using and updating
the host's :class:`DcgmState` kept by the source across scrapes.

Rules this module obeys (docs/recording-format.md §5.3 and §5.3.3 for the fields):

- :data:`DCGM_FAMILIES` is the one table of what is read: family → the field it fills and how
  its value converts. Unknown families are skipped before they are parsed (the scraper's
  line filter asks :data:`DCGM_NAMES`); no family is required: sites rename or drop families
  with their own counters file, and a field whose family is absent stays ``None``. A
  ``counter``-typed family is read under its name with or without the ``_total`` suffix the
  exposition grammar adds.
- A GPU is the ``UUID`` label (else the ``gpu`` index); under MIG each GPU instance
  (``GPU_I_ID``) is a row of its own, ``<UUID>/<GPU_I_ID>``, with ``gpu_instance`` and
  ``gpu_instance_profile`` in ``detail``. Labels: ``modelName`` → ``name``, ``gpu`` →
  ``detail["index"]``, ``Hostname`` → ``hostname`` and ``detail["exporter_hostname"]`` (under
  Kubernetes it names the exporter's pod, not the node), ``pci_bus_id`` and
  ``DCGM_FI_DRIVER_VERSION`` → ``detail``, non-empty ``pod``/``namespace``/``container`` →
  ``detail`` (the GPU's workload; GPUs shared by several pods list them, ``,``-joined, at most
  :data:`MAX_WORKLOADS`). Every other label is ignored.
- Values: NaN and ±Inf are no reading. MiB → bytes, mJ → J; the clock event bitmask
  (``DCGM_FI_DEV_CLOCK_THROTTLE_REASONS`` or its newer name ``DCGM_FI_DEV_CLOCKS_EVENT_REASONS``)
  → names by :func:`~allsmi.domain.model.clock_event_names`. ``total_memory`` is
  ``DCGM_FI_DEV_FB_TOTAL`` when exported, else used + free (+ reserved).
- Between scrapes (:class:`DcgmState`, one entry per GPU on the host's last page; a GPU gone
  from the page is dropped): PCIe TX/RX are KB counters, their rates (B/s) are differences over
  the time between scrapes — ``None`` on a GPU's first scrape and after a counter went
  backwards (an exporter or driver restart), never negative. ``DCGM_FI_DEV_XID_ERRORS`` is a
  gauge holding the last XID the exporter saw: it becomes ``last_xid``; each change to a new
  non-zero value is one XID in ``xid_counts`` (counted since the recorder started, at most
  :data:`MAX_XID_CODES` codes per GPU) stamped ``last_xid_ms``. Repeats of the same code are
  invisible there: the gauge does not move.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final

import attrs

from allsmi.adapters.prometheus.conversions import Number, PageLabels, number_text
from allsmi.adapters.prometheus.parser import OverLimit, PageLimits
from allsmi.domain.model import GpmMetrics, Gpu, GpuHealth, bounded_int, clock_event_names

__all__ = [
    "DCGM_FAMILIES",
    "DCGM_NAMES",
    "DcgmPage",
    "DcgmState",
    "fold_dcgm",
    "is_dcgm_page",
]

MIB: Final = 1024 * 1024
KB: Final = 1024  # NVML's and DCGM's PCIe "KB"
MAX_WORKLOADS: Final = 16  # pods (namespaces, containers) listed for one GPU
MAX_XID_CODES: Final = 64  # distinct XID codes counted per GPU (NVIDIA's catalogue has ~150)
_XID_MAX: Final = 1 << 16


def _int(value: Number) -> int | None:
    return bounded_int(round(value))


def _float(value: Number) -> float:
    return float(value)


def _bool(value: Number) -> bool:
    return value != 0


def _joules(value: Number) -> float:
    return float(value) / 1000.0  # mJ


def _fraction(value: Number) -> float:
    return float(value)


@attrs.frozen
class DcgmFamily:
    """One family read: its ``name`` on the page, the ``slot`` it fills and how its value
    converts. Slots: ``gpu.<field>`` (a :class:`~allsmi.domain.model.Gpu` field),
    ``health.<field>`` (a :class:`~allsmi.domain.model.GpuHealth` field), ``gpm.<field>``,
    ``raw.<name>`` (kept for :meth:`DcgmPage.rows`: memory, PCIe counters, XID, the clock
    event bitmask, a detail). ``add``: several families add up into the slot."""

    name: str
    slot: str
    convert: Callable[[Number], Any] = _float
    add: bool = False


_F = DcgmFamily
# The families read (docs/recording-format.md §5.3 and §5.3.3), in the order of NVIDIA's
# default counters file, then the commonly enabled ones.
# fmt: off
DCGM_FAMILIES: Final[tuple[DcgmFamily, ...]] = (
    _F("DCGM_FI_DEV_SM_CLOCK", "raw.sm_clock", _int),
    _F("DCGM_FI_DEV_MEM_CLOCK", "health.memory_clock_mhz", _int),
    _F("DCGM_FI_DEV_GPU_TEMP", "gpu.temperature", _int),
    _F("DCGM_FI_DEV_POWER_USAGE", "gpu.power_consumption"),
    _F("DCGM_FI_DEV_POWER_MGMT_LIMIT", "gpu.power_limit"),
    _F("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "health.energy_j", _joules),
    _F("DCGM_FI_DEV_PCIE_TX_THROUGHPUT", "raw.pcie_tx_kb", _int),
    _F("DCGM_FI_DEV_PCIE_RX_THROUGHPUT", "raw.pcie_rx_kb", _int),
    _F("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "health.pcie_replays", _int),
    _F("DCGM_FI_DEV_GPU_UTIL", "gpu.utilization"),
    _F("DCGM_FI_DEV_MEM_COPY_UTIL", "gpu.memory_utilization"),
    _F("DCGM_FI_DEV_ENC_UTIL", "health.encoder_utilization"),
    _F("DCGM_FI_DEV_DEC_UTIL", "health.decoder_utilization"),
    _F("DCGM_FI_DEV_XID_ERRORS", "raw.xid", _int),
    _F("DCGM_FI_DEV_FB_FREE", "raw.fb_free", _int),
    _F("DCGM_FI_DEV_FB_USED", "raw.fb_used", _int),
    _F("DCGM_FI_DEV_FB_RESERVED", "raw.fb_reserved", _int),
    _F("DCGM_FI_DEV_FB_TOTAL", "raw.fb_total", _int),
    _F("DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", "raw.nvlink_bandwidth_total", _int),
    _F("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "health.remapped_uncorrectable", _int),
    _F("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "health.remapped_correctable", _int),
    _F("DCGM_FI_DEV_ROW_REMAP_FAILURE", "health.remap_failure", _bool),
    _F("DCGM_FI_DEV_ROW_REMAP_PENDING", "health.remap_pending", _bool),
    _F("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", "raw.clock_events", _int),
    _F("DCGM_FI_DEV_CLOCKS_EVENT_REASONS", "raw.clock_events", _int),
    _F("DCGM_FI_DEV_POWER_VIOLATION", "health.power_violation_us", _int),
    _F("DCGM_FI_DEV_THERMAL_VIOLATION", "health.thermal_violation_us", _int),
    _F("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "health.ecc_corrected", _int),
    _F("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "health.ecc_uncorrected", _int),
    _F("DCGM_FI_DEV_RETIRED_SBE", "health.retired_pages", _int, add=True),
    _F("DCGM_FI_DEV_RETIRED_DBE", "health.retired_pages", _int, add=True),
    _F("DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL", "health.nvlink_errors", _int, add=True),
    _F("DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL", "health.nvlink_errors", _int, add=True),
    _F("DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL", "health.nvlink_errors", _int, add=True),
    _F("DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL", "health.nvlink_errors", _int, add=True),
    _F("DCGM_FI_PROF_PCIE_TX_BYTES", "raw.pcie_tx_bytes_s"),  # B/s
    _F("DCGM_FI_PROF_PCIE_RX_BYTES", "raw.pcie_rx_bytes_s"),  # B/s
    _F("DCGM_FI_PROF_NVLINK_TX_BYTES", "health.nvlink_tx_bytes_s"),  # B/s
    _F("DCGM_FI_PROF_NVLINK_RX_BYTES", "health.nvlink_rx_bytes_s"),  # B/s
    _F("DCGM_FI_PROF_SM_OCCUPANCY", "gpm.sm_occupancy", _fraction),
    _F("DCGM_FI_PROF_DRAM_ACTIVE", "gpm.memory_bandwidth_utilization", _fraction),
)
# fmt: on
_BY_NAME: Final = {family.name: family for family in DCGM_FAMILIES}
DCGM_NAMES: Final = frozenset(_BY_NAME)


def family_of(name: str) -> DcgmFamily | None:
    """The table row of a sample's name (a counter's sample carries ``_total`` in addition)."""
    found = _BY_NAME.get(name)
    if found is None and name.endswith("_total"):
        found = _BY_NAME.get(name[: -len("_total")])
    return found


def is_dcgm_page(text: str) -> bool:
    """Whether a page carries dcgm-exporter samples (a sample line opening ``DCGM_FI_``)."""
    return text.startswith("DCGM_FI_") or "\nDCGM_FI_" in text


# --------------------------------------------------------------------------- one page


@attrs.define
class _GpuAcc:
    """One GPU's readings on one page."""

    uuid: str
    index: str
    name: str = ""
    hostname: str = ""
    values: dict[str, Any] = attrs.Factory(dict)  # slot → value
    detail: dict[str, str] = attrs.Factory(dict)
    workload: dict[str, dict[str, None]] = attrs.Factory(dict)  # pod/namespace/container → values


_DETAIL_LABELS: Final = (
    ("pci_bus_id", "pci_bus_id"),
    ("DCGM_FI_DRIVER_VERSION", "driver_version"),
    ("GPU_I_ID", "gpu_instance"),
    ("GPU_I_PROFILE", "gpu_instance_profile"),
    ("Hostname", "exporter_hostname"),
)
_WORKLOAD_LABELS: Final = ("pod", "namespace", "container")


@attrs.define
class DcgmPage:
    """The GPUs of one page, as read (before the state across scrapes is applied)."""

    gpus: dict[tuple[str, str], _GpuAcc] = attrs.Factory(dict)

    def add(self, name: str, labels: PageLabels, value: Number | None, limits: PageLimits) -> None:
        family = family_of(name)
        if family is None:
            return
        gpu = self._gpu(labels, limits)
        if gpu is None or value is None:
            return
        converted = family.convert(value)
        if converted is None:
            return
        if family.add:
            gpu.values[family.slot] = gpu.values.get(family.slot, 0) + converted
        else:
            gpu.values[family.slot] = converted

    def _gpu(self, labels: PageLabels, limits: PageLimits) -> _GpuAcc | None:
        index = labels.get("gpu", "")
        uuid = labels.get("UUID") or (f"gpu-{index}" if index else "")
        if not uuid:
            return None
        instance = labels.get("GPU_I_ID", "")
        gpu = self.gpus.get((uuid, instance))
        if gpu is None:
            if len(self.gpus) >= limits.gpus:
                raise OverLimit(f"over {limits.gpus} GPUs")
            row_uuid = f"{uuid}/{instance}" if instance else uuid
            gpu = self.gpus[uuid, instance] = _GpuAcc(row_uuid, index)
            gpu.name = labels.get("modelName", "")
            gpu.hostname = labels.get("Hostname", "")
            for label, key in _DETAIL_LABELS:
                if labels.get(label):
                    gpu.detail[key] = labels[label]
        for label in _WORKLOAD_LABELS:
            text = labels.get(label)
            if text:
                seen = gpu.workload.setdefault(label, {})
                if len(seen) < MAX_WORKLOADS:
                    seen.setdefault(text, None)
        return gpu

    def rows(
        self, host_id: str, instance: str, fallback_hostname: str, state: DcgmState, t_ms: int
    ) -> list[Gpu]:
        """The GPU rows, sorted by (index, GPU instance, uuid), with the rates and XIDs that
        need the previous scrape (``state``, updated: it keeps the GPUs of this page only)."""
        previous, state.gpus = state.gpus, {}
        out: list[tuple[tuple[int, int, str], Gpu]] = []
        for key, gpu in self.gpus.items():
            memory = previous.get(key) or _GpuState()
            state.gpus[key] = memory
            row = _build(gpu, host_id, instance, fallback_hostname, memory, t_ms)
            order = (_number_or_max(gpu.index), _number_or_max(key[1]), gpu.uuid)
            out.append((order, row))
        return [row for _, row in sorted(out, key=lambda item: item[0])]


def fold_dcgm(
    samples: Iterable[tuple[str, PageLabels, Number | None]], limits: PageLimits
) -> DcgmPage:
    """A page's samples (NaN and ±Inf already ``None``) into a :class:`DcgmPage`."""
    page = DcgmPage()
    for name, labels, value in samples:
        page.add(name, labels, value, limits)
    return page


def _number_or_max(text: str) -> int:
    """A label's index (``gpu``, ``GPU_I_ID``); 2**63 (sorted last) when it is none, or too
    long for one (``int()`` refuses 4,300 digits)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else 2**63


# --------------------------------------------------------------------------- across scrapes


@attrs.define
class _GpuState:
    """What one GPU's next scrape needs from this one."""

    t_ms: int | None = None
    pcie_tx_kb: int | None = None
    pcie_rx_kb: int | None = None
    xid_value: int | None = None  # the gauge's value on the last page
    xid_counts: dict[str, int] = attrs.Factory(dict)
    last_xid: int | None = None
    last_xid_ms: int | None = None


@attrs.define
class DcgmState:
    """One host's dcgm state across scrapes: one entry per GPU of its last page."""

    gpus: dict[tuple[str, str], _GpuState] = attrs.Factory(dict)


def _rate(now: int | None, before: int | None, seconds: float | None) -> float | None:
    """B/s from two KB counter readings; None without both, or when the counter went back."""
    if now is None or before is None or not seconds or now < before:
        return None
    return (now - before) * KB / seconds


def _xid(memory: _GpuState, value: int | None, t_ms: int) -> None:
    """The XID gauge's new value into the GPU's counts: a change to a non-zero code is one
    XID (a repeat of the same code does not move the gauge, so it is invisible here)."""
    if value is None or not 0 <= value < _XID_MAX:
        return
    if memory.xid_value is None:  # first sight: the code predates us, when is unknown
        if value:
            memory.last_xid = value
    elif value != memory.xid_value and value:
        code = str(value)
        if code in memory.xid_counts or len(memory.xid_counts) < MAX_XID_CODES:
            memory.xid_counts[code] = memory.xid_counts.get(code, 0) + 1
        memory.last_xid, memory.last_xid_ms = value, t_ms
    memory.xid_value = value


def _build(
    gpu: _GpuAcc,
    host_id: str,
    instance: str,
    fallback_hostname: str,
    memory: _GpuState,
    t_ms: int,
) -> Gpu:
    values = gpu.values
    fields: dict[str, Any] = {}
    health: dict[str, Any] = {}
    gpm: dict[str, Any] = {}
    for slot, value in values.items():
        kind, _, name = slot.partition(".")
        if kind == "gpu":
            fields[name] = value
        elif kind == "health":
            health[name] = value
        elif kind == "gpm":
            gpm[name] = value
    sm_clock = values.get("raw.sm_clock")
    if sm_clock is not None:
        fields["frequency"] = health["sm_clock_mhz"] = sm_clock
    used, free = values.get("raw.fb_used"), values.get("raw.fb_free")
    total = values.get("raw.fb_total")
    if total is None and used is not None and free is not None:
        total = used + free + values.get("raw.fb_reserved", 0)
    fields["used_memory"] = None if used is None else bounded_int(used * MIB)
    fields["total_memory"] = None if total is None else bounded_int(total * MIB)
    mask = values.get("raw.clock_events")
    if mask is not None and mask >= 0:
        health["clock_events"] = clock_event_names(mask)
    # PCIe: the KB counters' differences, else the profiling families' rates.
    tx, rx = values.get("raw.pcie_tx_kb"), values.get("raw.pcie_rx_kb")
    seconds = None if memory.t_ms is None else (t_ms - memory.t_ms) / 1000
    if seconds is not None and seconds <= 0:
        seconds = None
    tx_rate = _rate(tx, memory.pcie_tx_kb, seconds)
    rx_rate = _rate(rx, memory.pcie_rx_kb, seconds)
    tx_rate = values.get("raw.pcie_tx_bytes_s") if tx_rate is None else tx_rate
    rx_rate = values.get("raw.pcie_rx_bytes_s") if rx_rate is None else rx_rate
    if tx_rate is not None:
        health["pcie_tx_bytes_s"] = tx_rate
    if rx_rate is not None:
        health["pcie_rx_bytes_s"] = rx_rate
    memory.t_ms, memory.pcie_tx_kb, memory.pcie_rx_kb = t_ms, tx, rx
    if "raw.xid" in values:
        _xid(memory, values["raw.xid"], t_ms)
        health["xid_counts"] = dict(memory.xid_counts)
        health["last_xid"] = memory.last_xid
        health["last_xid_ms"] = memory.last_xid_ms
    detail = dict(gpu.detail)
    for label, seen in gpu.workload.items():
        detail[label] = ",".join(seen)
    nvlink_total = values.get("raw.nvlink_bandwidth_total")
    if nvlink_total is not None:
        detail["nvlink_bandwidth_total"] = number_text(nvlink_total)
    if gpu.index:
        detail["index"] = gpu.index
    return Gpu(
        uuid=gpu.uuid,
        name=gpu.name,
        device_type="GPU",
        host_id=host_id,
        hostname=gpu.hostname or fallback_hostname,
        instance=instance,
        detail=detail,
        gpm_metrics=GpmMetrics(**gpm) if gpm else None,
        health=GpuHealth(**health) if health else None,
        **fields,
    )
