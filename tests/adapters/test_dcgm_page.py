"""dcgm-exporter pages into GPU rows (allsmi.adapters.prometheus.dcgm), read through the
scraper's page reader: pages as dcgm-exporter prints them — Kubernetes pod labels, empty pod
labels, MIG instances, counter families, unknown families and labels, the renamed clock event
family — asserted field by field, and the state kept across scrapes (PCIe rates, XIDs)."""

from __future__ import annotations

from functools import partial

import pytest

from allsmi.adapters.network.scrape import HOST_LIMITS, read_metrics
from allsmi.adapters.prometheus import parser
from allsmi.adapters.prometheus.dcgm import (
    DCGM_NAMES,
    MAX_XID_CODES,
    DcgmState,
    fold_dcgm,
    is_dcgm_page,
)
from allsmi.adapters.prometheus.parser import NO_LIMITS, OverLimit, PageLimits, fold_page
from allsmi.domain.model import GpmMetrics, Gpu, GpuHealth

T0 = 1_776_513_600_000
TARGET = "gpu-01:9400"
MIB = 1024 * 1024

H100 = (
    'modelName="NVIDIA H100 80GB HBM3",Hostname="dcgm-exporter-x7k2p",'
    'DCGM_FI_DRIVER_VERSION="550.54.15"'
)
GPU0 = (
    f'gpu="0",UUID="GPU-0a1b",pci_bus_id="00000000:18:00.0",device="nvidia0",{H100},'
    'container="trainer",namespace="ml",pod="train-0",new_label="ignored"'
)
GPU1 = (
    f'gpu="1",UUID="GPU-1c2d",pci_bus_id="00000000:2A:00.0",device="nvidia1",{H100},'
    'container="",namespace="",pod=""'
)


