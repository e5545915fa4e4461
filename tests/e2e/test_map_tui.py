"""The recording's map as an operator meets it on the demo: the timeline strip shows where the
cluster went quiet, its playhead follows the keys, the node's sparklines show the drop, and a
gzip copy (no stored summaries: the map is built by the background pass) draws the same strip.
A real terminal (tmux on its own socket), real keys, the installed command."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from allsmi.app.demo import DEMO_LENGTH_MS, INCIDENT_AT_MS, write_demo
from allsmi.domain.history import GLYPHS, PENDING_GLYPH

from .test_tui import position, replay
from .tmux import Tmux

SGR = re.compile(r"\x1b\[([0-9;]*)m")
YELLOW, REVERSE = 33, 7


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("map") / "cluster-incident.ndjson.zst"
    write_demo(path)
    return path


@pytest.fixture(scope="module")
def demo_gzip(demo: Path) -> Path:
    """The same recording as one gzip member: no seek table, no stored summaries."""
    path = demo.with_name("cluster-incident.ndjson.gz")
    plain = subprocess.run(["zstd", "-dc", str(demo)], capture_output=True, check=True).stdout
    path.write_bytes(subprocess.run(["gzip", "-c"], input=plain, capture_output=True).stdout)
    return path


def strip_cells(styled: str) -> list[tuple[str, int | None, bool]]:
    """The strip (the line above the status line): each cell's glyph, foreground colour
    code and whether it is in reverse video."""
    lines = styled.splitlines()
    status = next(i for i, line in enumerate(lines) if "REPLAY |" in SGR.sub("", line))
    cells: list[tuple[str, int | None, bool]] = []
    fg: int | None = None
    reverse = False
    for token in re.split(r"(\x1b\[[0-9;]*m)", lines[status - 1]):
        found = SGR.fullmatch(token)
        if found is None:
            cells += [(ch, fg, reverse) for ch in token]
            continue
        codes = [int(c) for c in found.group(1).split(";") if c] or [0]
        for code in codes:
            if code == 0:
                fg, reverse = None, False
            elif code == REVERSE:
                reverse = True
            elif code == 27:
                reverse = False
            elif 30 <= code <= 37 or 90 <= code <= 97:
                fg = code
            elif code == 39:
                fg = None
    return cells


def strip_text(screen: str) -> str:
    lines = screen.splitlines()
    status = next(i for i, line in enumerate(lines) if "REPLAY |" in line)
    return lines[status - 1]


def mapped(session: Tmux, timeout: float = 60.0) -> Tmux:
    """The session once its map is built: no strip cell is pending any more (the map is
    read behind the replay, stored summaries included)."""
    session.wait_for(lambda s: "REPLAY |" in s and PENDING_GLYPH not in strip_text(s), timeout)
    return session


def playhead(session: Tmux) -> int:
    return next(i for i, (_, _, rev) in enumerate(strip_cells(session.styled())) if rev)


def cell_of(offset_ms: int, width: int) -> int:
    return offset_ms * width // DEMO_LENGTH_MS


@pytest.mark.parametrize("width", [200, 80])
def test_the_first_dimmed_cell_of_the_strip_holds_the_incident(
    sessions: list[Tmux], demo: Path, width: int
) -> None:
    session = mapped(replay(sessions, demo, width=width, height=50))
    cells = strip_cells(session.styled())
    assert len(cells) == width and all(glyph in GLYPHS for glyph, _, _ in cells)
    first_dim = next(i for i, (_, fg, _) in enumerate(cells) if fg == YELLOW)
    assert abs(first_dim - cell_of(INCIDENT_AT_MS, width)) <= 1


def test_the_playhead_moves_with_step_go_to_and_play(sessions: list[Tmux], demo: Path) -> None:
    session = mapped(replay(sessions, demo, width=200, height=50))
    assert playhead(session) == 0
    session.send("g", *"00:30:00", "Enter")
    session.wait_for("REPLAY | 00:30:00 /")
    assert playhead(session) == cell_of(1_800_000, 200) == 99
    session.send("]")
    session.wait_for("REPLAY | 00:30:01 /")
    assert playhead(session) == cell_of(1_801_000, 200) == 100
    session.send("+", "+", "+", "Space")  # 8x
    session.wait_for(lambda s: position(s) >= 1801 + 40)
    assert playhead(session) > 100


def test_the_nodes_sparklines_show_the_drop_when_paused_after_it(
    sessions: list[Tmux], demo: Path
) -> None:
    session = mapped(replay(sessions, demo, width=160, height=60))
    session.send("g", *"00:16:00", "Enter")
    session.wait_for("REPLAY | 00:16:00 /")
    session.send("Right", "Right", "Right")
    screen = session.wait_for("History of node-03")
    util = next(line for line in screen.splitlines() if line.startswith("GPU Util."))
    spark = util[len("GPU Util.") :].split()[0]
    assert float(util.split("%")[0].split()[-1]) < 5.0  # idle now
    assert spark[-5:] == GLYPHS[0] * 5  # the last minute: idle
    assert min(GLYPHS.index(g) for g in spark[:-10]) >= 4  # busy before the incident
    gpu_lines = [line for line in screen.splitlines() if re.match(r"GPU\d+ util ", line)]
    assert len(gpu_lines) == 8 and all(GLYPHS[0] * 5 in line for line in gpu_lines)


def test_a_gzip_copy_draws_the_same_strip_once_scanned_and_keys_answer_meanwhile(
    sessions: list[Tmux], demo: Path, demo_gzip: Path
) -> None:
    stored = strip_cells(mapped(replay(sessions, demo, width=200, height=50)).styled())
    session = replay(sessions, demo_gzip, width=200, height=50)
    session.send("]")  # keys answer whether the scan is still running or not
    session.wait_for("REPLAY | 00:00:01 /")
    mapped(session)
    session.send("[")
    session.wait_for("REPLAY | 00:00:00 /")
    assert strip_cells(session.styled()) == stored


def press_until(session: Tmux, key: str, wanted: str, timeout: float = 60.0) -> str:
    """Press ``key`` until the screen shows ``wanted`` (the events are found behind the
    replay: until then ``n`` says it is still looking)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        session.send(key)
        try:
            return session.wait_for(wanted, timeout=2.0)
        except pytest.fail.Exception:
            continue
    pytest.fail(f"{key!r} never led to {wanted!r}; the screen was:\n{session.screen()}")


