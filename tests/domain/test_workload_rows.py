"""The workloads dcgm-exporter names per GPU (its Kubernetes pod labels, kept in the GPU's
``detail``) are listed where the process table would be when no process was collected: a
dcgm page has no processes, and the pod is what an operator asks for."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from allsmi.adapters.simulation.simulator import ClusterSimulator, ClusterSpec
from allsmi.domain.model import SECTIONS, Frame
from allsmi.domain.screen import Status, StyledLine, ViewState, render

T0 = 1_776_513_600_000
LIVE = Status(live_label="LIVE cluster", keys_help="h:Help q:Exit")
POD = {"namespace": "ml", "pod": "train-abc-0", "container": "trainer"}


def texts(lines: Sequence[StyledLine]) -> list[str]:
    return ["".join(span.text for span in line) for line in lines]


def cluster_frame(*, processes: bool) -> Frame:
    frame = ClusterSimulator(ClusterSpec(nodes=2, gpus_per_node=2)).frame(T0, SECTIONS)
    return frame if processes else attrs.evolve(frame, processes=None)


def with_pods(frame: Frame, every: int) -> Frame:
    """Every ``every``-th GPU of ``frame`` runs the pod (its detail gains the pod labels)."""
    assert frame.gpus is not None
    gpus = tuple(
        attrs.evolve(g, detail={**g.detail, **POD}) if n % every == 0 else g
        for n, g in enumerate(frame.gpus)
    )
    return attrs.evolve(frame, gpus=gpus)


def test_gpus_with_a_pod_are_listed_when_no_process_was_collected() -> None:
    frame = with_pods(cluster_frame(processes=False), every=2)
    shown = texts(render(frame, ViewState(), 200, 60, LIVE))
    header = next(i for i, line in enumerate(shown) if "WORKLOAD (namespace/pod)" in line)
    listed = [line for line in shown[header + 1 :] if "ml/train-abc-0" in line]
    assert frame.gpus is not None
    assert len(listed) == len(frame.gpus[::2])  # the GPUs with the pod, each once
    assert all("trainer" in line for line in listed)
    assert shown[header].startswith("HOST")  # the All tab of a cluster names the host


def test_no_workload_block_without_pods_or_where_processes_were_collected() -> None:
    for frame in (cluster_frame(processes=False), with_pods(cluster_frame(processes=True), 1)):
        assert not any(
            "WORKLOAD" in line for line in texts(render(frame, ViewState(), 200, 60, LIVE))
        )
