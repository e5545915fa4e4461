"""The Users page (``V``/``U``) as plain data, on a 100-host × 8-GPU frame at 200×60 and
80×24 (issue #20): each user's aggregates against ones computed here from the frame, a
shared GPU's power split evenly, the sort keys, ``f``, drill-down by user then host and back,
Slurm job ids from cgroup paths, and a dcgm-exporter frame's namespaces as its users."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence

import attrs
import pytest

from allsmi.adapters.simulation.simulator import ClusterSimulator, ClusterSpec
from allsmi.domain.model import SECTIONS, Frame, Gpu, GpuProcess
from allsmi.domain.screen import (
    Status,
    ViewState,
    exports_users,
    render,
    users_table,
    view_key,
    view_takes,
)
from allsmi.domain.screen_rows import binary
from allsmi.domain.users_view import (
    CSV_COLUMNS,
    elapsed_seconds,
    gpu_list,
    slurm_job,
    user_rows,
    users_data,
)

T0 = 1_776_513_600_000
LIVE = Status(live_label="LIVE", keys_help="h:Help q:Exit")
SIZES = [(200, 60), (80, 24)]
USER_ROW = re.compile(r"^(\S+) +(\d+) +(\d+) +(\d+) +(\S+) +(\S+) +(\S+) ")


@pytest.fixture(scope="module")
def sim() -> ClusterSimulator:
    return ClusterSimulator(ClusterSpec(nodes=100, gpus_per_node=8))


@pytest.fixture(scope="module")
def frame(sim: ClusterSimulator) -> Frame:
    return sim.frame(T0, SECTIONS)


def screen(frame: Frame, view: ViewState, size: tuple[int, int], hosts: Sequence[str]) -> list[str]:
    lines = render(frame, view, *size, LIVE, expected_hosts=tuple(hosts))
    return ["".join(span.text for span in line) for line in lines]


def table(lines: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """The user rows shown: user → (nodes, GPUs, procs, VRAM, power, longest)."""
    rows = {}
    for line in lines:
        found = USER_ROW.match(line)
        if found and found.group(2).isdigit() and found.group(1) != "USER":
            rows[found.group(1)] = found.groups()[1:]
    return rows


def keys(view: ViewState, frame: Frame, hosts: Sequence[str], *names: str) -> ViewState:
    for name in names:
        view = view_key(view, name, len(hosts) + 1, 10, frame=frame, expected_hosts=hosts)
    return view


def expected(frame: Frame) -> dict[str, dict[str, object]]:
    """Each user's aggregates, computed here from the frame's rows."""
    procs = [p for p in frame.processes or () if p.uses_gpu]
    users_on: dict[tuple[str, str], set[str]] = defaultdict(set)
    for p in procs:
        users_on[(p.host_id, p.device_uuid)].add(p.user or "?")
    power = {(g.host_id, g.uuid): g.power_consumption for g in frame.gpus or ()}
    out: dict[str, dict[str, object]] = {}
    for user in {p.user or "?" for p in procs}:
        mine = [p for p in procs if (p.user or "?") == user]
        gpus = {(p.host_id, p.device_uuid) for p in mine}
        watts = sum((power[g] or 0.0) / len(users_on[g]) for g in gpus)
        oldest = max(mine, key=lambda p: _secs(p.start_time)).start_time or ""
        h, m, s = (int(x) for x in oldest.split(":"))
        out[user] = {
            "nodes": len({p.host_id for p in mine}),
            "gpus": len(gpus),
            "procs": len({(p.host_id, p.pid) for p in mine}),
            "vram": sum(p.used_memory or 0 for p in mine),
            "power": watts,
            "longest": f"{h:02d}:{m:02d}:{s:02d}",
            "top": max(mine, key=lambda p: p.used_memory or 0).command,
        }
    return out


def _secs(text: str | None) -> int:
    parts = [int(x) for x in (text or "0").split(":")]
    total = 0
    for part in parts:
        total = total * 60 + part
    return total


# --------------------------------------------------------------------------- aggregates


@pytest.mark.parametrize("size", SIZES)
def test_each_users_row_matches_aggregates_computed_from_the_frame(
    sim: ClusterSimulator, frame: Frame, size: tuple[int, int]
) -> None:
    lines = screen(frame, ViewState(page="users"), size, sim.hosts)
    shown = table(lines)
    want = expected(frame)
    assert set(shown) == set(want) and len(want) >= 3
    for user, (nodes, gpus, procs, vram, power, longest) in shown.items():
        mine = want[user]
        assert (int(nodes), int(gpus), int(procs)) == (mine["nodes"], mine["gpus"], mine["procs"])
        assert vram == binary(mine["vram"])  # type: ignore[arg-type]
        assert power.endswith("kW") and abs(float(power[:-2]) - mine["power"] / 1000) <= 0.05  # type: ignore[operator]
        assert longest == mine["longest"]
    if size[0] >= 120:  # the whole command of the user's largest process
        for user, mine in want.items():
            line = next(t for t in lines if t.startswith(user + " "))
            assert line.rstrip().endswith(str(mine["top"]))


@pytest.mark.parametrize("size", SIZES)
def test_the_page_fits_the_screen_and_names_itself(
    sim: ClusterSimulator, frame: Frame, size: tuple[int, int]
) -> None:
    lines = screen(frame, ViewState(page="users"), size, sim.hosts)
    assert len(lines) == size[1] and all(len(line) == size[0] for line in lines)
    assert any(line.startswith("Users: ") for line in lines)  # the tab row says the page
    banner = next(line for line in lines if line.startswith("Users · "))
    assert f"{len(expected(frame))} users" in banner and "100/100 hosts reporting" in banner
    assert any(line.startswith("USER ") and "CMD (top-1 by GPU mem)" in line for line in lines)


def test_a_gpu_shared_by_two_users_splits_its_power_evenly(frame: Frame) -> None:
    host = frame.gpus[0].host_id  # type: ignore[index]
    gpus = [g for g in frame.gpus or () if g.host_id == host]
    procs = [p for p in frame.processes or () if p.host_id == host]
    owner = procs[0].user
    shared = gpus[3]
    guest = attrs.evolve(procs[0], pid=99_999, user="zed", device_id=3, device_uuid=shared.uuid)
    data = users_data([*procs, guest], gpus, 1)
    rows = {row.user: row for row in user_rows(data)}
    assert shared.power_consumption is not None
    assert rows["zed"].power == pytest.approx(shared.power_consumption / 2)
    whole = sum(g.power_consumption or 0.0 for g in gpus)
    assert rows[owner].power == pytest.approx(whole - shared.power_consumption / 2)  # type: ignore[index]
    assert (rows["zed"].gpus, rows["zed"].processes, rows["zed"].nodes) == (1, 1, 1)


def test_a_gpu_without_a_power_reading_adds_no_share(frame: Frame) -> None:
    host = frame.gpus[0].host_id  # type: ignore[index]
    gpus = [attrs.evolve(g, power_consumption=None) for g in frame.gpus or () if g.host_id == host]
    procs = [p for p in frame.processes or () if p.host_id == host]
    (row,) = user_rows(users_data(procs, gpus, 1))
    assert row.power is None
    lines = screen(attrs.evolve(frame, gpus=tuple(gpus), processes=tuple(procs)),
                   ViewState(page="users"), (200, 20), ())  # fmt: skip
    assert table(lines)[row.user][4] == "N/A"


# --------------------------------------------------------------------------- keys


def test_the_page_keys_open_and_close_it() -> None:
    assert keys(ViewState(), None, (), "V").page == "users"  # type: ignore[arg-type]
    assert keys(ViewState(), None, (), "U").page == "users"  # type: ignore[arg-type]
    assert keys(ViewState(), None, (), "V", "V").page == "gpus"  # type: ignore[arg-type]
    assert keys(ViewState(), None, (), "T").page == "topology"  # type: ignore[arg-type]
    assert keys(ViewState(), None, (), "V", "T").page == "topology"  # type: ignore[arg-type]
    users = ViewState(page="users")
    assert view_takes(users, "esc") and not view_takes(users, "q") and not view_takes(users, "n")
    assert keys(users, None, (), "esc").page == "gpus"  # type: ignore[arg-type]
    assert keys(ViewState(page="topology"), None, (), "esc").page == "gpus"  # type: ignore[arg-type]
    assert exports_users(users, "x") and not exports_users(ViewState(), "x")
    assert not exports_users(attrs.evolve(users, editing="ro"), "x")


@pytest.mark.parametrize(
    ("key", "order"),
    [
        ("u", lambda w: sorted(w)),
        ("m", lambda w: sorted(w, key=lambda u: (-w[u]["vram"], u))),
        ("p", lambda w: sorted(w, key=lambda u: (-w[u]["power"], u))),
        ("o", lambda w: sorted(w, key=lambda u: (-w[u]["nodes"], u))),
        ("t", lambda w: sorted(w, key=lambda u: (-_secs(w[u]["longest"]), u))),
    ],
)
def test_the_sort_keys_order_the_users(
    sim: ClusterSimulator, frame: Frame, key: str, order: object
) -> None:
    view = keys(ViewState(page="users"), frame, sim.hosts, key)
    shown = list(table(screen(frame, view, (200, 60), sim.hosts)))
    assert shown == order(expected(frame))  # type: ignore[operator]
    assert view.page == "users" and view.gpu_sort == "default"  # not the GPU sort


def test_f_hides_the_system_users(sim: ClusterSimulator, frame: Frame) -> None:
    shown = table(screen(frame, ViewState(page="users"), (200, 60), sim.hosts))
    assert "root" in shown
    view = keys(ViewState(page="users"), frame, sim.hosts, "f")
    hidden = table(screen(frame, view, (200, 60), sim.hosts))
    assert set(hidden) == set(shown) - {"root"}
    assert not view.gpu_processes  # `f` on this page is not the process filter


@pytest.mark.parametrize("size", SIZES)
def test_enter_drills_into_a_user_then_a_host_and_esc_backs_out(
    sim: ClusterSimulator, frame: Frame, size: tuple[int, int]
) -> None:
    view = keys(ViewState(page="users"), frame, sim.hosts, "u", "down")  # the second by name
    user = sorted(expected(frame))[1]
    view = keys(view, frame, sim.hosts, "enter")
    assert view.drill == (user,)
    lines = screen(frame, view, size, sim.hosts)
    mine = [p for p in frame.processes or () if p.user == user and p.uses_gpu]
    hosts = sorted({p.host_id for p in mine}, key=sim.hosts.index)
    banner = next(line for line in lines if line.startswith(f"user {user} · "))
    assert f"{len(hosts)} nodes" in banner
    listed = [line.split()[0] for line in lines if re.match(r"^node-\d+ ", line)]
    assert listed == hosts[: len(listed)] and len(listed) >= min(len(hosts), size[1] - 12)
    first = next(line for line in lines if line.startswith(hosts[0] + " "))
    on_first = [p for p in mine if p.host_id == hosts[0]]
    gpus = gpu_list(sorted({p.device_id for p in on_first}))
    assert first.split()[1:3] == [gpus, str(len({p.pid for p in on_first}))]
    view = keys(view, frame, sim.hosts, "enter")
    assert view.drill == (user, hosts[0])
    lines = screen(frame, view, size, sim.hosts)
    pids = [int(line.split()[0]) for line in lines if re.match(r"^ *\d+ +\d+ +[\d.]+GiB", line)]
    by_memory = sorted(on_first, key=lambda p: -(p.used_memory or 0))
    assert pids == [p.pid for p in by_memory]
    assert keys(view, frame, sim.hosts, "enter") == view  # nothing deeper
    back = keys(view, frame, sim.hosts, "esc")
    assert (back.drill, back.cursor) == ((user,), (1, 0))
    top = keys(back, frame, sim.hosts, "esc")
    assert (top.drill, top.cursor, top.page) == ((), (1,), "users")
    assert keys(top, frame, sim.hosts, "esc").page == "gpus"


def test_a_host_tab_shows_its_users_only(sim: ClusterSimulator, frame: Frame) -> None:
    host = sim.hosts[6]
    view = ViewState(page="users", tab=7)
    shown = table(screen(frame, view, (200, 60), sim.hosts))
    mine = [p for p in frame.processes or () if p.host_id == host and p.uses_gpu]
    assert set(shown) == {p.user for p in mine}
    assert sum(int(row[2]) for row in shown.values()) == len(mine)


def test_the_filter_narrows_the_users(sim: ClusterSimulator, frame: Frame) -> None:
    user = sorted(expected(frame))[0]
    view = ViewState(page="users", filter=user)
    lines = screen(frame, view, (200, 60), sim.hosts)
    assert list(table(lines)) == [user]
    assert any(f'filter "{user}"' in line for line in lines)


# --------------------------------------------------------------------------- data rules


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("07", 7), ("02:05", 125), ("01:02:03", 3723), ("120:00:01", 432001), ("05:06.5", 306)],
)
def test_elapsed_start_times_read_as_seconds(text: str, seconds: int) -> None:
    assert elapsed_seconds(text) == seconds


@pytest.mark.parametrize("text", [None, "", "yesterday", "1:2:3:4", "-5"])
def test_unreadable_start_times_are_unknown(text: str | None) -> None:
    assert elapsed_seconds(text) is None


def test_slurm_job_ids_come_from_the_cgroup_path() -> None:
    assert slurm_job("/system.slice/slurmstepd.scope/job_4242/step_0/user/task_0") == "4242"
    assert slurm_job("/slurm/uid_1000/job_17") == "17"
    assert slurm_job("/kubepods/burstable/pod1234") is None
    assert slurm_job("/slurm/job_12abc/step_0") is None
    assert slurm_job(None) is None


def test_the_jobs_column_is_empty_without_cgroup_paths(sim: ClusterSimulator, frame: Frame) -> None:
    """GpuProcess carries no cgroup path: JOBS reads ``-`` for every user."""
    lines = screen(frame, ViewState(page="users"), (200, 60), sim.hosts)
    header = next(line for line in lines if line.startswith("USER "))
    at = header.index("JOBS")
    rows = [line for line in lines if line.split(" ")[0] in expected(frame)]
    assert rows and all(line[at : at + 4].strip() == "-" for line in rows)


def test_a_frame_without_processes_says_so(sim: ClusterSimulator, frame: Frame) -> None:
    bare = attrs.evolve(frame, processes=None)
    lines = screen(bare, ViewState(page="users"), (80, 24), sim.hosts)
    assert any(line.startswith("no process data in this frame") for line in lines)


def pods(frame: Frame) -> Frame:
    """The frame as a dcgm-exporter cluster shows it: no processes, pods on the GPUs."""
    gpus: list[Gpu] = []
    for at, gpu in enumerate(frame.gpus or ()):
        if at % 4 == 3:  # a GPU serving no pod
            gpus.append(gpu)
            continue
        team = "ml-train" if at % 2 else "inference"
        pod = {"namespace": team, "pod": f"{team}-{at // 8}", "container": "main"}
        gpus.append(attrs.evolve(gpu, detail={**gpu.detail, **pod}))
    return attrs.evolve(frame, processes=None, gpus=tuple(gpus))


@pytest.mark.parametrize("size", SIZES)
def test_a_dcgm_frames_namespaces_are_its_users(
    sim: ClusterSimulator, frame: Frame, size: tuple[int, int]
) -> None:
    dcgm = pods(frame)
    lines = screen(dcgm, ViewState(page="users"), size, sim.hosts)
    assert any(line.startswith("NAMESPACE ") and " PODS" in line for line in lines)
    shown = table(lines)
    assert set(shown) == {"ml-train", "inference"}
    for team, row in shown.items():
        served = [g for g in dcgm.gpus or () if g.detail.get("namespace") == team]
        assert int(row[1]) == len(served)  # GPUs
        assert int(row[2]) == len({(g.host_id, g.detail["pod"]) for g in served})  # pods
        assert row[3] == binary(sum(g.used_memory or 0 for g in served))


def test_the_csv_table_is_the_pages_table(sim: ClusterSimulator, frame: Frame) -> None:
    view = ViewState(page="users", user_sort="user", hide_system=True)
    columns, rows = users_table(frame, view, sim.hosts)
    assert columns == CSV_COLUMNS
    want = expected(frame)
    assert [row[0] for row in rows] == sorted(u for u in want if u != "root")
    for row in rows:
        cells = dict(zip(columns, row, strict=True))
        mine = want[str(cells["user"])]
        assert (cells["nodes"], cells["gpus"], cells["processes"]) == (
            mine["nodes"], mine["gpus"], mine["procs"],
        )  # fmt: skip
        assert cells["vram_bytes"] == mine["vram"] and cells["slurm_jobs"] == ""
        assert cells["power_share_w"] == pytest.approx(mine["power"], abs=0.01)
        assert cells["longest_s"] == _secs(str(mine["longest"]))


def test_processes_without_a_gpu_are_not_counted(frame: Frame) -> None:
    host = frame.gpus[0].host_id  # type: ignore[index]
    gpus = [g for g in frame.gpus or () if g.host_id == host]
    procs: list[GpuProcess] = [p for p in frame.processes or () if p.host_id == host]
    idle = attrs.evolve(procs[0], pid=4, user="idler", uses_gpu=False)
    assert "idler" not in {row.user for row in user_rows(users_data([*procs, idle], gpus, 1))}