def page(
    *,
    energy_mj: int = 123_456_789,
    tx_kb: int = 1_000,
    rx_kb: int = 4_000,
    xid: int = 0,
    throttle_family: str = "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS",
    mask: int = 0x48,
) -> str:
    """Two H100s as dcgm-exporter 3.x prints them (HELP and TYPE before every family)."""
    return f"""# HELP DCGM_FI_DEV_SM_CLOCK SM clock frequency (in MHz).
# TYPE DCGM_FI_DEV_SM_CLOCK gauge
DCGM_FI_DEV_SM_CLOCK{{{GPU0}}} 1980
DCGM_FI_DEV_SM_CLOCK{{{GPU1}}} 345
# HELP DCGM_FI_DEV_MEM_CLOCK Memory clock frequency (in MHz).
# TYPE DCGM_FI_DEV_MEM_CLOCK gauge
DCGM_FI_DEV_MEM_CLOCK{{{GPU0}}} 2619
DCGM_FI_DEV_MEM_CLOCK{{{GPU1}}} 2619
# HELP DCGM_FI_DEV_GPU_TEMP GPU temperature (in C).
# TYPE DCGM_FI_DEV_GPU_TEMP gauge
DCGM_FI_DEV_GPU_TEMP{{{GPU0}}} 71
DCGM_FI_DEV_GPU_TEMP{{{GPU1}}} 33
# HELP DCGM_FI_DEV_POWER_USAGE Power draw (in W).
# TYPE DCGM_FI_DEV_POWER_USAGE gauge
DCGM_FI_DEV_POWER_USAGE{{{GPU0}}} 612.437000
DCGM_FI_DEV_POWER_USAGE{{{GPU1}}} 71.5
# HELP DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION Total energy consumption since boot (in mJ).
# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter
DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{{GPU0}}} {energy_mj}
# HELP DCGM_FI_DEV_PCIE_TX_THROUGHPUT Total number of bytes transmitted through PCIe TX (in KB).
# TYPE DCGM_FI_DEV_PCIE_TX_THROUGHPUT counter
DCGM_FI_DEV_PCIE_TX_THROUGHPUT{{{GPU0}}} {tx_kb}
# HELP DCGM_FI_DEV_PCIE_RX_THROUGHPUT Total number of bytes received through PCIe RX (in KB).
# TYPE DCGM_FI_DEV_PCIE_RX_THROUGHPUT counter
DCGM_FI_DEV_PCIE_RX_THROUGHPUT{{{GPU0}}} {rx_kb}
# HELP DCGM_FI_DEV_PCIE_REPLAY_COUNTER Total number of PCIe retries.
# TYPE DCGM_FI_DEV_PCIE_REPLAY_COUNTER counter
DCGM_FI_DEV_PCIE_REPLAY_COUNTER{{{GPU0}}} 3
# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).
# TYPE DCGM_FI_DEV_GPU_UTIL gauge
DCGM_FI_DEV_GPU_UTIL{{{GPU0}}} 97
DCGM_FI_DEV_GPU_UTIL{{{GPU1}}} 0
# HELP DCGM_FI_DEV_MEM_COPY_UTIL Memory utilization (in %).
# TYPE DCGM_FI_DEV_MEM_COPY_UTIL gauge
DCGM_FI_DEV_MEM_COPY_UTIL{{{GPU0}}} 41
# HELP DCGM_FI_DEV_ENC_UTIL Encoder utilization (in %).
# TYPE DCGM_FI_DEV_ENC_UTIL gauge
DCGM_FI_DEV_ENC_UTIL{{{GPU0}}} 0
# HELP DCGM_FI_DEV_DEC_UTIL Decoder utilization (in %).
# TYPE DCGM_FI_DEV_DEC_UTIL gauge
DCGM_FI_DEV_DEC_UTIL{{{GPU0}}} 12
# HELP DCGM_FI_DEV_XID_ERRORS Value of the last XID error encountered.
# TYPE DCGM_FI_DEV_XID_ERRORS gauge
DCGM_FI_DEV_XID_ERRORS{{{GPU0}}} {xid}
# HELP DCGM_FI_DEV_FB_FREE Framebuffer memory free (in MiB).
# TYPE DCGM_FI_DEV_FB_FREE gauge
DCGM_FI_DEV_FB_FREE{{{GPU0}}} 1000
DCGM_FI_DEV_FB_FREE{{{GPU1}}} 81000
# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).
# TYPE DCGM_FI_DEV_FB_USED gauge
DCGM_FI_DEV_FB_USED{{{GPU0}}} 80000
DCGM_FI_DEV_FB_USED{{{GPU1}}} 0
# HELP DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL Total number of NVLink bandwidth counters for all lanes.
# TYPE DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL counter
DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL{{{GPU0}}} 5500
# HELP DCGM_FI_DEV_VGPU_LICENSE_STATUS vGPU License status
# TYPE DCGM_FI_DEV_VGPU_LICENSE_STATUS gauge
DCGM_FI_DEV_VGPU_LICENSE_STATUS{{{GPU0}}} 0
# HELP DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS Number of remapped rows for uncorrectable errors
# TYPE DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS counter
DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS{{{GPU0}}} 1
# HELP DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS Number of remapped rows for correctable errors
# TYPE DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS counter
DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS{{{GPU0}}} 4
# HELP DCGM_FI_DEV_ROW_REMAP_FAILURE Whether remapping of rows has failed
# TYPE DCGM_FI_DEV_ROW_REMAP_FAILURE gauge
DCGM_FI_DEV_ROW_REMAP_FAILURE{{{GPU0}}} 0
# HELP {throttle_family} Current clock throttle reasons.
# TYPE {throttle_family} gauge
{throttle_family}{{{GPU0}}} {mask}
{throttle_family}{{{GPU1}}} 1
# HELP DCGM_FI_DEV_POWER_VIOLATION Throttling duration due to power constraints (in us).
# TYPE DCGM_FI_DEV_POWER_VIOLATION counter
DCGM_FI_DEV_POWER_VIOLATION{{{GPU0}}} 250000
# HELP DCGM_FI_DEV_THERMAL_VIOLATION Throttling duration due to thermal constraints (in us).
# TYPE DCGM_FI_DEV_THERMAL_VIOLATION counter
DCGM_FI_DEV_THERMAL_VIOLATION{{{GPU0}}} 7000
# HELP DCGM_FI_DEV_ECC_SBE_VOL_TOTAL Total number of single-bit volatile ECC errors.
# TYPE DCGM_FI_DEV_ECC_SBE_VOL_TOTAL counter
DCGM_FI_DEV_ECC_SBE_VOL_TOTAL{{{GPU0}}} 2
# HELP DCGM_FI_DEV_ECC_DBE_VOL_TOTAL Total number of double-bit volatile ECC errors.
# TYPE DCGM_FI_DEV_ECC_DBE_VOL_TOTAL counter
DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{{{GPU0}}} 0
# HELP DCGM_FI_PROF_GR_ENGINE_ACTIVE Ratio of time the graphics engine is active.
# TYPE DCGM_FI_PROF_GR_ENGINE_ACTIVE gauge
DCGM_FI_PROF_GR_ENGINE_ACTIVE{{{GPU0}}} 0.93
# HELP DCGM_FI_PROF_SM_OCCUPANCY The ratio of number of warps resident on an SM.
# TYPE DCGM_FI_PROF_SM_OCCUPANCY gauge
DCGM_FI_PROF_SM_OCCUPANCY{{{GPU0}}} 0.5
"""


