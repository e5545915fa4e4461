"""Sorting (``d u g v``, ``p c m``), the GPU-process filter (``f``) and the filter prompt
(``/``) as plain data, on a 100-host × 8-GPU frame at 200×60 and 80×24 (issue #20)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import attrs
import pytest

from allsmi.adapters.simulation.simulator import ClusterSimulator, ClusterSpec
from allsmi.app.tui import LiveModel
from allsmi.domain.model import SECTIONS, Frame
from allsmi.domain.screen import Status, StyledLine, ViewState, render, view_key, view_takes

T0 = 1_776_513_600_000
LIVE = Status(live_label="LIVE", keys_help="h:Help q:Exit")
SIZES = [(200, 60), (80, 24)]
UTIL = re.compile(r"Util: *(\d+\.\d)%")
GPU_HOST = re.compile(r"^GPU .* @ (\S+)")


def text(line: StyledLine) -> str:
    return "".join(span.text for span in line)


@pytest.fixture(scope="module")
def sim() -> ClusterSimulator:
    return ClusterSimulator(ClusterSpec(nodes=100, gpus_per_node=8))


@pytest.fixture(scope="module")
def frame(sim: ClusterSimulator) -> Frame:
    return sim.frame(T0, SECTIONS)


def keys(view: ViewState, *names: str) -> ViewState:
    for name in names:
        view = view_key(view, name, 101, 10)
    return view


def shown(frame: Frame, sim: ClusterSimulator, view: ViewState, size: tuple[int, int]) -> list[str]:
    return [text(line) for line in render(frame, view, *size, LIVE, expected_hosts=sim.hosts)]


def gpu_utils(lines: Sequence[str]) -> list[float]:
    return [float(m.group(1)) for t in lines if t.startswith("GPU ") and (m := UTIL.search(t))]


# --------------------------------------------------------------------------- keys


def test_the_sort_keys_set_the_sorts() -> None:
    assert keys(ViewState(), "u").gpu_sort == "util"
    assert keys(ViewState(), "g").gpu_sort == "memory"
    assert keys(ViewState(), "v").gpu_sort == "memory"  # the replay's key: g goes to a time
    assert keys(ViewState(), "u", "d").gpu_sort == "default"
    assert keys(ViewState(), "p").process_sort == "pid"
    assert keys(ViewState(), "c").process_sort == "cpu"
    assert keys(ViewState(), "c", "m").process_sort == "memory"
    assert keys(ViewState(), "f").gpu_processes and not keys(ViewState(), "f", "f").gpu_processes


def test_the_filter_prompt_takes_every_key_until_enter() -> None:
    typing = keys(ViewState(), "/", *"node", "-", "q", "h", "space", *["backspace"] * 3)
    assert typing.editing == "node-" and typing.filter == "" and not typing.help
    assert view_takes(typing, "q") and view_takes(typing, "j")
    applied = keys(typing, *"02", "enter")
    assert (applied.editing, applied.filter) == (None, "node-02")
    assert view_takes(applied, "esc") and not view_takes(applied, "q")
    reopened = keys(applied, "/")
    assert reopened.editing == "node-02"  # the prompt opens on the filter applied
    assert keys(reopened, "x", "esc") == attrs.evolve(applied, filter="")  # Esc clears it
    assert keys(applied, "esc").filter == ""
    assert not view_takes(ViewState(), "esc")


def test_live_esc_clears_the_filter_before_it_quits() -> None:
    model = LiveModel(label="LIVE", tz=ZoneInfo("UTC"))
    for name in ["/", "q", "enter"]:
        model.key(name)
    assert model.view.filter == "q" and not model.quit
    model.key("esc")
    assert model.view.filter == "" and not model.quit
    model.key("esc")
    assert model.quit


# --------------------------------------------------------------------------- sorting


@pytest.mark.parametrize("size", SIZES)
def test_u_sorts_a_hosts_gpus_by_utilization(
    sim: ClusterSimulator, frame: Frame, size: tuple[int, int]
) -> None:
    before = gpu_utils(shown(frame, sim, ViewState(tab=7), (size[0], 200)))
    after = gpu_utils(shown(frame, sim, keys(ViewState(tab=7), "u"), (size[0], 200)))
    assert len(after) == 8 and sorted(before, reverse=True) == after != before
    screen = shown(frame, sim, keys(ViewState(tab=7), "u"), size)
    assert any("GPUs by utilization" in t for t in screen)
    assert gpu_utils(screen) == after[: len(gpu_utils(screen))]


def test_u_sorts_the_all_tabs_gpus_across_hosts(sim: ClusterSimulator, frame: Frame) -> None:
    lines = shown(frame, sim, keys(ViewState(), "u"), (200, 2000))
    utils = gpu_utils(lines)
    assert len(utils) == 800 and utils == sorted(utils, reverse=True)
    hosts = [m.group(1) for t in lines if (m := GPU_HOST.match(t))]
    assert len(set(hosts[:8])) > 1  # hosts interleave: one list, not per host


def test_memory_sort_orders_by_vram_used(sim: ClusterSimulator, frame: Frame) -> None:
    lines = shown(frame, sim, keys(ViewState(tab=3), "v"), (200, 60))
    used = [float(m.group(1)) for t in lines if (m := re.search(r"VRAM: *([\d.]+)/", t))]
    assert len(used) == 8 and used == sorted(used, reverse=True)


@pytest.mark.parametrize(("key", "column"), [("p", "PID"), ("c", "CPU%")])
def test_process_sorts(sim: ClusterSimulator, frame: Frame, key: str, column: str) -> None:
    lines = shown(frame, sim, keys(ViewState(tab=9), key), (200, 200))
    head = next(i for i, t in enumerate(lines) if "COMMAND" in t)
    names = lines[head].split()
    at = names.index(column)
    values = [
        float(t.split()[at]) for t in lines[head + 1 :] if t.strip() and t.split()[0].isdigit()
    ]
    assert len(values) >= 8
    assert values == (sorted(values) if key == "p" else sorted(values, reverse=True))


def test_f_hides_processes_that_use_no_gpu(sim: ClusterSimulator, frame: Frame) -> None:
    procs = list(frame.processes or ())
    host = sim.hosts[2]
    at = next(i for i, p in enumerate(procs) if p.host_id == host)
    procs[at] = attrs.evolve(procs[at], uses_gpu=False, command="cpu-only-helper")
    mixed = attrs.evolve(frame, processes=tuple(procs))
    every = shown(mixed, sim, ViewState(tab=3), (200, 200))
    only = shown(mixed, sim, keys(ViewState(tab=3), "f"), (200, 200))
    assert any("cpu-only-helper" in t for t in every)
    assert not any("cpu-only-helper" in t for t in only)
    assert any("GPU processes only" in t for t in only)


# --------------------------------------------------------------------------- the filter


@pytest.mark.parametrize("size", SIZES)
def test_a_host_filter_leaves_only_that_hosts_rows(
    sim: ClusterSimulator, frame: Frame, size: tuple[int, int]
) -> None:
    view = keys(ViewState(), "/", *"node-05", "enter")
    lines = shown(frame, sim, view, size)
    body = [t for t in lines[4:-2] if not t.startswith("Tabs:")]
    assert any('filter "node-05": 1 host, 8 GPUs' in t for t in body) or size[0] < 110
    named = [t for t in body if re.search(r"\bnode-\d+", t)]
    assert named and all(re.findall(r"\bnode-\d+", t) == ["node-05"] for t in named)
    tall = shown(frame, sim, view, (size[0], 400))
    assert sum(t.startswith("GPU ") for t in tall) == 8
    assert [t.split()[0] for t in tall if re.match(r"node-\d+ +8 +[\d.]+%", t)] == ["node-05"]


def test_a_user_filter_leaves_that_users_gpus_and_processes(
    sim: ClusterSimulator, frame: Frame
) -> None:
    procs = frame.processes or ()
    user = procs[0].user
    assert user is not None
    theirs = {p.host_id for p in procs if p.user == user}
    lines = shown(frame, sim, keys(ViewState(), "/", *user, "enter"), (200, 4000))
    gpu_hosts = {m.group(1) for t in lines if (m := GPU_HOST.match(t))}
    assert gpu_hosts == theirs != set(sim.hosts)
    head = next(i for i, t in enumerate(lines) if "COMMAND" in t)
    rows = [t.split() for t in lines[head + 1 :] if t.startswith("node-")]
    assert rows and all(row[2] == user for row in rows)  # HOST PID USER …


def test_a_gpu_index_filter_leaves_that_index_on_every_host(
    sim: ClusterSimulator, frame: Frame
) -> None:
    lines = shown(frame, sim, keys(ViewState(), "/", *"gpu3", "enter"), (200, 4000))
    gpus = [t for t in lines if t.startswith("GPU ")]
    assert len(gpus) == 100 and all(t.startswith("GPU 3 ") for t in gpus)


def test_a_filter_matching_nothing_shows_no_rows(sim: ClusterSimulator, frame: Frame) -> None:
    lines = shown(frame, sim, keys(ViewState(), "/", *"zzz", "enter"), (80, 24))
    assert any('filter "zzz": 0 hosts, 0 GPUs' in t for t in lines)
    assert any(t.startswith("nothing matches the filter") for t in lines)
    assert not any(t.startswith(("GPU ", "CPU ", "HOST ", "node-")) for t in lines)


@pytest.mark.parametrize("size", SIZES)
def test_the_prompt_is_drawn_on_the_key_help_line(
    sim: ClusterSimulator, frame: Frame, size: tuple[int, int]
) -> None:
    lines = shown(frame, sim, keys(ViewState(), "/", *"node-0"), size)
    assert lines[-1].startswith("filter: node-0_  host, GPU name/index")
    assert len(lines) == size[1] and all(len(t) == size[0] for t in lines)
