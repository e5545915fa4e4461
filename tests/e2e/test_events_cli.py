"""``allsmi events`` as a script would run it: the demo's incident and its recovery named with
node-03, JSON a line at a time, the filters, a cluster recording whose hosts failed, and one
clear line for every bad input. The installed command on real recordings."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from allsmi.adapters import wire
from allsmi.adapters.recording.decoding import iter_file_lines
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.app.demo import INCIDENT_AT_MS, write_demo
from allsmi.domain.model import Frame, Gpu, Header
from allsmi.domain.parse import format_rfc3339_ms

from .conftest import assert_one_line_error, poll, run_allsmi, start_allsmi

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


# --- several recordings -----------------------------------------------------------------------

HOSTS = ("n1:9000", "n2:9000", "n3:9000")


def cluster_frame(i: int, *, failing: str | None = None, t0: int = T0) -> Frame:
    """Frame ``i`` (a second apart from ``t0``) of a three-host cluster; ``failing`` has no
    rows and a timeout error."""
    gpus = tuple(
        Gpu(f"{h}-0", "H100", "GPU", h, h, h, utilization=70.0) for h in HOSTS if h != failing
    )
    errors = (f"{failing}: timeout after 2.0 s",) if failing else ()
    return Frame(t_ms=t0 + i * 1000, seq=i, gpus=gpus, errors=errors)


def open_sink(path: Path, started_ms: int = T0) -> RecordingSink:
    header = Header(source="remote", interval_ms=1000, hosts=HOSTS, started_ms=started_ms)
    return RecordingSink(SinkConfig(path=path, codec=Codec.ZSTD), header)


def append(sink: RecordingSink, frame: Frame) -> None:
    sink.append(wire.encode_line(frame), frame.seq or 0, frame.t_ms, frame=frame)


def cluster_recording(path: Path, failing: str, lost: range, t0: int = T0) -> Path:
    sink = open_sink(path, t0)
    for i in range(60):
        append(sink, cluster_frame(i, failing=failing if i in lost else None, t0=t0))
    sink.close()
    return path


def test_several_recordings_are_detected_apart_and_merged_in_time_order(tmp_path: Path) -> None:
    a = cluster_recording(tmp_path / "a.ndjson.zst", "n3:9000", range(20, 40))
    b = cluster_recording(tmp_path / "b.ndjson.zst", "n1:9000", range(5, 50), t0=T0 + 10_000)

    merged = json_events(str(a), str(b))

    alone = {str(p): json_events(str(p)) for p in (a, b)}
    assert sorted(merged, key=lambda e: (str(e["t"]), str(e["file"]))) == merged
    for path, events in alone.items():  # each recording's own events, offsets from its start
        assert [
            {k: v for k, v in e.items() if k != "file"} for e in merged if e["file"] == path
        ] == (events)
    kinds = [(e["file"], e["host"], e["kind"], e["offset_ms"]) for e in merged]
    assert kinds.index((str(b), "n1:9000", "host-lost", 5_000)) < kinds.index(
        (str(a), "n3:9000", "host-lost", 20_000)
    )  # b's loss at T0+15 s comes before a's at T0+20 s
    assert all(next(iter(e)) == "file" for e in merged)
    assert all("file" not in e for events in alone.values() for e in events)
    text = run_allsmi("events", str(a), str(b))
    assert text.returncode == 0 and text.stderr == ""
    assert [line.split("  ")[0] for line in text.stdout.splitlines()] == [e["file"] for e in merged]


def test_one_unreadable_recording_among_several_is_one_line_and_nothing_printed(
    tmp_path: Path,
) -> None:
    a = cluster_recording(tmp_path / "a.ndjson.zst", "n3:9000", range(20, 40))
    missing = tmp_path / "none.ndjson.zst"

    result = run_allsmi("events", str(a), str(missing))

    assert "no such recording" in assert_one_line_error(result, 2)
    assert result.stdout == ""


def test_follow_takes_one_recording_only(tmp_path: Path) -> None:
    a = cluster_recording(tmp_path / "a.ndjson.zst", "n3:9000", range(20, 40))

    result = run_allsmi("events", "--follow", str(a), str(a))

    line = assert_one_line_error(result, 2)
    assert line == "allsmi events: --follow follows one recording; 2 PATHs given"


# --- following a recording being written ------------------------------------------------------


class Output:
    """A process's stdout as lines, each stamped when it was read (select, no thread)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self.fd = proc.stdout.fileno()
        self.lines: list[tuple[float, str]] = []
        self._rest = b""

    def read(self) -> list[str]:
        while select.select([self.fd], [], [], 0)[0]:
            data = os.read(self.fd, 65536)
            if not data:
                break
            now = time.monotonic()
            *complete, self._rest = (self._rest + data).split(b"\n")
            self.lines += [(now, line.decode()) for line in complete]
        return [line for _, line in self.lines]

    def when(self, kind: str, host: str | None) -> float | None:
        """When the first event of ``kind`` about ``host`` was read (None: not yet)."""
        self.read()
        for at, line in self.lines:
            event = orjson.loads(line)
            if event["kind"] == kind and event["host"] == host:
                return at
        return None