def read(text: str, state: DcgmState, t_ms: int, limits: PageLimits = NO_LIMITS) -> list[Gpu]:
    gpus = fold_page(text, limits, partial(fold_dcgm, limits=limits), DCGM_NAMES)
    return gpus.rows(TARGET, TARGET, "gpu-01", state, t_ms)


def test_a_dcgm_page_becomes_gpu_rows_field_by_field() -> None:
    first, idle = read(page(), DcgmState(), T0)
    assert first == Gpu(
        uuid="GPU-0a1b",
        name="NVIDIA H100 80GB HBM3",
        device_type="GPU",
        host_id=TARGET,
        hostname="dcgm-exporter-x7k2p",
        instance=TARGET,
        utilization=97.0,
        temperature=71,
        used_memory=80_000 * MIB,
        total_memory=81_000 * MIB,
        frequency=1980,
        power_consumption=612.437,
        memory_utilization=41.0,
        gpm_metrics=GpmMetrics(sm_occupancy=0.5),
        detail={
            "pci_bus_id": "00000000:18:00.0",
            "driver_version": "550.54.15",
            "exporter_hostname": "dcgm-exporter-x7k2p",
            "pod": "train-0",
            "namespace": "ml",
            "container": "trainer",
            "nvlink_bandwidth_total": "5500",
            "index": "0",
        },
        health=GpuHealth(
            clock_events=("hw_slowdown", "hw_thermal"),
            sm_clock_mhz=1980,
            memory_clock_mhz=2619,
            power_violation_us=250_000,
            thermal_violation_us=7000,
            ecc_corrected=2,
            ecc_uncorrected=0,
            remapped_correctable=4,
            remapped_uncorrectable=1,
            remap_failure=False,
            pcie_replays=3,
            encoder_utilization=0.0,
            decoder_utilization=12.0,
            energy_j=123_456.789,
            xid_counts={},
            last_xid=None,
            last_xid_ms=None,
        ),
    )
    # Empty pod labels: no workload; families the page lacks for this GPU stay None.
    assert idle.uuid == "GPU-1c2d" and idle.detail["index"] == "1"
    assert "pod" not in idle.detail and "namespace" not in idle.detail
    assert "container" not in idle.detail
    assert (idle.utilization, idle.used_memory, idle.total_memory) == (0.0, 0, 81_000 * MIB)
    assert idle.memory_utilization is None and idle.gpm_metrics is None
    assert idle.health == GpuHealth(
        clock_events=("gpu_idle",), sm_clock_mhz=345, memory_clock_mhz=2619
    )