def test_n_finds_the_incident_from_the_first_frame_and_n_shift_returns(
    sessions: list[Tmux], demo: Path
) -> None:
    session = replay(sessions, demo, width=160, height=50)
    screen = press_until(session, "n", "REPLAY | 00:14:32 /")
    assert "node-03" in message_line(screen)  # the message names the node
    assert "util-drop" in message_line(screen) and "paused" in screen
    session.send("n")
    after = session.wait_for(lambda s: position(s) > 872)  # the next event: the recovery
    assert "node-03" in message_line(after) and "util-back" in message_line(after)
    session.send("N")
    back = session.wait_for("REPLAY | 00:14:32 /")
    assert "util-drop" in message_line(back)


def message_line(screen: str) -> str:
    lines = screen.splitlines()
    status = next(i for i, line in enumerate(lines) if "REPLAY |" in line)
    return lines[status - 2]  # the message, then the strip, then the status line


# --------------------------------------------------------------------------- the event list


def event_rows(screen: str) -> list[str]:
    """The event list's lines (its title, then one event a line) as the screen shows them."""
    lines = screen.splitlines()
    title = next((i for i, line in enumerate(lines) if line.startswith("Events · ")), None)
    if title is None:
        return []
    return [line for line in lines[title + 1 :] if re.match(r"\d\d:\d\d:\d\d  ", line)]


def test_e_lists_the_incident_and_enter_goes_there_paused(sessions: list[Tmux], demo: Path) -> None:
    session = replay(sessions, demo, width=160, height=50)
    session.send("e")  # from the first frame, while the search may still run
    screen = session.wait_for(
        lambda s: any(r.startswith("00:14:32  node-03") for r in event_rows(s)), timeout=60
    )
    assert "Events · " in screen and "REPLAY | 00:00:00 /" in screen
    incident = next(r for r in event_rows(screen) if r.startswith("00:14:32  node-03"))
    assert "power-drop" in incident or "util-drop" in incident
    session.send("Home", "Enter")  # the first event: the incident
    after = session.wait_for(lambda s: "Events · " not in s and position(s) > 0)
    assert abs(position(after) - INCIDENT_AT_MS // 1000) <= 1 and "| paused |" in after
    assert "node-03" in message_line(after)


def strip_backgrounds(styled: str) -> list[int | None]:
    """The strip's cells' background colour codes (None: the terminal's own)."""
    lines = styled.splitlines()
    status = next(i for i, line in enumerate(lines) if "REPLAY |" in SGR.sub("", line))
    cells: list[int | None] = []
    bg: int | None = None
    for token in re.split(r"(\x1b\[[0-9;]*m)", lines[status - 1]):
        found = SGR.fullmatch(token)
        if found is None:
            cells += [bg] * len(token)
            continue
        for code in [int(c) for c in found.group(1).split(";") if c] or [0]:
            if code in (0, 49):
                bg = None
            elif 40 <= code <= 47 or 100 <= code <= 107:
                bg = code
    return cells


MAGENTA_BG = 45


def test_the_strip_marks_the_incidents_cell_and_the_playhead_stays_visible(
    sessions: list[Tmux], demo: Path
) -> None:
    session = mapped(replay(sessions, demo, width=200, height=50))
    styled = session.wait_for(lambda s: MAGENTA_BG in strip_backgrounds(s), 60, styled=True)
    marked = [i for i, bg in enumerate(strip_backgrounds(styled)) if bg == MAGENTA_BG]
    assert marked[0] == cell_of(INCIDENT_AT_MS, 200)  # the first event: 00:14:32
    cells = strip_cells(styled)
    assert [i for i, (_, _, rev) in enumerate(cells) if rev] == [0]  # the playhead still reads
    assert all(glyph in GLYPHS for glyph, _, _ in cells)  # a mark keeps the cell's glyph
