"""Frames from a Prometheus server's series (``query_range`` answers), as plain data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from allsmi.adapters.network.scrape import HOST_LIMITS
from allsmi.adapters.prometheus.history import (
    RangeSeries,
    family_regex,
    frames_of,
    page_labels,
    sections_of,
)
from allsmi.adapters.prometheus.parser import PageLimits
from allsmi.domain.model import Frame

T0: Final = 1_776_513_600_000
A, B = "10.0.0.1:9090", "10.0.0.2:9090"
UUID = "GPU-aaaa"


def gpu_series(host: str, name: str, values: list[str], *, start: int = T0) -> RangeSeries:
    labels = {
        "__name__": name,
        "instance": host,
        "exported_instance": f"node-{host[-6]}",
        "job": "gpu",
        "gpu": "NVIDIA H100",
        "gpu_index": "0",
        "gpu_uuid": f"{UUID}-{host[-6]}",
    }
    return RangeSeries(labels, points(values, start=start))


def points(values: list[str], *, start: int = T0, step: int = 1000) -> list[list[object]]:
    """As the API writes them: ``[seconds, "value"]``."""
    return [[(start + i * step) / 1000, v] for i, v in enumerate(values)]


def up_series(host: str, values: list[str]) -> RangeSeries:
    labels = {"__name__": "up", "instance": host, "job": "gpu"}
    return RangeSeries(labels, points(values))


def frames(
    series: list[RangeSeries],
    up: Sequence[RangeSeries] = (),
    count: int = 3,
    hosts: tuple[str, ...] = (A, B),
    limits: PageLimits = HOST_LIMITS,
) -> list[Frame]:
    instants = range(T0, T0 + count * 1000, 1000)
    return list(frames_of(series, list(up), instants, hosts, ("gpu",), limits))


def test_each_instant_is_a_frame_of_each_hosts_samples_as_its_page_had_them() -> None:
    found = frames(
        [
            gpu_series(A, "all_smi_gpu_utilization", ["10", "20.5", "30"]),
            gpu_series(A, "all_smi_gpu_temperature_celsius", ["50", "51", "52"]),
            gpu_series(B, "all_smi_gpu_utilization", ["90", "91", "92"]),
        ]
    )
    assert [f.t_ms for f in found] == [T0, T0 + 1000, T0 + 2000]
    second = found[1]
    assert second.source == "remote" and second.errors == ()
    assert second.gpus is not None
    rows = {g.host_id: g for g in second.gpus}
    assert rows[A].utilization == 20.5 and rows[A].temperature == 51
    assert rows[B].utilization == 91.0 and rows[B].temperature is None
    # the exporter's own instance label (renamed by Prometheus) is the page's instance again
    assert rows[A].instance == "node-1" and rows[A].uuid == f"{UUID}-1"
    assert "job" not in rows[A].detail  # a label Prometheus added is no page label


def test_up_of_zero_is_that_hosts_error_and_its_rows_are_left_out() -> None:
    found = frames(
        [gpu_series(A, "all_smi_gpu_utilization", ["10", "20", "30"])],
        [up_series(A, ["1", "0", "1"]), up_series(B, ["0", "0", "0"])],
        hosts=(A,),
    )
    assert [f.errors for f in found] == [(), (f"{A}: down in Prometheus (up == 0)",), ()]
    assert found[1].gpus == ()  # collected, none: the section is known, the host is down


def test_a_missing_point_is_no_row_and_nan_is_no_reading() -> None:
    series = gpu_series(A, "all_smi_gpu_utilization", ["10", "NaN"])
    series = RangeSeries(series.labels, points(["10", "NaN"], step=2000))  # nothing at T0+1s
    found = frames([series], hosts=(A,))
    assert [len(f.gpus or ()) for f in found] == [1, 0, 1]
    assert found[2].gpus is not None and found[2].gpus[0].utilization is None


def test_a_host_past_a_cap_is_its_own_error() -> None:
    tight = PageLimits(lines=10, series=1, gpus=1, processes=1, rows=1)
    found = frames(
        [
            gpu_series(A, "all_smi_gpu_utilization", ["1"]),
            gpu_series(A, "all_smi_gpu_temperature_celsius", ["2"]),
            gpu_series(B, "all_smi_gpu_utilization", ["3"]),
        ],
        count=1,
        limits=tight,
    )
    assert found[0].errors == (f"{A}: over 1 series",)
    assert found[0].gpus is not None and [g.host_id for g in found[0].gpus] == [B]


def test_series_of_hosts_not_asked_for_are_left_out() -> None:
    found = frames([gpu_series(B, "all_smi_gpu_utilization", ["1"])], count=1, hosts=(A,))
    assert found[0].gpus == ()


def test_labels_prometheus_added_are_dropped_and_renamed_ones_given_back() -> None:
    labels = {
        "__name__": "all_smi_cpu_utilization",
        "instance": "10.0.0.1:9090",
        "exported_instance": "node-1",
        "job": "gpu",
        "exported_job": "exporter",
        "cluster": "a",
        "hostname": "node-1",
    }
    assert page_labels(labels, {"job", "cluster"}) == {
        "instance": "node-1",
        "job": "exporter",
        "hostname": "node-1",
    }


def test_only_the_families_of_the_included_sections_are_asked_for() -> None:
    names = family_regex(("gpu",)).split("|")
    assert "all_smi_gpu_utilization" in names and "all_smi_up" in names
    assert not any(n.startswith("all_smi_cpu") for n in names)
    assert sections_of(names) == ("gpu",)
    assert sections_of(family_regex(("gpu", "memory", "storage")).split("|")) == (
        "gpu",
        "memory",
        "storage",
    )


def test_a_point_that_is_not_a_number_and_text_is_no_value() -> None:
    labels = {"__name__": "up", "instance": A}
    odd = RangeSeries(
        labels, [[T0 / 1000, 1], [(T0 + 1000) / 1000], "x", [(T0 + 3000) / 1000, "1"]]
    )
    assert odd.value_at(T0) is None  # a number, not text
    assert odd.value_at(T0 + 1000) is None  # no value at all
    assert RangeSeries(labels, [["soon", "1"]]).value_at(T0) is None  # not a time
    whole = RangeSeries(labels, [[T0 // 1000, "1"]])  # whole seconds come as integers
    assert whole.value_at(T0) == "1" and whole.value_at(T0 + 1) is None
