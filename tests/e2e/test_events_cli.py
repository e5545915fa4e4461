"""``allsmi events`` as a script would run it: the demo's incident and its recovery named with
node-03, JSON a line at a time, the filters, a cluster recording whose hosts failed, and one
clear line for every bad input. The installed command on real recordings."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from allsmi.adapters import wire
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.app.demo import INCIDENT_AT_MS, write_demo
from allsmi.domain.model import Frame, Gpu, Header

from .conftest import assert_one_line_error, run_allsmi

T0 = 1_776_513_600_000


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("events") / "cluster-incident.ndjson.zst"
    write_demo(path)
    return path


def json_events(*args: str) -> list[dict[str, object]]:
    result = run_allsmi("events", *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    return [orjson.loads(line) for line in result.stdout.splitlines()]


def test_the_demo_lists_the_incident_and_its_recovery_on_node_03(demo: Path) -> None:
    result = run_allsmi("events", str(demo))
    assert result.returncode == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    drops = [line for line in lines if " util-drop " in line and " node-03 " in line]
    assert len(drops) == 8  # its eight GPUs
    assert all(line.startswith("00:14:32  2026-04-18 12:14:32 UTC") for line in drops)
    assert all("idle but allocated" in line for line in drops)
    backs = [line for line in lines if " util-back " in line and " node-03 " in line]
    assert len(backs) == 8 and all(line.startswith("00:25:") for line in backs)
    assert any(" power-drop " in line and " node-03 " in line for line in lines)


def test_json_is_one_event_a_line_with_its_fields(demo: Path) -> None:
    events = json_events(str(demo))
    first = next(e for e in events if e["kind"] == "util-drop")
    assert first["host"] == "node-03" and first["offset_ms"] == INCIDENT_AT_MS
    assert first["t"] == "2026-04-18T12:14:32.000Z" and first["gpu"] in range(8)
    assert all(set(e) == {"t", "offset_ms", "host", "gpu", "kind", "message"} for e in events)
    offsets = [e["offset_ms"] for e in events]
    assert offsets == sorted(offsets)  # type: ignore[type-var]


def test_the_filters_keep_what_they_name(demo: Path) -> None:
    everything = json_events(str(demo))
    mine = json_events(str(demo), "--host", "node-03", "--kind", "util-drop,util-back")
    assert mine == [
        e for e in everything if e["host"] == "node-03" and e["kind"] in ("util-drop", "util-back")
    ]
    later = json_events(str(demo), "--from", "00:20:00", "--to", "@12:30")
    assert later and all(
        1_200_000 <= int(str(e["offset_ms"])) <= 1_800_000 for e in later
    )  # 12:30 UTC is 30 min in
    assert not [e for e in later if e["kind"] == "util-drop" and e["host"] == "node-03"]


def test_hosts_that_failed_in_a_cluster_recording_are_listed(tmp_path: Path) -> None:
    hosts = ("n1:9000", "n2:9000", "n3:9000")
    path = tmp_path / "cluster.ndjson.zst"
    sink = RecordingSink(
        SinkConfig(path=path, codec=Codec.ZSTD),
        Header(source="remote", interval_ms=1000, hosts=hosts),
    )
    for i in range(60):
        failing = "n3:9000" if 20 <= i < 40 else None
        gpus = tuple(
            Gpu(f"{h}-0", "H100", "GPU", h, h, h, utilization=70.0) for h in hosts if h != failing
        )
        errors = (f"{failing}: timeout after 2.0 s",) if failing else ()
        frame = Frame(t_ms=T0 + i * 1000, seq=i, gpus=gpus, errors=errors)
        sink.append(wire.encode_line(frame), i, frame.t_ms, frame=frame)
    sink.close()
    events = json_events(str(path))
    kinds = [(e["host"], e["kind"], e["offset_ms"]) for e in events]
    assert ("n3:9000", "host-lost", 20_000) in kinds and ("n3:9000", "host-back", 40_000) in kinds
    assert ("n3:9000", "errors", 20_000) in kinds
    assert {e["host"] for e in events} == {"n3:9000"}  # the others never failed


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--kind", "nope"], "unknown event kind 'nope'"),
        (["--from", "half past"], "invalid timecode"),
        (["--format", "xml"], "invalid choice"),
    ],
)
def test_a_bad_filter_is_one_line_and_exit_2(demo: Path, args: list[str], said: str) -> None:
    result = run_allsmi("events", str(demo), *args)
    assert said in assert_one_line_error(result, 2)


def test_a_missing_recording_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run_allsmi("events", str(tmp_path / "none.ndjson.zst"))
    assert "no such recording" in assert_one_line_error(result, 2)