def test_the_renamed_clock_event_family_is_read_the_same() -> None:
    new = page(throttle_family="DCGM_FI_DEV_CLOCKS_EVENT_REASONS", mask=0x4)
    gpu = read(new, DcgmState(), T0)[0]
    assert gpu.health is not None and gpu.health.clock_events == ("sw_power_cap",)


def test_pcie_rates_come_from_counter_differences_and_reset_when_they_go_back() -> None:
    state = DcgmState()
    first = read(page(tx_kb=1_000, rx_kb=4_000), state, T0)[0]
    assert first.health is not None
    assert first.health.pcie_tx_bytes_s is None and first.health.pcie_rx_bytes_s is None
    second = read(page(tx_kb=3_000, rx_kb=4_500), state, T0 + 2_000)[0]
    assert second.health is not None
    assert second.health.pcie_tx_bytes_s == 2_000 * 1024 / 2  # KB over 2 s → B/s
    assert second.health.pcie_rx_bytes_s == 500 * 1024 / 2
    restarted = read(page(tx_kb=10, rx_kb=20), state, T0 + 4_000)[0]  # exporter restarted
    assert restarted.health is not None
    assert restarted.health.pcie_tx_bytes_s is None and restarted.health.pcie_rx_bytes_s is None
    after = read(page(tx_kb=110, rx_kb=20), state, T0 + 5_000)[0]
    assert after.health is not None and after.health.pcie_tx_bytes_s == 100 * 1024
    assert after.health.pcie_rx_bytes_s == 0.0


def test_the_xid_gauge_counts_each_change_to_a_new_code() -> None:
    state = DcgmState()
    seen = [read(page(xid=x), state, T0 + i * 1000)[0].health for i, x in enumerate(
        (13, 13, 79, 79, 0, 79, 48))]  # fmt: skip
    assert all(h is not None for h in seen)
    first = seen[0]
    assert first is not None  # a code already there: the last one, uncounted, time unknown
    assert (first.last_xid, first.xid_counts, first.last_xid_ms) == (13, {}, None)
    third = seen[2]
    assert third is not None
    assert (third.last_xid, third.xid_counts, third.last_xid_ms) == (79, {"79": 1}, T0 + 2000)
    back_to_zero = seen[4]
    assert back_to_zero is not None  # an exporter restart: the gauge is 0, nothing new
    assert (back_to_zero.last_xid, back_to_zero.xid_counts) == (79, {"79": 1})
    last = seen[6]
    assert last is not None
    assert last.xid_counts == {"79": 2, "48": 1}
    assert (last.last_xid, last.last_xid_ms) == (48, T0 + 6000)


def test_xid_codes_counted_per_gpu_are_bounded() -> None:
    state = DcgmState()
    for code in range(1, MAX_XID_CODES + 10):
        gpu = read(page(xid=code), state, T0 + code)[0]
    assert gpu.health is not None and gpu.health.xid_counts is not None
    assert len(gpu.health.xid_counts) == MAX_XID_CODES
    assert gpu.health.last_xid == MAX_XID_CODES + 9


def test_state_keeps_only_the_gpus_of_the_last_page() -> None:
    state = DcgmState()
    read(page(), state, T0)
    assert set(state.gpus) == {("GPU-0a1b", ""), ("GPU-1c2d", "")}
    only_one = "\n".join(line for line in page().splitlines() if "GPU-1c2d" not in line)
    read(only_one, state, T0 + 1000)
    assert set(state.gpus) == {("GPU-0a1b", "")}


MIG = (
    'gpu="0",UUID="GPU-5e6f",device="nvidia0",modelName="NVIDIA A100-SXM4-40GB",'
    'Hostname="node-7",GPU_I_PROFILE="{profile}",GPU_I_ID="{gi}",container="",namespace="ns",pod="{pod}"'
)


