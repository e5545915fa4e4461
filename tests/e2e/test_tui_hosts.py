"""The All tab's host rows, sorting and the filter as an operator meets them on the demo
(issue #20): at 00:20:00 node-03 (idle since 00:14:32, its memory still held) is listed
first and highlighted, at 00:05:00 it is not; ``u`` sorts the GPUs by utilization;
``/ node-02 Enter`` leaves only node-02's rows. A real terminal (tmux on its own socket),
real keys, the installed command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from allsmi.app.demo import write_demo

from .test_tui import replay
from .tmux import Tmux

SGR = re.compile(r"\x1b\[([0-9;]*)m")
HOST_ROW = re.compile(r"^(node-\d+) +8 +[\d.]+%")
YELLOW_BG = "43"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hosts") / "cluster-incident.ndjson.zst"
    write_demo(path)
    return path


def go_to(session: Tmux, timecode: str) -> str:
    session.send("g", *timecode, "Enter")
    return session.wait_for(f"REPLAY | {timecode} /")


def host_rows(screen: str) -> list[str]:
    return [m.group(1) for line in screen.splitlines() if (m := HOST_ROW.match(line))]


def highlighted(styled: str, host: str) -> bool:
    """Whether the host's row is drawn on a yellow background."""
    for line in styled.splitlines():
        if HOST_ROW.match(SGR.sub("", line)) and SGR.sub("", line).startswith(host + " "):
            codes = {c for found in SGR.findall(line) for c in found.split(";")}
            return YELLOW_BG in codes
    raise AssertionError(f"no row of {host}")


def test_node_03_is_first_and_highlighted_during_the_incident_only(
    sessions: list[Tmux], demo: Path
) -> None:
    session = replay(sessions, demo, width=200, height=60)
    screen = go_to(session, "00:05:00")
    assert host_rows(screen) == ["node-01", "node-02", "node-03", "node-04"]
    assert not highlighted(session.styled(), "node-03")
    screen = go_to(session, "00:20:00")
    assert host_rows(screen) == ["node-03", "node-01", "node-02", "node-04"]
    assert "idle but allocated: 8 GPUs" in screen and "(1 in trouble, first)" in screen
    styled = session.styled()
    assert highlighted(styled, "node-03") and not highlighted(styled, "node-01")


def test_u_sorts_the_gpus_by_utilization(sessions: list[Tmux], demo: Path) -> None:
    session = replay(sessions, demo, width=200, height=60)
    go_to(session, "00:10:00")
    session.send("u")
    screen = session.wait_for("GPUs by utilization")
    utils = [
        float(m.group(1))
        for line in screen.splitlines()
        if line.startswith("GPU ") and (m := re.search(r"Util: *(\d+\.\d)%", line))
    ]
    assert len(utils) >= 10 and utils == sorted(utils, reverse=True)
    hosts = {m.group(1) for line in screen.splitlines() if (m := re.search(r"@ (node-\d+)", line))}
    assert len(hosts) > 1  # one list across the hosts
    assert "REPLAY | 00:10:00 /" in screen  # `u` did not move the replay


def test_slash_node_02_enter_leaves_only_node_02(sessions: list[Tmux], demo: Path) -> None:
    session = replay(sessions, demo, width=200, height=60)
    go_to(session, "00:10:00")
    session.send("/", *"node-02")  # n, e: the filter's text here, not the replay's keys
    session.wait_for("filter: node-02_")
    session.send("Enter")
    screen = session.wait_for('filter "node-02": 1 host, 8 GPUs')
    body = [line for line in screen.splitlines() if not line.startswith("Tabs:")]
    named = [line for line in body if re.search(r"\bnode-\d+", line)]
    assert len(named) >= 10
    assert all(set(re.findall(r"\bnode-\d+", line)) == {"node-02"} for line in named)
    assert host_rows(screen) == ["node-02"] and "REPLAY | 00:10:00 /" in screen
    session.send("Escape")  # clears the filter; the replay goes on
    screen = session.wait_for(lambda s: len(host_rows(s)) == 4)
    assert "REPLAY |" in screen
