"""``allsmi events DIR``: a directory stands for the recordings in it — each rotated set once,
by its active name — each line naming its file; one that holds none is one line and exit 2;
``--follow`` takes one recording only. The installed command on recordings written by the
real sink."""

from __future__ import annotations

from pathlib import Path

from .conftest import assert_one_line_error, run_allsmi
from .test_events_cli import T0, cluster_recording, json_events
from .test_verify_merged_cli import rotated_cluster, segments_of


def test_a_directory_lists_every_recordings_events_each_naming_its_file(tmp_path: Path) -> None:
    folder = tmp_path / "shards"
    folder.mkdir()
    a = cluster_recording(folder / "a.ndjson.zst", "n3:9000", range(20, 40))
    b = cluster_recording(folder / "b.ndjson.zst", "n1:9000", range(5, 50), t0=T0 + 10_000)
    r = rotated_cluster(folder / "r.ndjson.zst", "n2:9000", range(70, 90), t0=T0 + 30_000)
    assert len(segments_of(folder, "r")) >= 3  # numbered segments beside the active file

    listed = json_events(str(folder))

    assert listed == json_events(str(a), str(b), str(r))  # the set once, by its active name
    assert {e["file"] for e in listed} == {str(a), str(b), str(r)}
    text = run_allsmi("events", str(folder))
    assert text.returncode == 0 and text.stderr == ""
    assert [line.split("  ")[0] for line in text.stdout.splitlines()] == [e["file"] for e in listed]


def test_a_directory_of_one_recording_still_names_its_file(tmp_path: Path) -> None:
    a = cluster_recording(tmp_path / "a.ndjson.zst", "n3:9000", range(20, 40))
    alone = json_events(str(a))

    listed = json_events(str(tmp_path))

    assert alone and listed == [{"file": str(a), **e} for e in alone]


def test_an_empty_directory_is_one_line_naming_it_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a recording\n")

    result = run_allsmi("events", str(tmp_path))

    line = assert_one_line_error(result, 2)
    assert line.startswith(f"allsmi events: {tmp_path} holds no recording")
    assert result.stdout == ""


def test_follow_of_a_directory_of_several_recordings_is_one_line_and_exit_2(
    tmp_path: Path,
) -> None:
    cluster_recording(tmp_path / "a.ndjson.zst", "n3:9000", range(20, 40))
    cluster_recording(tmp_path / "b.ndjson.zst", "n1:9000", range(5, 50))

    result = run_allsmi("events", "--follow", str(tmp_path))

    line = assert_one_line_error(result, 2)
    assert line == f"allsmi events: --follow follows one recording; {tmp_path} holds 2"
