"""The Topology page (``T``) as plain data at 200×60 and 80×24 on a 100-host × 8-GPU frame
(issue #20): a host's NVLink links as a GPU × link matrix, each cell the link's remote
device and state, from ``nvlink_remote_devices`` built here; ``no NVLink data`` without."""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import pairwise

import attrs
import pytest

from allsmi.adapters.simulation.simulator import ClusterSimulator, ClusterSpec
from allsmi.domain.model import SECTIONS, Frame, NvLinkRemoteDevice
from allsmi.domain.screen import Status, ViewState, render
from allsmi.domain.screen_rows import GREEN, RED

T0 = 1_776_513_600_000
LIVE = Status(live_label="LIVE", keys_help="h:Help q:Exit")
SIZES = [(200, 60), (80, 24)]
LINKS = 18
DOWN_LINK = 5  # on odd GPUs: not listed
INACTIVE_LINK = 9  # on GPUs 0 and 4: listed inactive
NAMES = {"gpu": "GPU", "switch": "SW", "ibmnpu": "NPU", "unknown": "?"}


@pytest.fixture(scope="module")
def sim() -> ClusterSimulator:
    return ClusterSimulator(ClusterSpec(nodes=100, gpus_per_node=8))


def down(gpu: int, link: int) -> bool:
    return (gpu % 2 == 1 and link == DOWN_LINK) or (gpu % 4 == 0 and link == INACTIVE_LINK)


def state(gpu: int, link: int) -> str | None:
    """Listed links: inactive, or active (or, on GPU 2, without a state: up)."""
    if gpu % 4 == 0 and link == INACTIVE_LINK:
        return "inactive"
    return None if gpu == 2 else "active"


def remote(gpu: int, link: int) -> str:
    return ("gpu", "switch", "ibmnpu", "unknown")[(gpu + link) % 4]


@pytest.fixture(scope="module")
def frame(sim: ClusterSimulator) -> Frame:
    """node-02's GPUs with 18 links each (link 5 of the odd GPUs not listed, link 9 of GPUs 0
    and 4 listed inactive); the other hosts' none."""
    plain = sim.frame(T0, SECTIONS)
    gpus = []
    for gpu in plain.gpus or ():
        if gpu.host_id != sim.hosts[1]:
            gpus.append(gpu)
            continue
        index = int(gpu.detail["index"])
        links = tuple(
            NvLinkRemoteDevice(link, remote(index, link), 26_562, state=state(index, link))
            for link in range(LINKS)
            if not (index % 2 and link == DOWN_LINK)
        )
        gpus.append(attrs.evolve(gpu, nvlink_remote_devices=links))
    return attrs.evolve(plain, gpus=tuple(gpus))


def screen(frame: Frame, view: ViewState, size: tuple[int, int], hosts: Sequence[str]):  # type: ignore[no-untyped-def]
    return render(frame, view, *size, LIVE, expected_hosts=tuple(hosts))


def cell_text(line: object, start: int, stop: int) -> str:
    return text(line)[start:stop].strip()


def style_at(line: object, at: int) -> object:
    for span in line:  # type: ignore[attr-defined]
        if at < len(span.text):
            return span.style
        at -= len(span.text)
    raise AssertionError("past the line")


def text(line: object) -> str:
    return "".join(span.text for span in line)  # type: ignore[attr-defined]


@pytest.mark.parametrize("size", SIZES)
def test_a_hosts_links_are_a_gpu_by_link_matrix(
    sim: ClusterSimulator, frame: Frame, size: tuple[int, int]
) -> None:
    lines = screen(frame, ViewState(page="topology", tab=2), size, sim.hosts)
    assert len(lines) == size[1] and all(
        sum(len(s.text) for s in line) == size[0] for line in lines
    )
    texts = [text(line) for line in lines]
    assert any(t.startswith("Topology: ") for t in texts)
    assert any(t.startswith(f"NVLink · {sim.hosts[1]}") for t in texts)
    rows = {int(m.group(1)): line for line in lines if (m := re.match(r"^GPU(\d+) ", text(line)))}
    assert sorted(rows) == list(range(8))
    header = next(t for t in texts if re.match(r"^ +L?0 +L?1 ", t))
    assert header.split()[LINKS - 1] in (str(LINKS - 1), f"L{LINKS - 1}")  # every link shown
    starts = [m.start() for m in re.finditer(r"L?\d+", header)][:LINKS]
    starts.append(starts[-1] + starts[1] - starts[0])  # the last cell's end
    for index, line in rows.items():
        cells = [(cell_text(line, a, b), style_at(line, a)) for a, b in pairwise(starts)]
        assert len(cells) == LINKS
        for link, (said, style) in enumerate(cells):
            if down(index, link):
                assert style == RED and said in ("down", "·")
            else:
                name = NAMES[remote(index, link)]
                assert style == GREEN
                assert said in (name, name[0])  # cut to a letter when narrow
    if size[0] >= 120:  # links up and their bandwidth after the matrix
        for index, row in rows.items():  # links up, and their bandwidth
            up = sum(1 for link in range(LINKS) if not down(index, link))
            assert text(row).rstrip().endswith(f"{up}  {up * 26.562:.1f}GB/s")


@pytest.mark.parametrize("size", SIZES)
def test_a_host_without_links_reads_no_nvlink_data(
    sim: ClusterSimulator, frame: Frame, size: tuple[int, int]
) -> None:
    texts = [
        text(line) for line in screen(frame, ViewState(page="topology", tab=3), size, sim.hosts)
    ]
    at = texts.index(next(t for t in texts if t.startswith(f"NVLink · {sim.hosts[2]}")))
    assert texts[at + 1].strip() == "no NVLink data"
    assert not any(re.match(r"^GPU\d+ ", t) for t in texts)


def test_the_all_tab_stacks_every_hosts_matrix(sim: ClusterSimulator, frame: Frame) -> None:
    texts = [text(line) for line in screen(frame, ViewState(page="topology"), (200, 60), sim.hosts)]
    titles = [t.split("·")[1].strip() for t in texts if t.startswith("NVLink · ")]
    assert titles == list(sim.hosts[: len(titles)]) and len(titles) >= 3
    assert sum(1 for t in texts if re.match(r"^GPU\d+ ", t)) == 8  # node-02's only


def test_a_single_host_frame_shows_its_matrix(sim: ClusterSimulator, frame: Frame) -> None:
    host = sim.hosts[1]
    one = attrs.evolve(
        frame,
        gpus=tuple(g for g in frame.gpus or () if g.host_id == host),
        cpus=None, memory=None, storage=None, processes=None, chassis=None,
    )  # fmt: skip
    texts = [text(line) for line in screen(one, ViewState(page="topology"), (80, 24), ())]
    assert sum(1 for t in texts if re.match(r"^GPU\d+ ", t)) == 8


def test_too_narrow_a_screen_cuts_the_links_and_says_so(
    sim: ClusterSimulator, frame: Frame
) -> None:
    lines = screen(frame, ViewState(page="topology", tab=2), (40, 24), sim.hosts)
    texts = [text(line) for line in lines]
    assert any("(links 0-" in t for t in texts)  # the title says what is cut
    header = next(t for t in texts if re.match(r"^ +L?0 +L?1 ", t))
    assert 0 < len(header.split()) < LINKS and all(len(t) == 40 for t in texts)
    row = next(t for t in texts if re.match(r"^GPU0 ", t))
    assert 0 < len(row.split()) - 1 < LINKS
