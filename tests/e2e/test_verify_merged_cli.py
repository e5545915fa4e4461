"""``allsmi verify`` of several recordings, or a directory of them, as a user runs it: each
recording verified once under a line naming it (a rotated set once, by its active name), a
merged summary whose span, hosts, lone recordings and shared hosts follow from the inputs,
and the worst exit status, an unreadable input reported while the others are still verified.
The installed command on recordings written by the real sink."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.adapters.recording.source import RecordingSource
from allsmi.domain.model import Header
from allsmi.domain.parse import format_offset, format_rfc3339_ms

from ..adapters import recordings as rec
from .conftest import assert_one_line_error, run_allsmi
from .test_events_cli import HOSTS, T0, append, cluster_frame, cluster_recording


def rotated_cluster(path: Path, failing: str, lost: range, t0: int = T0) -> Path:
    """A three-host cluster recording of 120 frames, a second apart from ``t0``, rotated by
    the real sink into numbered segments; ``failing`` is lost in the frames of ``lost``."""
    header = Header(source="remote", interval_ms=1000, hosts=HOSTS, started_ms=t0)
    config = SinkConfig(
        path=path, codec=Codec.ZSTD, max_size=1500, max_files=100, chunk_max_frames=10
    )
    sink = RecordingSink(config, header)
    for i in range(120):
        append(sink, cluster_frame(i, failing=failing if i in lost else None, t0=t0))
        sink.flush()
    sink.close()
    return path


def segments_of(folder: Path, stem: str) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.startswith(f"{stem}."))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """a and b overlap in time and list the same hosts; the rotated set r overlaps both;
    c, an hour later, overlaps none (its hosts are the same, at another time)."""
    folder = tmp_path / "shards"
    folder.mkdir()
    cluster_recording(folder / "a.ndjson.zst", "n3:9000", range(20, 40))
    cluster_recording(folder / "b.ndjson.zst", "n1:9000", range(5, 50), t0=T0 + 10_000)
    cluster_recording(folder / "c.ndjson.zst", "n2:9000", range(0, 5), t0=T0 + 3_600_000)
    rotated_cluster(folder / "r.ndjson.zst", "n2:9000", range(70, 90), t0=T0 + 30_000)
    assert len(segments_of(folder, "r")) >= 3  # numbered segments beside the active file
    return folder


def headings(out: str) -> list[str]:
    return re.findall(r"^==> (.*) <==$", out, flags=re.MULTILINE)


def row(out: str, key: str) -> str:
    """The value of the merged summary's row ``key`` (the summary is the last block)."""
    merged = out[out.rindex("==> merged: ") :]
    found = re.search(rf"^{key}: *(.*)$", merged, flags=re.MULTILINE)
    assert found is not None, f"no {key} row in {merged!r}"
    return found.group(1)


def truth(paths: list[Path]) -> tuple[dict[str, tuple[int, int]], dict[str, tuple[str, ...]]]:
    """Each recording's span (first, last frame time) and header hosts, as the reader reads
    them."""
    spans: dict[str, tuple[int, int]] = {}
    hosts: dict[str, tuple[str, ...]] = {}
    for path in paths:
        with RecordingSource(path) as source:
            spans[str(path)] = (source.time_at(0), source.time_at(source.frame_count - 1))
            hosts[str(path)] = source.header.hosts if source.header else ()
    return spans, hosts


def test_a_directory_verifies_each_recording_once_a_rotated_set_by_its_active_name(
    folder: Path,
) -> None:
    result = run_allsmi("verify", str(folder))

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    names = ["a.ndjson.zst", "b.ndjson.zst", "c.ndjson.zst", "r.ndjson.zst"]
    assert headings(result.stdout) == [str(folder / n) for n in names] + ["merged: 4 recordings"]
    segments = segments_of(folder, "r")
    assert f"segments:   {len(segments)} (" in result.stdout  # the set is one recording
    assert row(result.stdout, "recordings") == "4 (4 OK)"
    assert result.stdout.endswith("\nOK\n")


