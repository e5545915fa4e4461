"""dcgm-exporter's and node_exporter's page shapes as the mock writes them: they parse with
prometheus_client's text parser, carry the documented families and label sets, and their own
counters move with the readings (PCIe KB from the rates, CPU seconds from the per-core load)."""

from __future__ import annotations

from typing import Final

import attrs
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from allsmi.adapters.prometheus.exporter_pages import (
    NODE_COLLECTORS,
    DcgmPage,
    NodePage,
    Workload,
    go_float,
    node_collectors,
)
from allsmi.adapters.simulation.simulator import ClusterSimulator, ClusterSpec, Incident
from allsmi.domain.model import CLOCK_EVENT_BITS, Gpu

T0: Final = 1_776_513_600_000
MIB: Final = 1024 * 1024
DCGM_DOCUMENTED: Final = (
    "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_DEV_MEM_COPY_UTIL",
    "DCGM_FI_DEV_FB_USED",
    "DCGM_FI_DEV_FB_FREE",
    "DCGM_FI_DEV_GPU_TEMP",
    "DCGM_FI_DEV_MEMORY_TEMP",
    "DCGM_FI_DEV_POWER_USAGE",
    "DCGM_FI_DEV_SM_CLOCK",
    "DCGM_FI_DEV_MEM_CLOCK",
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
    "DCGM_FI_DEV_PCIE_TX_THROUGHPUT",
    "DCGM_FI_DEV_PCIE_RX_THROUGHPUT",
    "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
    "DCGM_FI_DEV_XID_ERRORS",
    "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
    "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
    "DCGM_FI_DEV_ROW_REMAP_FAILURE",
    "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS",
    "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL",
    "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
    "DCGM_FI_DEV_POWER_VIOLATION",
    "DCGM_FI_DEV_THERMAL_VIOLATION",
    "DCGM_FI_DEV_ENC_UTIL",
    "DCGM_FI_DEV_DEC_UTIL",
)
DCGM_LABELS: Final = {
    "gpu",
    "UUID",
    "device",
    "modelName",
    "Hostname",
    "container",
    "namespace",
    "pod",
}
HEALTH_ONLY: Final = (
    "DCGM_FI_DEV_SM_CLOCK",
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
    "DCGM_FI_DEV_PCIE_TX_THROUGHPUT",
    "DCGM_FI_DEV_XID_ERRORS",
    "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS",
    "DCGM_FI_DEV_THERMAL_VIOLATION",
)
TRAIN: Final = Workload("ml", "train-abc-0", "trainer")


def samples(text: bytes) -> dict[str, list[Sample]]:
    """Every sample of a page by family name (counters keep the name the page gave them)."""
    out: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text.decode()):
        out.setdefault(family.name, []).extend(family.samples)
    return out


def by_gpu(page: dict[str, list[Sample]], family: str) -> dict[str, float]:
    """A dcgm family's values by the ``gpu`` label (the family may be a counter, whose
    samples prometheus_client names with or without ``_total``)."""
    found = page.get(family) or page.get(family.removesuffix("_TOTAL"), [])
    return {s.labels["gpu"]: s.value for s in found if s.name.startswith(family)}


def health_sim(*incidents: Incident, gpus: int = 4) -> ClusterSimulator:
    spec = ClusterSpec(nodes=1, gpus_per_node=gpus, seed=3, health=True, incidents=incidents)
    return ClusterSimulator(spec)


def gpu_rows(sim: ClusterSimulator, t_ms: int) -> tuple[Gpu, ...]:
    reading = sim.node_frame_parts(0, t_ms)
    assert reading is not None
    return reading.gpus


# -- dcgm-exporter


def test_dcgm_page_parses_and_has_every_documented_family_with_dcgms_labels() -> None:
    sim = health_sim()
    page = DcgmPage({0: TRAIN, 1: TRAIN})
    page.update(gpu_rows(sim, T0), T0)
    parsed = samples(page.render())
    for family in DCGM_DOCUMENTED:
        values = by_gpu(parsed, family)
        assert sorted(values) == ["0", "1", "2", "3"], family
    for family_samples in parsed.values():
        for sample in family_samples:
            assert set(sample.labels) >= DCGM_LABELS, sample
            gpu = sample.labels["gpu"]
            assert sample.labels["device"] == f"nvidia{gpu}"
            assert sample.labels["Hostname"] == "node-01"
            held = gpu in ("0", "1")
            assert sample.labels["pod"] == ("train-abc-0" if held else "")
            assert sample.labels["namespace"] == ("ml" if held else "")
            assert sample.labels["container"] == ("trainer" if held else "")