def test_mig_instances_are_rows_of_their_own() -> None:
    text = "".join(
        f"DCGM_FI_DEV_FB_USED{{{MIG.format(profile=p, gi=gi, pod=pod)}}} {used}\n"
        f"DCGM_FI_DEV_FB_FREE{{{MIG.format(profile=p, gi=gi, pod=pod)}}} {4864 - used}\n"
        for p, gi, pod, used in (("3g.20gb", "1", "big", 3000), ("1g.5gb", "13", "", 12))
    )
    big, small = read(text, DcgmState(), T0)
    assert big.uuid == "GPU-5e6f/1" and small.uuid == "GPU-5e6f/13"
    assert big.detail == {
        "gpu_instance": "1", "gpu_instance_profile": "3g.20gb", "exporter_hostname": "node-7",
        "pod": "big", "namespace": "ns", "index": "0",
    }  # fmt: skip
    assert "pod" not in small.detail and small.detail["gpu_instance_profile"] == "1g.5gb"
    assert (big.used_memory, big.total_memory) == (3000 * MIB, 4864 * MIB)
    assert (small.used_memory, small.total_memory) == (12 * MIB, 4864 * MIB)
    assert big.health is None and big.hostname == "node-7"


def test_a_gpu_shared_by_pods_lists_them() -> None:
    labels = (
        'gpu="0",UUID="GPU-9",modelName="T4",Hostname="h",namespace="{ns}",pod="{pod}",'
        'container="c"'
    )
    text = "".join(
        f"DCGM_FI_DEV_GPU_UTIL{{{labels.format(ns=ns, pod=pod)}}} 50\n"
        for ns, pod in (("a", "p1"), ("b", "p2"), ("a", "p1"))
    )
    gpu = read(text, DcgmState(), T0)[0]
    assert (gpu.detail["pod"], gpu.detail["namespace"], gpu.detail["container"]) == (
        "p1,p2", "a,b", "c",
    )  # fmt: skip


def test_unknown_families_are_skipped_before_they_are_parsed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A tab-separated sample is outside the fast reader's shape: had it been parsed, the whole
    # page would have gone to the vendor's grammar.
    text = page() + 'dcgm_exporter_build_info{version="3.3.5"}\t1\n'

    def no_vendor(*args: object) -> object:
        raise AssertionError("the page went to the vendor's grammar")

    monkeypatch.setattr(parser, "_vendor", no_vendor)
    assert len(read(text, DcgmState(), T0)) == 2


def test_nan_values_are_no_reading_and_gpus_past_the_cap_are_refused() -> None:
    text = f"DCGM_FI_DEV_GPU_TEMP{{{GPU0}}} NaN\nDCGM_FI_DEV_GPU_UTIL{{{GPU0}}} 5\n"
    gpu = read(text, DcgmState(), T0)[0]
    assert gpu.temperature is None and gpu.utilization == 5.0
    many = "".join(f'DCGM_FI_DEV_GPU_UTIL{{gpu="{i}",UUID="GPU-{i}"}} 1\n' for i in range(5))
    with pytest.raises(OverLimit, match="over 4 GPUs"):
        read(many, DcgmState(), T0, PageLimits(lines=100, series=100, gpus=4, processes=1))


def test_detection_is_by_family_and_an_all_smi_page_is_not_dcgm() -> None:
    assert is_dcgm_page(page())
    assert not is_dcgm_page('all_smi_gpu_utilization{gpu="H100",gpu_uuid="GPU-1"} 5\n')
    assert not is_dcgm_page("# HELP DCGM_FI_DEV_GPU_UTIL only help, no samples\n")
    with pytest.raises(Exception, match="no all-smi metrics"):  # the all-smi reader's own error
        read_metrics("# HELP DCGM_FI_DEV_GPU_UTIL x\n", TARGET, frozenset({"gpus"}),
                     HOST_LIMITS, False)  # fmt: skip