def test_the_merged_summary_has_the_span_the_hosts_the_lone_ones_and_the_shared_hosts(
    folder: Path,
) -> None:
    paths = [folder / n for n in ("a.ndjson.zst", "b.ndjson.zst", "c.ndjson.zst", "r.ndjson.zst")]
    spans, hosts = truth(paths)

    result = run_allsmi("verify", str(folder))

    out = result.stdout
    first = min(s[0] for s in spans.values())
    last = max(s[1] for s in spans.values())
    assert row(out, "first") == format_rfc3339_ms(first)
    assert row(out, "last") == format_rfc3339_ms(last)
    assert row(out, "span") == format_offset(last - first)
    union = dict.fromkeys(h for listed in hosts.values() for h in listed)
    assert row(out, "hosts") == f"{len(union)} ({', '.join(union)})"

    def overlap(x: str, y: str) -> bool:
        return spans[x][0] <= spans[y][1] and spans[y][0] <= spans[x][1]

    alone = [p for p in spans if not any(overlap(p, q) for q in spans if q != p)]
    assert alone  # c, an hour later
    told = ", ".join(f"{p} ({format_offset(spans[p][1] - spans[p][0])} long)" for p in alone)
    assert row(out, "alone") == f"{len(alone)}: {told}"
    shared: dict[str, tuple[str, str]] = {}
    for x, y in itertools.combinations(spans, 2):
        for host in hosts[x]:
            if host in hosts[y] and overlap(x, y):
                shared.setdefault(host, (x, y))
    assert shared  # a, b and r share every host over overlapping spans; c shares none
    assert row(out, "shared") == f"{len(shared)} host(s) in two recordings at once"
    pairs: dict[tuple[str, str], list[str]] = {}
    for host, pair in shared.items():
        pairs.setdefault(pair, []).append(host)
    for (x, y), listed in pairs.items():
        assert f"\n  {x} and {y}: {', '.join(listed)}\n" in out


def test_recordings_that_overlap_in_time_and_share_no_host_name_none(tmp_path: Path) -> None:
    a = tmp_path / "a.ndjson.zst"
    b = tmp_path / "b.ndjson.zst"
    cluster_recording(a, "n3:9000", range(20, 40))
    rec.write_sink(b, 30, Codec.ZSTD)  # host h only, over a's first 30 s

    result = run_allsmi("verify", str(a), str(b))

    assert result.returncode == 0, result.stderr
    assert headings(result.stdout) == [str(a), str(b), "merged: 2 recordings"]
    assert row(result.stdout, "alone") == "none"
    assert row(result.stdout, "shared") == "none"
    assert row(result.stdout, "hosts") == f"{len(HOSTS) + 1} ({', '.join(HOSTS)}, h)"


def test_one_damaged_recording_exits_1_and_every_other_is_still_verified(folder: Path) -> None:
    damaged = folder / "d.ndjson"
    rec.crash_cut(damaged, 300, Codec.NONE, cut_into_last=0.1)  # a torn last line

    result = run_allsmi("verify", str(folder))

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"allsmi verify: damage found in {damaged}: ")
    assert "torn last line" in line
    assert len(headings(result.stdout)) == 6  # a, b, c, d, r and the merged summary
    verdicts = [v for v in result.stdout.splitlines() if v == "OK" or v.startswith("OK (")]
    assert len(verdicts) == 4  # a, b, c and r, each sound
    assert row(result.stdout, "recordings") == "5 (4 OK, 1 damaged)"
    assert result.stdout.endswith(f"\nDAMAGED: 1 of 5 recordings ({damaged})\n")


def test_one_unreadable_recording_exits_2_and_the_others_are_still_reported(
    folder: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "none.ndjson.zst"
    a, b = folder / "a.ndjson.zst", folder / "b.ndjson.zst"

    result = run_allsmi("verify", str(a), str(missing), str(b))

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("allsmi verify: ") and str(missing) in line
    out = result.stdout
    assert headings(out) == [str(a), str(missing), str(b), "merged: 3 recordings"]
    assert f"==> {missing} <==\nunreadable: " in out
    for path in (a, b):  # verified in full, before and after the unreadable one
        assert f"recording:  {path}\n" in out
    assert row(out, "recordings") == "3 (2 OK, 1 unreadable)"
    assert out.endswith(f"\nUNREADABLE: 1 of 3 recordings ({missing})\n")


def test_deep_structures_every_recording(folder: Path) -> None:
    result = run_allsmi("verify", "--deep", str(folder))

    assert result.returncode == 0, result.stderr
    assert result.stdout.count("deep:       every frame structured; 0 failed\n") == 4


def test_a_recording_named_twice_is_verified_once(folder: Path) -> None:
    a = folder / "a.ndjson.zst"

    result = run_allsmi("verify", str(folder), str(a))

    assert result.returncode == 0, result.stderr
    assert headings(result.stdout).count(str(a)) == 1
    assert row(result.stdout, "recordings") == "4 (4 OK)"


def test_an_empty_directory_is_one_line_naming_it_and_exit_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a recording\n")

    result = run_allsmi("verify", str(empty))

    line = assert_one_line_error(result, 2)
    assert line.startswith(f"allsmi verify: {empty} holds no recording")
    assert result.stdout == ""
