"""Sharded recording and the merged replay, with real parts: ``allsmi mock --spread`` serves
30 nodes on their own loopback addresses, three ``allsmi record --shard K/3`` recorders and
one recorder of the whole cluster scrape them at once, and the three shard files replayed
as one must be the whole cluster's recording, frame for frame (host rows, within one
interval) — in the reader and on a real terminal (tmux), keys and all."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from allsmi.adapters.recording.merged import MergedSource
from allsmi.adapters.recording.source import RecordingSource
from allsmi.domain.hosts import parse_hostfile, select_shard
from allsmi.domain.model import Frame, normalise_host_id
from allsmi.domain.sections import SECTION_BY_NAME, rows_of

from .conftest import frames_in, poll, run_allsmi, start_allsmi, start_loopback_mock
from .tmux import Tmux

NODES = 30
FAILING = 3  # the last three answer 503, hang, garbage: one errors event each
SHARDS = 3
INTERVAL_MS = 1000
RECORD_S = 8


@attrs.frozen
class Recorded:
    hosts: tuple[str, ...]  # the hostfile's targets
    shards: tuple[Path, ...]
    whole: Path


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    tmp = tmp_path_factory.mktemp("shards")
    hostfile = tmp / "hosts"
    mock = start_loopback_mock(
        hostfile, "--spread", "--nodes", str(NODES), "--failure-nodes", str(FAILING),
        "--interval", "1",
    )  # fmt: skip
    try:
        common = ("record", "--source", "remote", "--hostfile", str(hostfile), "--interval", "1")
        shards = tuple(tmp / f"shard-{k}.ndjson.zst" for k in range(1, SHARDS + 1))
        whole = tmp / "whole.ndjson.zst"
        procs = [
            start_allsmi(*common, "--shard", f"{k}/{SHARDS}", "-o", str(path))
            for k, path in enumerate(shards, start=1)
        ]
        procs.append(start_allsmi(*common, "-o", str(whole)))
        poll(lambda: all(frames_in(p) >= RECORD_S for p in (*shards, whole)), 60, "8 frames each")
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            _, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, err
        hosts = parse_hostfile(hostfile.read_text())
        yield Recorded(hosts, shards, whole)
    finally:
        mock.send_signal(signal.SIGTERM)
        mock.communicate(timeout=20)


def _rows_by_host(frame: Frame) -> dict[str, tuple[object, ...]]:
    """Each host's rows of every per-host section (its GPU rows first), as comparable data."""
    found: dict[str, list[object]] = {}
    for name in ("gpu", "cpu", "memory"):
        for row in rows_of(frame, SECTION_BY_NAME[name]) or ():
            found.setdefault(row.host_id, []).append(row)
    return {host: tuple(rows) for host, rows in found.items()}


def test_the_shards_split_the_hostfile_by_host_name(recorded: Recorded) -> None:
    """Each recorder holds its shard's hosts (sha256 of the host name, modulo 3), and the
    three together hold every host once."""
    seen: list[str] = []
    for k, path in enumerate(recorded.shards, start=1):
        with RecordingSource(path) as source:
            assert source.header is not None
            wanted = tuple(normalise_host_id(h) for h in select_shard(recorded.hosts, k, SHARDS))
            assert source.header.hosts == wanted
            assert wanted  # 30 hosts in 3 shards: none is empty
            seen += source.header.hosts
    assert sorted(seen) == sorted(normalise_host_id(h) for h in recorded.hosts)


