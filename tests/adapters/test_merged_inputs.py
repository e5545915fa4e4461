"""The inputs of a merged replay, as a careless or unlucky user gives them: a recording named
twice, a file of a set named beside the set, a file gone after the replay opened it (its
map and events are left out, the others' kept), hosts shared by several inputs, and the
message line's newest warning (docs/architecture.md §5.8)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from allsmi.adapters import wire
from allsmi.adapters.recording.merged import MergedSource
from allsmi.adapters.recording.sink import Codec
from allsmi.adapters.recording.source import RecordingSource
from allsmi.app.demo import write_demo
from allsmi.app.events import events_of
from allsmi.app.replay_map import MergedEvents, open_merged_map
from allsmi.domain.errors import RecordingUnreadable
from allsmi.domain.model import Frame, Header, Memory

from .recordings import T0, write_sink


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.ndjson.zst"
    write_demo(path)
    return path


def copies(demo: Path, where: Path, *names: str) -> list[Path]:
    where.mkdir(exist_ok=True)
    out = []
    for name in names:
        shutil.copyfile(demo, where / name)
        out.append(where / name)
    return out


def frames(path: Path) -> int:
    with RecordingSource(path) as source:
        return source.frame_count


def test_a_recording_named_twice_is_merged_once(tmp_path: Path) -> None:
    a = tmp_path / "a.ndjson.zst"
    write_sink(a, 30, Codec.ZSTD)
    for given in ([a, a], [a, tmp_path / "." / "a.ndjson.zst"], [tmp_path, a]):
        with MergedSource.open(given) as merged:
            assert merged.frame_count == frames(a), given
            assert not any("at once" in w for w in merged.warnings)


def test_a_file_of_a_set_named_beside_the_set_stands_for_the_whole_set(tmp_path: Path) -> None:
    active = tmp_path / "trace.ndjson.zst"
    write_sink(active, 300, Codec.ZSTD, max_size=2000, chunk_frames=20)
    member = tmp_path / "trace.0001.ndjson.zst"
    assert member.exists()
    whole = frames(active)
    assert frames(member) < whole
    for given in ([active, member], [member, active]):
        with MergedSource.open(given) as merged:
            assert merged.frame_count == whole, given


def test_an_input_gone_after_opening_leaves_the_others_events_and_maps(
    demo: Path, tmp_path: Path
) -> None:
    x, y, z = copies(demo, tmp_path / "ev", "x.ndjson.zst", "y.ndjson.zst", "z.ndjson.zst")
    with RecordingSource(x) as alone:
        each = len(events_of(alone))
    assert each > 0
    with MergedSource.open([x, y, z]) as merged:
        y.unlink()
        search = MergedEvents(merged)
        failure: str | None = None
        deadline = time.monotonic() + 60
        while not search.done and time.monotonic() < deadline:
            try:
                search.poll()
            except RecordingUnreadable as err:
                failure = str(err)
            time.sleep(0.01)
        search.close()
        assert search.done
        assert failure is not None and "y.ndjson.zst" in failure
        assert len(search.found) == 2 * each  # x's and z's: z is searched after y failed
        replay_map = open_merged_map(merged)
        while replay_map.building and time.monotonic() < deadline:
            replay_map.poll()
            time.sleep(0.01)
        assert replay_map.problem is not None and "y.ndjson.zst" in replay_map.problem
        counted = replay_map.summary.frames
        replay_map.close()
    assert counted == 2 * frames(x)  # x's map and z's, joined: z's was built after y failed


def plain_recording(path: Path, start_ms: int, hosts: tuple[str, ...], n: int = 10) -> Path:
    """A plain recording of ``n`` frames a second apart from ``start_ms``, ``hosts`` in each."""
    header = Header(source="remote", interval_ms=1000, hosts=hosts)
    lines = [wire.encode_line(header)]
    for i in range(n):
        memory = tuple(Memory(host_id=h, hostname=h, instance=h, used_bytes=i) for h in hosts)
        lines.append(wire.encode_line(Frame(t_ms=start_ms + i * 1000, seq=i, memory=memory)))
    path.write_bytes(b"".join(lines))
    return path


def test_a_host_shared_by_two_later_inputs_is_told_with_their_names(tmp_path: Path) -> None:
    # P holds h:1 alone early on; Q and R both hold it later, at once
    p = plain_recording(tmp_path / "p.ndjson", T0, ("h:1",))
    q = plain_recording(tmp_path / "q.ndjson", T0 + 100_000, ("h:1", "q:1"))
    r = plain_recording(tmp_path / "r.ndjson", T0 + 100_000, ("h:1", "r:1"))
    with MergedSource.open([p, q, r]) as merged:
        told = [w for w in merged.warnings if "at once" in w]
        assert told == [f"host h:1 is in {q} and {r} at once: the newer row is shown"]
        assert merged.warnings[0] == f"{p} (00:00:09 long) overlaps no other recording in time"


def test_the_newest_warning_is_last_whichever_input_or_the_merge_found_it(
    tmp_path: Path,
) -> None:
    a = plain_recording(tmp_path / "a.ndjson", T0, ("a:1",))
    b = plain_recording(tmp_path / "b.ndjson", T0, ("b:1",))
    with MergedSource.open([a, b]) as merged:
        merged.inputs[0].warnings.append("something read wrong")  # as a reader would add it
        assert merged.warnings[-1] == f"{a}: something read wrong"
        merged.inputs[1].warnings.append("later still")
        assert merged.warnings[-1] == f"{b}: later still"
        assert merged.warnings.count(f"{a}: something read wrong") == 1
