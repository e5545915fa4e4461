"""The Users and Topology pages as an operator meets them on the demo recording (issue #20):
``V`` lists node-03's user with its processes there; Enter drills into that user, then into
node-03, and lists its processes; Esc backs out level by level and then closes the page,
the replay still on; ``x`` exports the table and the message line says where; ``T`` shows
the demo's hosts without NVLink data. A real terminal (tmux on its own socket), real keys,
the installed command.

The demo's users are the simulator's (``inureyes``, ``yeonji``, ``mira``, ``root``, one per
node): the node-03 user and its process count are read here from the simulator itself."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from allsmi.adapters.simulation.simulator import ClusterSimulator
from allsmi.app.demo import DEMO_START_MS, demo_spec, write_demo
from allsmi.domain.model import SECTIONS

from .tmux import Tmux

NODE = "node-03"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("users") / "cluster-incident.ndjson.zst"
    write_demo(path)
    return path


@pytest.fixture(scope="module")
def node_03() -> tuple[str, int, list[str]]:
    """node-03's user, its processes on node-03, and every user of the demo by name."""
    frame = ClusterSimulator(demo_spec()).frame(DEMO_START_MS, SECTIONS)
    procs = [p for p in frame.processes or () if p.uses_gpu]
    (user,) = {p.user for p in procs if p.host_id == NODE}
    count = len({p.pid for p in procs if p.host_id == NODE and p.user == user})
    return str(user), count, sorted({str(p.user) for p in procs})


def replay(sessions: list[Tmux], path: Path, env: dict[str, str]) -> Tmux:
    session = Tmux(
        f"u{len(sessions)}", ["view", "--replay", str(path)], width=200, height=60, env=env
    )
    sessions.append(session)
    session.wait_for(lambda s: "REPLAY |" in s and "q:Exit" in s and "frame " in s)
    return session


def test_users_shows_node_03s_user_and_drills_into_its_processes(
    sessions: list[Tmux], demo: Path, node_03: tuple[str, int, list[str]], tmp_path: Path
) -> None:
    user, count, users = node_03
    session = replay(sessions, demo, {"XDG_CACHE_HOME": str(tmp_path)})
    session.send("V")
    screen = session.wait_for("Users · ")
    row = next(line for line in screen.splitlines() if line.startswith(user + " "))
    nodes, gpus, procs = (int(x) for x in row.split()[1:4])
    assert (nodes, gpus, procs) == (1, 8, count)  # one user a node in the demo
    session.send("u", *["Down"] * users.index(user), "Enter")  # by name, then to that user
    screen = session.wait_for(f"user {user} · 1 node")
    assert re.search(rf"^{NODE} +0-7 +{count} ", screen, re.M)
    session.send("Enter")
    screen = session.wait_for(f"user {user} on {NODE}")
    pids = [line for line in screen.splitlines() if re.match(r"^ +\d+ +\d+ +[\d.]+GiB", line)]
    assert len(pids) == count
    session.send("Escape")
    session.wait_for(lambda s: f"user {user} · 1 node" in s and f"on {NODE}" not in s)
    session.send("Escape")
    session.wait_for(lambda s: "Users · " in s)
    session.send("x")
    screen = session.wait_for("exported ")
    path = Path(re.search(r"exported \d+ users to (\S+\.csv)", screen).group(1))  # type: ignore[union-attr]
    assert path.parent == tmp_path / "allsmi" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().splitlines()[0].startswith("user,system,nodes,gpus,processes")
    session.send("Escape")
    screen = session.wait_for(lambda s: "Tabs: " in s and "Users · " not in s)
    assert "REPLAY | 00:00:00 /" in screen  # Esc closed the page, not the replay


def test_topology_shows_each_demo_hosts_links_or_no_nvlink_data(
    sessions: list[Tmux], demo: Path, tmp_path: Path
) -> None:
    """The demo's hosts as the simulator makes them: a matrix where their GPUs list NVLink
    links, ``no NVLink data`` where they list none."""
    frame = ClusterSimulator(demo_spec()).frame(DEMO_START_MS, SECTIONS)
    linked = {g.host_id for g in frame.gpus or () if g.nvlink_remote_devices}
    session = replay(sessions, demo, {"XDG_CACHE_HOME": str(tmp_path)})
    session.send("T")
    session.send("Right", "Right", "Right")  # node-03's tab
    screen = session.wait_for(lambda s: "Topology: " in s and s.count("NVLink · ") == 1)
    assert "NVLink · node-03" in screen
    rows = [line for line in screen.splitlines() if re.match(r"^GPU\d+ ", line)]
    if NODE in linked:
        assert len(rows) == 8
    else:
        assert "no NVLink data" in screen and not rows
    session.send("Left", "Left", "Left")  # the All tab: every host, in order
    screen = session.wait_for(lambda s: s.count("NVLink · ") == 4)
    titles = [line.split("·")[1].strip() for line in screen.splitlines() if "NVLink · " in line]
    assert titles == ["node-01", "node-02", "node-03", "node-04"]
    assert screen.count("no NVLink data") == 4 - len(linked)
