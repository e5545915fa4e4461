"""The simulator's NVLink topology (``ClusterSpec.nvlink``, docs/recording-format.md §5.3.1):
an SXM board's GPUs list their links to NVSwitches, a PCIe board's none, and turning it on
changes nothing else of a frame."""

from __future__ import annotations

import attrs
import pytest

from allsmi.adapters import wire
from allsmi.adapters.simulation.simulator import ClusterSimulator, ClusterSpec, Incident
from allsmi.domain.model import SECTIONS, Frame, NvLinkRemoteDevice

T0 = 1_776_513_600_000  # 2026-04-18T12:00:00.000Z
STEP_MS = 1000


def frames(spec: ClusterSpec, steps: int) -> list[Frame]:
    sim = ClusterSimulator(spec)
    out = []
    for n in range(steps):
        if n:
            sim.advance(STEP_MS)
        out.append(sim.frame(T0 + n * STEP_MS, SECTIONS))
    return out


def without_links(frame: Frame) -> Frame:
    gpus = tuple(attrs.evolve(g, nvlink_remote_devices=()) for g in frame.gpus or ())
    return attrs.evolve(frame, gpus=gpus)


def test_every_gpu_of_an_hgx_h200_node_lists_18_active_links_to_nvswitches() -> None:
    (frame,) = frames(ClusterSpec(nodes=2, nvlink=True), 1)

    switches = tuple(NvLinkRemoteDevice(link, "switch", state="active") for link in range(18))
    assert frame.gpus is not None and len(frame.gpus) == 16
    assert {gpu.nvlink_remote_devices for gpu in frame.gpus} == {switches}


@pytest.mark.parametrize(
    ("gpu_name", "links"),
    [("NVIDIA A100-SXM4-80GB", 12), ("NVIDIA B200 192GB HBM3e", 18), ("NVIDIA L40S 48GB", 0)],
)
def test_the_link_count_follows_the_board_and_a_pcie_board_has_none(
    gpu_name: str, links: int
) -> None:
    (frame,) = frames(ClusterSpec(nodes=1, gpu_name=gpu_name, nvlink=True), 1)

    assert frame.gpus is not None
    assert {len(gpu.nvlink_remote_devices) for gpu in frame.gpus} == {links}


def test_without_the_flag_no_gpu_lists_links() -> None:
    (frame,) = frames(ClusterSpec(nodes=2), 1)

    assert frame.gpus is not None
    assert {gpu.nvlink_remote_devices for gpu in frame.gpus} == {()}


def test_turning_links_on_changes_nothing_else_of_any_frame() -> None:
    incident = Incident(host_index=1, start_ms=T0 + 2000, end_ms=T0 + 5000, kind="gpu_idle")
    spec = ClusterSpec(nodes=3, incidents=(incident,), health=True)

    plain = frames(spec, 8)
    linked = frames(attrs.evolve(spec, nvlink=True), 8)

    assert [wire.encode_line(without_links(f)) for f in linked] == [
        wire.encode_line(f) for f in plain
    ]
    assert all(len(gpu.nvlink_remote_devices) == 18 for f in linked for gpu in f.gpus or ())