def follow(path: Path) -> tuple[subprocess.Popen[str], Output]:
    """``events --follow`` on ``path``, once it has printed the events already there (the
    recording's first has ``n2:9000`` fail)."""
    proc = start_allsmi("events", "--follow", str(path), "--format", "json")
    out = Output(proc)
    poll(lambda: out.when("host-back", "n2:9000") is not None, what="the recorded events")
    return proc, out


def started_recording(path: Path) -> RecordingSink:
    """A recording being written: 30 frames, ``n2:9000`` lost at 5 and back at 8, flushed."""
    sink = open_sink(path)
    for i in range(30):
        append(sink, cluster_frame(i, failing="n2:9000" if 5 <= i < 8 else None))
    sink.flush()
    return sink


def test_follow_prints_an_event_injected_into_a_growing_recording_within_2_s(
    tmp_path: Path,
) -> None:
    path = tmp_path / "live.ndjson.zst"
    sink = started_recording(path)
    proc, out = follow(path)
    recorded = [orjson.loads(line) for line in out.read()]
    assert [(e["host"], e["kind"], e["offset_ms"]) for e in recorded] == [
        ("n2:9000", "errors", 5_000),
        ("n2:9000", "host-lost", 5_000),
        ("n2:9000", "host-back", 8_000),
        ("n2:9000", "errors-cleared", 8_000),
    ]

    append(sink, cluster_frame(30, failing="n3:9000"))
    sink.flush()
    flushed = time.monotonic()
    poll(lambda: out.when("host-lost", "n3:9000") is not None, what="the injected host-lost")

    seen = out.when("host-lost", "n3:9000")
    assert seen is not None and seen - flushed < 2.0
    assert out.when("errors", "n3:9000") is not None
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and err == ""
    sink.close()


def test_follow_reports_a_recorder_restart_and_ends_on_ctrl_c(tmp_path: Path) -> None:
    path = tmp_path / "live.ndjson.zst"
    started_recording(path).close()
    proc, out = follow(path)

    restarted_ms = T0 + 40_000
    again = open_sink(path, started_ms=restarted_ms)
    again.prepare_existing()  # as a restarted recorder does: the file before is rotated
    append(again, cluster_frame(41))
    again.flush()
    poll(lambda: out.when("restart", None) is not None, what="the restart")

    restart = [e for e in map(orjson.loads, out.read()) if e["kind"] == "restart"]
    assert [(e["offset_ms"], e["message"]) for e in restart] == [(40_000, "recorder restarted")]
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and err == ""
    again.close()