def test_dcgm_values_are_the_rows_in_dcgms_units() -> None:
    throttle = Incident(0, T0, T0 + 60_000, "throttle", gpu_index=2)
    xid = Incident(0, T0, None, "xid", gpu_index=1, xid=79)
    sim = health_sim(throttle, xid)
    rows = gpu_rows(sim, T0 + 1000)
    page = DcgmPage()
    page.update(rows, T0 + 1000)
    parsed = samples(page.render())
    for i, gpu in enumerate(rows):
        health = gpu.health
        assert health is not None and health.energy_j is not None
        key = str(i)
        assert gpu.used_memory is not None and gpu.total_memory is not None
        assert by_gpu(parsed, "DCGM_FI_DEV_FB_USED")[key] == gpu.used_memory // MIB
        free = (gpu.total_memory - gpu.used_memory) // MIB
        assert by_gpu(parsed, "DCGM_FI_DEV_FB_FREE")[key] == free
        energy = by_gpu(parsed, "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION")[key]
        assert energy == round(health.energy_j * 1000)
        assert by_gpu(parsed, "DCGM_FI_DEV_POWER_USAGE")[key] == gpu.power_consumption
        assert by_gpu(parsed, "DCGM_FI_DEV_SM_CLOCK")[key] == health.sm_clock_mhz
        mask = int(by_gpu(parsed, "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS")[key])
        names = tuple(name for bit, name in CLOCK_EVENT_BITS if mask & bit)
        assert names == health.clock_events
    assert by_gpu(parsed, "DCGM_FI_DEV_XID_ERRORS") == {"0": 0, "1": 79, "2": 0, "3": 0}
    assert int(by_gpu(parsed, "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS")["2"]) & 0x8  # HW slowdown


def test_dcgm_pcie_counters_accumulate_the_rates_in_kb() -> None:
    sim = health_sim()
    page = DcgmPage()
    page.update(gpu_rows(sim, T0), T0)
    first = samples(page.render())
    sim.advance(3000)
    rows = gpu_rows(sim, T0 + 3000)
    page.update(rows, T0 + 3000)
    page.update(rows, T0 + 3000)  # the same instant again moves nothing
    second = samples(page.render())
    for i, gpu in enumerate(rows):
        assert gpu.health is not None
        tx, rx = gpu.health.pcie_tx_bytes_s, gpu.health.pcie_rx_bytes_s
        assert tx is not None and rx is not None and rx > 0
        for family, rate in (
            ("DCGM_FI_DEV_PCIE_TX_THROUGHPUT", tx),
            ("DCGM_FI_DEV_PCIE_RX_THROUGHPUT", rx),
        ):
            grown = by_gpu(second, family)[str(i)] - by_gpu(first, family)[str(i)]
            assert abs(grown - rate * 3 / 1024) <= 1.0, family  # whole KB on the page


def test_a_gpu_without_health_shows_only_its_row_families() -> None:
    rows = tuple(attrs.evolve(g, health=None) for g in gpu_rows(health_sim(), T0))
    page = DcgmPage()
    page.update(rows, T0)
    parsed = samples(page.render())
    assert by_gpu(parsed, "DCGM_FI_DEV_GPU_UTIL")
    for family in HEALTH_ONLY:
        assert not by_gpu(parsed, family), family


# -- node_exporter


def node_sim() -> ClusterSimulator:
    return ClusterSimulator(ClusterSpec(nodes=1, cores_per_node=8, seed=4))


def node_update(page: NodePage, sim: ClusterSimulator, t_ms: int) -> list[float]:
    reading = sim.node_frame_parts(0, t_ms)
    assert reading is not None
    page.update(reading.cpus, reading.memory, reading.storage, t_ms)
    return [c.utilization or 0.0 for c in reading.cpus[0].per_core_utilization]


def cpu_seconds(parsed: dict[str, list[Sample]]) -> dict[tuple[str, str], float]:
    return {
        (s.labels["cpu"], s.labels["mode"]): s.value
        for s in parsed["node_cpu_seconds"]
        if s.name == "node_cpu_seconds_total"
    }