def test_the_merged_shards_equal_the_whole_clusters_recording(recorded: Recorded) -> None:
    """At every frame of the whole recording where all shards were recording, the merged
    replay shows the same hosts, and each host's rows are the whole recording's at that
    frame or a neighbour (within one interval: the recorders scraped a moment apart)."""
    with (
        MergedSource.open(list(recorded.shards)) as merged,
        RecordingSource(recorded.whole) as whole,
    ):
        shard_spans = []
        for path in recorded.shards:
            with RecordingSource(path) as shard:
                shard_spans.append((shard.key_at(0), shard.key_at(shard.frame_count - 1)))
        start = max(first for first, _ in shard_spans)
        end = min(last for _, last in shard_spans)
        compared = 0
        for index in range(1, whole.frame_count - 1):  # each with a neighbour on both sides
            key = whole.key_at(index)
            if not start <= key <= end:
                continue
            at = merged.index_at_or_before(key)
            shown = merged.frame(at)
            assert abs(merged.time_at(at) - whole.time_at(index)) <= INTERVAL_MS
            expected = whole.frame(index)
            assert set(shown.hosts()) == set(expected.hosts())
            near = [
                _rows_by_host(whole.frame(i))
                for i in range(max(0, index - 1), min(whole.frame_count, index + 2))
            ]
            for host, rows in _rows_by_host(shown).items():
                assert any(rows == each.get(host) for each in near), host
            # the failing nodes: their errors are in the merge as in the whole recording
            assert {e.split(": ")[0] for e in shown.errors} == {
                e.split(": ")[0] for e in expected.errors
            }
            compared += 1
        assert compared >= RECORD_S - 4  # the shards started and stopped a moment apart


def test_the_merged_replay_in_a_terminal(recorded: Recorded, sessions: list[Tmux]) -> None:
    """As a user: every host of the three shards is a tab; `g` to a time, `]` and `N`/`n`
    move across the shards' frames and events."""
    session = Tmux("merged", ["view", "--replay", *map(str, recorded.shards)], width=160, height=50)
    sessions.append(session)
    session.wait_for(lambda s: "REPLAY |" in s and "q:Exit" in s)
    frames = sum(frames_in(p) for p in recorded.shards)
    screen = session.wait_for(f"frame 1/{frames}")
    # `g` to a second past the start: every shard has a frame there, so every host shows
    session.send("g", *"00:00:03", "Enter")
    screen = session.wait_for(lambda s: "REPLAY | 00:00:03 /" in s)
    assert f"Nodes {NODES - FAILING}/{NODES}" in screen  # the failing ones report no rows
    # `]` steps one merged frame: the next shard's frame (its own time), not one shard's next
    before = _frame_number(screen)
    session.send("]")
    screen = session.wait_for(lambda s: _frame_number(s) == before + 1)
    # every host is a tab: → walks them, and each shard's hosts come up
    names: set[str] = set()
    for _ in range(NODES):
        session.send("Right")
        screen = session.wait_for(lambda s: _tab(s) not in names | {None})
        tab = _tab(screen)
        assert tab is not None
        names.add(tab)
    assert len(names) == NODES
    # `N` from later on goes back to the failing hosts' errors, which each shard's file holds
    session.send("g", *"00:00:05", "Enter")
    session.wait_for("REPLAY | 00:00:05 /")
    session.send("N")
    screen = session.wait_for(lambda s: "REPLAY | 00:00:00 /" in s and "errors" in s)
    # on the All tab the event list holds the three failing hosts' events, one from each
    # shard's file
    session.send(*["Left"] * NODES)
    session.wait_for("History · last")
    session.send("e")
    screen = session.wait_for(lambda s: "Events ·" in s and s.count("errors") >= FAILING)
    failing = [normalise_host_id(h) for h in recorded.hosts[-FAILING:]]
    for host in failing:
        assert host in screen


def _frame_number(screen: str) -> int:
    found = re.search(r"frame (\d+)/", screen)
    return int(found.group(1)) if found else -1


def _tab(screen: str) -> str | None:
    """The host whose tab is selected (its history panel names it)."""
    found = re.search(r"History of (\S+) ·", screen)
    return found.group(1) if found else None


def test_several_paths_with_follow_is_one_clear_error(recorded: Recorded) -> None:
    result = run_allsmi("view", "--replay", *map(str, recorded.shards), "--follow")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "allsmi view: --follow follows one recording, not several merged"
    )
