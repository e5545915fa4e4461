"""dcgm-exporter's and node_exporter's series read back from a Prometheus server
(``query_range`` answers written here) into the rows the scraper gives for the same pages:
the pair of one host's two targets as one host, counters into rates and XID counts across
instants in order (the lead instant before a run, the state carried from the run before, a
seek), ``up == 0`` of a dcgm target as its error, and only the families the readers map
asked for."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import anyio
import pytest

from allsmi.adapters.network.scrape import HOST_LIMITS, RemoteConfig, pair_ids
from allsmi.adapters.network.server import Request, Response, Stream
from allsmi.adapters.prometheus.exposition import plain_samples
from allsmi.adapters.prometheus.history import (
    Carried,
    RangeSeries,
    Run,
    family_regex,
    frames_of,
    sections_of,
)
from allsmi.app.from_prometheus import Window, history_header, plan
from allsmi.app.remote import build_remote_source
from allsmi.domain.model import Frame

from .test_dcgm_page import page as dcgm_page
from .test_node_page import FIRST, REST, SECOND, cpu_lines, modes
from .test_remote import serving

T0: Final = 1_776_513_600_000
STEP: Final = 30_000
GPU_T, NODE_T = "gpu-01:9400", "gpu-01:9100"
INCLUDE: Final = ("gpu", "cpu", "memory", "storage")
PROM = "text/plain; version=0.0.4; charset=utf-8"
THIRD = {0: modes(1012, 12, 530, 220), 1: modes(2054, 0, 54, 22)}


def dcgm_pages() -> list[str]:
    """Three scrapes of one dcgm-exporter: PCIe counters moving, XID 79 at the second."""
    return [
        dcgm_page(tx_kb=1_000, rx_kb=4_000, xid=0),
        dcgm_page(tx_kb=4_000, rx_kb=4_600, xid=79),
        dcgm_page(tx_kb=7_000, rx_kb=5_200, xid=79),
    ]


def node_pages() -> list[str]:
    return [cpu_lines(cores) + REST for cores in (FIRST, SECOND, THIRD)]


def series_of(target: str, pages: Sequence[str | None], *, start: int = T0) -> list[RangeSeries]:
    """What a Prometheus scraping ``target`` every :data:`STEP` from ``start`` holds of
    ``pages`` (None: a failed scrape), as ``query_range`` gives it: ``instance`` and ``job``
    added, empty labels gone (Prometheus stores none), values as text."""
    points: dict[tuple[str, tuple[tuple[str, str], ...]], list[list[object]]] = {}
    for index, text in enumerate(pages):
        for name, labels, value in plain_samples(text or ""):
            kept = {k: v for k, v in labels.items() if v}
            key = (name, tuple(sorted(kept.items())))
            points.setdefault(key, []).append([(start + index * STEP) / 1000, str(value)])
    return [
        RangeSeries({"__name__": name, **dict(labels), "instance": target, "job": "gpu"}, found)
        for (name, labels), found in points.items()
    ]


def up_of(target: str, values: Sequence[str], *, start: int = T0) -> RangeSeries:
    found: list[list[object]] = [[(start + i * STEP) / 1000, v] for i, v in enumerate(values)]
    return RangeSeries({"__name__": "up", "instance": target, "job": "gpu"}, found)


PAIRS: Final = pair_ids((GPU_T, NODE_T))


def both(pages: int = 3) -> list[RangeSeries]:
    return series_of(GPU_T, dcgm_pages()[:pages]) + series_of(NODE_T, node_pages()[:pages])


def read_back(series: list[RangeSeries], count: int = 3) -> list[Frame]:
    instants = range(T0, T0 + count * STEP, STEP)
    return list(frames_of(series, [], instants, (GPU_T, NODE_T), INCLUDE, HOST_LIMITS,
                          pairs=PAIRS))  # fmt: skip


def rows(frame: Frame) -> tuple[object, ...]:
    return (frame.gpus, frame.cpus, frame.memory, frame.storage, frame.errors)


# --------------------------------------------------------------------------- as scraped


def test_exporter_pages_read_back_from_prometheus_are_the_rows_the_scraper_gives() -> None:
    dcgm_texts, node_texts = iter(dcgm_pages()), iter(node_pages())

    async def dcgm_exporter(request: Request) -> Response | Stream:
        if request.path != "/metrics":
            return Response(404, b"404 page not found\n")
        return Response(200, next(dcgm_texts).encode(), content_type=PROM)

    async def node_exporter(request: Request) -> Response | Stream:
        if request.path != "/metrics":
            return Response(404, b"404 page not found\n")
        return Response(200, next(node_texts).encode(), content_type=PROM)

    live: list[Frame] = []
    targets: list[str] = []

    async def main() -> None:
        async with serving(dcgm_exporter, node_exporter) as found:
            targets.extend(found)
            source = build_remote_source(RemoteConfig(hosts=tuple(found), include=INCLUDE))
            try:
                for index in range(3):
                    live.append(await source.collect(T0 + index * STEP))
            finally:
                await source.aclose()

    anyio.run(main)
    gpu_target, node_target = targets
    series = series_of(gpu_target, dcgm_pages()) + series_of(node_target, node_pages())
    hosts = (gpu_target, node_target)
    instants = range(T0, T0 + 3 * STEP, STEP)
    replayed = list(frames_of(series, [], instants, hosts, INCLUDE, HOST_LIMITS,
                              pairs=pair_ids(hosts)))  # fmt: skip
    assert [rows(f) for f in replayed] == [rows(f) for f in live]
    # what the comparison covers: one host, rates from the 2nd instant, the XID counted
    last = replayed[2]
    assert last.hosts() == (gpu_target,)
    assert last.cpus is not None and last.cpus[0].utilization is not None
    assert last.gpus is not None and last.gpus[0].health is not None
    health = last.gpus[0].health
    assert health.pcie_tx_bytes_s == 3_000 * 1024 / 30 and health.xid_counts == {"79": 1}
    assert health.last_xid_ms == T0 + STEP and health.clock_events == ("hw_slowdown", "hw_thermal")
    assert last.gpus[0].detail["pod"] == "train-0"  # the workload, as on the page


# --------------------------------------------------------------------------- across instants


def run_of(series: list[RangeSeries], first: int, carried: Carried | None = None) -> Run:
    return Run(series, [], (GPU_T, NODE_T), INCLUDE, HOST_LIMITS, pairs=PAIRS,
               first_ms=first, step_ms=STEP, carried=carried)  # fmt: skip


def test_a_runs_first_instant_has_rates_over_the_lead_instant_before_it() -> None:
    first = T0 + STEP  # the run begins at the 2nd instant: the 1st is its lead instant
    led = run_of(both(), first).frame(first)
    assert led.cpus is not None and led.cpus[0].utilization == pytest.approx(100 * 26 / 60)
    assert led.gpus is not None and led.gpus[0].health is not None
    assert led.gpus[0].health.pcie_tx_bytes_s == 3_000 * 1024 / 30
    # without the lead instant's points the first frame has no rate, as a first scrape
    alone = run_of(series_of(GPU_T, [None, *dcgm_pages()[1:]]) +
                   series_of(NODE_T, [None, *node_pages()[1:]]), first).frame(first)  # fmt: skip
    assert alone.cpus is not None and alone.cpus[0].utilization is None
    assert alone.gpus is not None and alone.gpus[0].health is not None
    assert alone.gpus[0].health.pcie_tx_bytes_s is None


def test_a_seek_within_a_run_gives_the_frame_playing_on_would() -> None:
    played = read_back(both())
    run = run_of(both(), T0)
    assert rows(run.frame(T0 + 2 * STEP)) == rows(played[2])  # straight to the last
    assert rows(run.frame(T0)) == rows(played[0])  # back: folded again from the start
    assert rows(run.frame(T0 + STEP)) == rows(played[1])
    assert rows(run.frame(T0 + STEP)) == rows(played[1])  # the same instant twice


def test_xids_are_counted_on_from_the_run_before_when_its_state_is_carried() -> None:
    xids = [dcgm_page(xid=x) for x in (0, 79, 79, 31)]
    series = series_of(GPU_T, xids)
    before = run_of(series, T0)
    for t in (T0, T0 + STEP):
        before.frame(t)
    carried = before.carried()
    assert carried is not None and carried.at_ms == T0 + STEP
    on = run_of(series, T0 + 2 * STEP, carried=carried)
    later = [on.frame(T0 + i * STEP).gpus for i in (2, 3)]
    assert [g[0].health.xid_counts for g in later if g and g[0].health] == [
        {"79": 1},
        {"79": 1, "31": 1},
    ]
    # a run without the state before it counts from its lead instant: 79 was there already
    fresh = run_of(series, T0 + 2 * STEP).frame(T0 + 2 * STEP).gpus
    assert fresh and fresh[0].health is not None
    assert fresh[0].health.xid_counts == {} and fresh[0].health.last_xid == 79
    assert fresh[0].health.last_xid_ms is None  # seen before the run: when is unknown
    # a state that did not end right before the run is not taken
    stray = run_of(series, T0 + 3 * STEP, carried=carried).frame(T0 + 3 * STEP).gpus
    assert stray and stray[0].health is not None and stray[0].health.xid_counts == {"31": 1}


def test_up_of_zero_for_a_dcgm_target_is_its_error_and_its_pair_keeps_its_rows() -> None:
    series = series_of(GPU_T, [dcgm_pages()[0], None, dcgm_pages()[2]]) + series_of(
        NODE_T, node_pages()
    )
    up = [up_of(GPU_T, ["1", "0", "1"]), up_of(NODE_T, ["1", "1", "1"])]
    found = list(frames_of(series, up, range(T0, T0 + 3 * STEP, STEP), (GPU_T, NODE_T),
                           INCLUDE, HOST_LIMITS, pairs=PAIRS))  # fmt: skip
    assert [f.errors for f in found] == [(), (f"{GPU_T}: down in Prometheus (up == 0)",), ()]
    assert found[1].gpus == () and found[1].cpus and found[1].cpus[0].host_id == GPU_T
    # the state is kept over the failed scrape: the next rate is over both steps
    back = found[2].gpus
    assert back and back[0].health is not None
    assert back[0].health.pcie_tx_bytes_s == 6_000 * 1024 / 60


def test_a_pairs_second_target_giving_the_same_section_is_a_host_of_its_own() -> None:
    other = "gpu-01:9401"  # a second dcgm-exporter on the host: not the node's other half
    pairs = pair_ids((GPU_T, other))
    series = series_of(GPU_T, dcgm_pages()[:1]) + series_of(other, dcgm_pages()[:1])
    (frame,) = frames_of(series, [], [T0], (GPU_T, other), INCLUDE, HOST_LIMITS, pairs=pairs)
    assert frame.errors == ()
    assert frame.gpus is not None
    ids = [g.host_id for g in frame.gpus]
    assert set(ids) == {GPU_T, other} and ids.count(GPU_T) == ids.count(other)  # none lost


def test_only_the_families_the_readers_map_are_asked_for() -> None:
    gpu = family_regex(("gpu",)).split("|")
    assert "DCGM_FI_DEV_GPU_UTIL" in gpu and "DCGM_FI_DEV_CLOCKS_EVENT_REASONS" in gpu
    assert "DCGM_FI_DEV_VGPU_LICENSE_STATUS" not in gpu  # on pages, not read
    assert not any(name.startswith("node_") for name in gpu)
    cpu = family_regex(("cpu",)).split("|")
    assert {"node_cpu_seconds_total", "node_load1", "node_uname_info"} <= set(cpu)
    assert not any(n.startswith(("node_memory", "node_filesystem", "DCGM_")) for n in cpu)
    assert "node_scrape_collector_success" not in family_regex(INCLUDE).split("|")
    names = ["DCGM_FI_DEV_GPU_TEMP", "node_memory_MemTotal_bytes", "node_uname_info"]
    assert sections_of(names) == ("gpu", "memory")


# --------------------------------------------------------------------------- the plan


class FakeApi:
    """A query API answering ``series`` with ``listed``, noting each ``query_range``."""

    def __init__(self, listed: list[dict[str, str]]) -> None:
        self.listed = listed
        self.ranges: list[tuple[str, int, int, int]] = []

    async def series(self, selector: str, start_ms: int, end_ms: int) -> list[dict[str, str]]:
        return self.listed

    async def targets(self) -> dict[str, object]:
        return {}

    async def query_range(
        self, query: str, start_ms: int, end_ms: int, step_ms: int
    ) -> list[RangeSeries]:
        self.ranges.append((query, start_ms, end_ms, step_ms))
        return []


def test_a_pair_is_one_host_under_its_dcgm_targets_id_and_runs_ask_for_the_lead_instant() -> None:
    listed = [
        {"__name__": "node_cpu_seconds_total", "instance": NODE_T, "cpu": "0", "mode": "idle"},
        {"__name__": "DCGM_FI_DEV_GPU_UTIL", "instance": GPU_T, "gpu": "0"},
        {"__name__": "all_smi_gpu_utilization", "instance": "n2:9090"},
    ]
    api = FakeApi(listed)
    window = Window("http://p:9090", T0, T0 + 10 * STEP, STEP, None, INCLUDE)

    async def main() -> None:
        history = await plan(api, window, points_per_query=30)  # type: ignore[arg-type]
        # gpu-01:9100 sorts first, yet the pair's id is its GPU exporter's, as scraped live
        # from a hostfile listing it first; an all-smi target keeps its own id
        assert history.pairs == {GPU_T: GPU_T, NODE_T: GPU_T}
        assert history_header(history, T0).hosts == (GPU_T, "n2:9090")
        assert history.per_query == 30 // 3 - 1  # the lead instant is one point more a series
        await history.fetch(api, history.grid[:3])  # type: ignore[arg-type]

    anyio.run(main)
    assert [r[1:] for r in api.ranges] == [(T0 - STEP, T0 + 2 * STEP, STEP)] * 2
