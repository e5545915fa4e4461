"""The Users page's CSV export (``x``), written by the shell, never the view model (issue #20;
all-smi's ``users-<ts>.csv`` in the cache dir): a 0600 file in ``$XDG_CACHE_HOME/allsmi/``
holding the page's table, its path on the message line; a symlink at the path is refused and
its target left alone."""

from __future__ import annotations

import csv
import io
import os
import stat
from datetime import UTC
from pathlib import Path

import pytest

from allsmi.adapters.simulation.simulator import ClusterSimulator, ClusterSpec
from allsmi.app.tui import LiveModel, export_dir
from allsmi.domain.model import SECTIONS
from allsmi.domain.screen import users_table

T0 = 1_776_513_600_000  # 2026-04-18T12:00:00Z
NAME = "users-20260418T120000Z.csv"


@pytest.fixture
def model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LiveModel:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    sim = ClusterSimulator(ClusterSpec(nodes=100, gpus_per_node=8))
    live = LiveModel(label="LIVE 100 hosts", tz=UTC, expected_hosts=sim.hosts)
    live.show(sim.frame(T0, SECTIONS))
    return live


def message_line(live: LiveModel) -> str:
    lines = ["".join(span.text for span in line) for line in live.lines(200, 60)]
    return lines[-3]  # message, status, key help


def test_x_on_the_users_page_writes_the_table_0600_and_says_where(
    model: LiveModel, tmp_path: Path
) -> None:
    model.key("V")
    model.key("t")  # the export keeps the page's sort
    model.key("x")
    path = tmp_path / "cache" / "allsmi" / NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert export_dir() == path.parent
    columns, rows = users_table(model.frame, model.view, model.expected_hosts)
    read = list(csv.reader(io.StringIO(path.read_text(), newline="")))
    assert read[0] == list(columns) and len(read) == len(rows) + 1 >= 4
    assert [r[0] for r in read[1:]] == [str(row[0]) for row in rows]
    assert read[1][columns.index("vram_bytes")] == str(rows[0][columns.index("vram_bytes")])
    assert str(path) in message_line(model) and model.notice is not None
    assert not model.quit and model.view.page == "users"
    model.key("down")  # the next key clears the message
    assert str(path) not in message_line(model)


def test_a_symlink_at_the_export_path_is_refused(model: LiveModel, tmp_path: Path) -> None:
    folder = tmp_path / "cache" / "allsmi"
    folder.mkdir(parents=True)
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    (folder / NAME).symlink_to(target)
    model.key("V")
    model.key("x")
    assert target.read_text() == "keep me\n"
    assert (folder / NAME).is_symlink()
    said = message_line(model)
    assert said.startswith("export failed: refusing to write through symlink") and NAME in said
    assert not [p for p in os.listdir(folder) if p != NAME]  # no temp file left behind


def test_x_elsewhere_exports_nothing(model: LiveModel, tmp_path: Path) -> None:
    model.key("x")
    assert not (tmp_path / "cache").exists() and model.notice is None