def test_node_page_parses_and_has_the_documented_families() -> None:
    sim = node_sim()
    page = NodePage("node-0001")
    node_update(page, sim, T0)
    parsed = samples(page.render())
    assert {"node_load1", "node_load5", "node_load15", "node_uname_info"} <= set(parsed)
    for field in ("MemTotal", "MemAvailable", "MemFree", "Buffers", "Cached", "SwapTotal"):
        assert f"node_memory_{field}_bytes" in parsed
    assert parsed["node_uname_info"][0].labels["nodename"] == "node-0001"
    modes = {mode for _, mode in cpu_seconds(parsed)}
    assert modes == {"user", "system", "idle", "iowait", "irq", "softirq", "steal", "nice"}
    assert {cpu for cpu, _ in cpu_seconds(parsed)} == {str(c) for c in range(8)}
    mounts = {s.labels["mountpoint"]: s.labels for s in parsed["node_filesystem_size_bytes"]}
    assert {"/", "/raid"} <= set(mounts)
    assert all(set(labels) == {"device", "fstype", "mountpoint"} for labels in mounts.values())
    reading = sim.node_frame_parts(0, T0)
    assert reading is not None
    avail = {s.labels["mountpoint"]: s.value for s in parsed["node_filesystem_avail_bytes"]}
    for row in reading.storage:
        assert avail[row.mount_point] == row.available_bytes
    memory = reading.memory[0]
    assert parsed["node_memory_MemTotal_bytes"][0].value == memory.total_bytes
    assert parsed["node_load1"][0].value == (reading.cpus[0].load_average or (0.0,))[0]


def test_node_cpu_seconds_grow_as_the_per_core_utilization_says() -> None:
    sim = node_sim()
    page = NodePage("node-0001")
    node_update(page, sim, T0)
    before = cpu_seconds(samples(page.render()))
    for step in range(1, 21):  # readers take deltas between scrapes: check every one
        sim.advance(1000)
        util = node_update(page, sim, T0 + step * 1000)
        after = cpu_seconds(samples(page.render()))
        for core, expected in enumerate(util):
            cpu = str(core)
            delta = {
                mode: after[cpu, mode] - before[cpu, mode] for cpu_, mode in after if cpu_ == cpu
            }
            assert all(value >= 0 for value in delta.values())
            total = sum(delta.values())
            assert abs(total - 1.0) <= 0.05  # one second of this core, to the page's 0.01 s
            busy = 1.0 - (delta["idle"] + delta["iowait"]) / total
            assert abs(busy * 100 - expected) <= 3.0, (core, busy, expected)
        before = after


def test_node_counters_move_only_forward_in_time() -> None:
    sim = node_sim()
    page = NodePage("node-0001")
    node_update(page, sim, T0 + 5000)
    once = page.render()
    node_update(page, sim, T0 + 5000)
    node_update(page, sim, T0 + 1000)
    assert cpu_seconds(samples(page.render())) == cpu_seconds(samples(once))


@pytest.mark.parametrize(
    ("wanted", "families"),
    [
        (["cpu"], {"node_cpu_seconds"}),
        (["meminfo", "loadavg"], {"node_memory_MemTotal_bytes", "node_load1"}),
        (["filesystem", "uname"], {"node_filesystem_size_bytes", "node_uname_info"}),
    ],
)
def test_collect_parameters_keep_only_the_named_collectors(
    wanted: list[str], families: set[str]
) -> None:
    page = NodePage("node-0001")
    node_update(page, node_sim(), T0)
    query = "&".join(f"collect%5B%5D={name}" for name in wanted)
    collectors = node_collectors(query)
    assert collectors == frozenset(wanted)
    parsed = samples(page.render(collectors))
    node_families = {name for name in parsed if name.startswith("node_")}
    own = {"node_scrape_collector_success", "node_scrape_collector_duration_seconds"}
    own |= {"node_exporter_build_info"}
    assert families <= node_families
    everything = set(samples(page.render()))
    left_out = everything - set(parsed)
    assert left_out, "a filter that keeps everything"
    for name in node_families - own:
        prefix = {
            "cpu": "node_cpu_",
            "meminfo": "node_memory_",
            "loadavg": "node_load",
            "filesystem": "node_filesystem_",
            "uname": "node_uname_",
        }
        assert any(name.startswith(prefix[c]) for c in wanted), name
    reported = {s.labels["collector"] for s in parsed["node_scrape_collector_success"]}
    assert reported == set(wanted)


def test_no_collect_parameter_means_every_collector_and_an_unknown_one_is_refused() -> None:
    assert node_collectors("") is None
    assert node_collectors("format=text") is None
    with pytest.raises(ValueError, match="missing collector: gpu"):
        node_collectors("collect[]=cpu&collect[]=gpu")
    page = NodePage("node-0001")
    node_update(page, node_sim(), T0)
    reported = samples(page.render())["node_scrape_collector_success"]
    assert {s.labels["collector"] for s in reported} == set(NODE_COLLECTORS)


@pytest.mark.parametrize(
    ("value", "go"),
    [
        (0.52, "0.52"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (6.7108864e10, "6.7108864e+10"),
        (1e8, "1e+08"),
        (0.0001, "0.0001"),
        (2.1e-05, "2.1e-05"),
        (-3.0, "-3"),
        (0.0, "0"),
    ],
)
def test_numbers_are_written_as_go_writes_them(value: float, go: str) -> None:
    assert go_float(value) == go
