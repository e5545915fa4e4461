"""The alert footer and the ``A`` alert panel as an operator meets them on the demo
(issue #20): at the incident (node-03's GPUs go idle at 00:14:32, its power drops) the
message line names it and ``A`` lists node-03's drop, newest first; Esc closes the panel
and the replay goes on. A real terminal (tmux on its own socket), real keys, the installed
command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from allsmi.app.demo import write_demo

from .test_tui import replay
from .tmux import Tmux

ALERT_ROW = re.compile(r"^12:14:32 +node-03 +(GPU\d|-) +(util-drop|power-drop) ")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("alerts") / "cluster-incident.ndjson.zst"
    write_demo(path)
    return path


def alert_rows(screen: str) -> list[str]:
    return [line for line in screen.splitlines() if ALERT_ROW.match(line)]


@pytest.mark.parametrize("size", [(200, 60), (80, 24)])
def test_a_lists_node_03s_drop_at_the_incident(
    sessions: list[Tmux], demo: Path, size: tuple[int, int]
) -> None:
    session = replay(sessions, demo, width=size[0], height=size[1])
    session.send("g", *"00:16:00", "Enter")
    # the footer names the incident once the replay's scan has found it
    session.wait_for(lambda s: "REPLAY | 00:16:00 /" in s and "alert 12:14:32 node-03" in s)
    session.send("A")
    screen = session.wait_for(lambda s: "Alerts · " in s and len(alert_rows(s)) >= 2)
    kinds = {m.group(2) for row in alert_rows(screen) if (m := ALERT_ROW.match(row))}
    assert kinds == {"power-drop", "util-drop"}
    assert "newest first" in screen and "REPLAY | 00:16:00 /" in screen
    session.send("Escape")  # closes the panel; the replay stays open
    screen = session.wait_for(lambda s: "Alerts · " not in s)
    assert "REPLAY | 00:16:00 /" in screen


def test_before_the_incident_the_panel_lists_no_drop(sessions: list[Tmux], demo: Path) -> None:
    session = replay(sessions, demo, width=200, height=60)
    session.send("g", *"00:10:00", "Enter")
    session.wait_for("REPLAY | 00:10:00 /")
    session.send("A")
    screen = session.wait_for("Alerts · ")
    assert "Alerts · no alerts" in screen and alert_rows(screen) == []