def test_follow_ends_quietly_when_its_reader_goes_away(tmp_path: Path) -> None:
    path = tmp_path / "live.ndjson.zst"
    sink = started_recording(path)
    proc, _ = follow(path)
    assert proc.stdout is not None

    proc.stdout.close()  # nothing more is written: it must notice the pipe closed by itself

    poll(lambda: proc.poll() is not None, timeout=10, what="the follower ending")
    assert proc.returncode == 0
    assert proc.stderr is not None and proc.stderr.read() == ""
    sink.close()


# --- restarts of the real recorder -------------------------------------------------------------


def test_a_restarted_recorder_is_one_restart_and_its_rotations_are_none(tmp_path: Path) -> None:
    out = tmp_path / "r.ndjson.zst"
    record: tuple[str, ...] = (
        "record",
        "-o",
        str(out),
        "-i",
        "0.1",
        "--max-size",
        "1K",
        "--max-files",
        "50",
    )
    record += ("--include", "cpu,memory,storage")

    def segments() -> list[Path]:
        return sorted(p for p in tmp_path.iterdir() if p.suffix != ".lock")

    first = start_allsmi(*record)  # runs until it has rotated, however slow the machine
    poll(lambda: len(segments()) >= 3, timeout=60, what="the first run rotating twice")
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=30) == 0
    result = run_allsmi(*record, "--duration", "1s")
    assert result.returncode == 0, result.stderr
    headers = [orjson.loads(next(iter_file_lines(p))) for p in segments()]
    runs = Counter(h["started_ms"] for h in headers)
    starts = sorted(runs)
    assert len(starts) == 2 and runs[starts[0]] >= 2  # the first run rotated, keeping its start

    events = json_events(str(out), "--kind", "restart")

    assert [(e["t"], e["kind"]) for e in events] == [(format_rfc3339_ms(starts[1]), "restart")]


def test_a_hostile_host_id_is_printed_escaped_one_line_an_event(tmp_path: Path) -> None:
    """A recording whose host id carries an escape sequence and a newline (a hostile
    header): the text output shows them escaped, never raw, each event on its one line;
    JSON escapes them as JSON does."""
    evil = "n1\x1b[2J\nforged"
    path = tmp_path / "evil.ndjson"
    hosts = ("n0:9", evil)
    sink = RecordingSink(SinkConfig(path, Codec.NONE), Header(interval_ms=1000, hosts=hosts))
    for i in range(40):
        gpus = tuple(
            Gpu(f"g-{n}", "H100", "GPU", host, "n", "n", utilization=70.0)
            for n, host in enumerate(hosts)
            if host != evil or i < 20
        )
        frame = Frame(t_ms=1_776_513_600_000 + i * 1000, seq=i, gpus=gpus)
        sink.append(wire.encode_line(frame), i, frame.t_ms, frame=frame)
    sink.close()
    text = run_allsmi("events", str(path))
    assert text.returncode == 0, text.stderr
    assert "\x1b" not in text.stdout and "\\x1b[2J\\nforged" in text.stdout
    lines = text.stdout.splitlines()
    assert lines and all("host-lost" in line for line in lines)
    parsed = [
        orjson.loads(line)
        for line in run_allsmi("events", str(path), "--format", "json").stdout.splitlines()
    ]
    assert parsed and all(event["host"] == evil for event in parsed)


def test_a_mistyped_host_is_an_error_not_an_empty_list(demo: Path) -> None:
    """``--host node-3`` (the host is node-03) must not read as "no events"."""
    typo = run_allsmi("events", str(demo), "--host", "node-3")
    assert_one_line_error(typo, 2)
    assert "node-3" in typo.stderr and "no host" in typo.stderr
    right = run_allsmi("events", str(demo), "--host", "node-03")
    assert right.returncode == 0 and right.stdout


def test_the_help_shows_percent_signs_once() -> None:
    shown = run_allsmi("events", "--help").stdout
    assert "≥ 30 % to" in shown and "%%" not in shown
