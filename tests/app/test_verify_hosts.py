"""verify's report on the hosts of a sound recording: frames with an error counted, and
every host that failed (an error names it) or was missing (no rows in a frame) listed with
its frames failed and missing and its first and last such time; the verdict says so while
the exit status stays that of the file (src/allsmi/app/verify.py, module header)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest

from allsmi.adapters import wire
from allsmi.adapters.recording.mapscan import UNREADABLE
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.adapters.recording.source import RecordingSource
from allsmi.app.verify import (
    MAX_FAILED_LISTED,
    HostTrouble,
    Report,
    ShapeFacts,
    build_report,
    line_facts,
    render,
)
from allsmi.domain.model import Frame, GpuProcess, Header, Memory
from allsmi.domain.parse import format_rfc3339_ms

from ..adapters import recordings as rec

T0 = rec.T0


def _host(n: int) -> str:
    return f"n{n:02d}:9090"


def _memory(host: str) -> Memory:
    return Memory(host_id=host, hostname=host, instance=host, used_bytes=1, total_bytes=2**34)


def write_cluster(
    path: Path,
    codec: Codec,
    *,
    hosts: Sequence[str],
    frames: int,
    failing: dict[str, range],
    absent: dict[str, range] | None = None,
    other_errors: Sequence[str] = (),
    header: Sequence[str] | None = None,
) -> None:
    """A cluster recording written by the real sink: every host has a memory row in every
    frame, except that a host in ``failing`` has, in the frames of its range, no row and
    the error its scrape leaves (``"http://<host>: …"``), and a host in ``absent`` has no
    row and no error in the frames of its range. The header names ``header`` (default:
    ``hosts``)."""
    config = SinkConfig(path=path, codec=codec, chunk_max_frames=10)
    sink = RecordingSink(
        config,
        Header(source="remote", interval_ms=1000, hosts=tuple(hosts if header is None else header)),
    )
    for i in range(frames):
        down = {h for h, span in failing.items() if i in span}
        gone = {h for h, span in (absent or {}).items() if i in span}
        rows = tuple(_memory(h) for h in hosts if h not in down | gone)
        errors = tuple(f"http://{h}: connection refused" for h in sorted(down))
        frame = Frame(
            t_ms=T0 + i * 1000,
            seq=i,
            source="remote",
            memory=rows,
            errors=errors + tuple(other_errors),
        )
        sink.append(wire.encode_line(frame), i, frame.t_ms)
        sink.flush()
    sink.close()


def all_smi_dropping(path: Path, *, frames: int, gone: range) -> None:
    """all-smi's shape (sorted keys, whole-second ``timestamp``, plain): hosts a and b,
    b's rows absent in the frames of ``gone``, no error anywhere."""
    head = {"all_smi_version": "0.25.0", "header": True, "hosts": ["a", "b"]}
    lines = [orjson.dumps({**head, "interval_ms": 1000, "schema": 1})]
    for i in range(frames):
        stamp = format_rfc3339_ms(T0 + i * 1000).replace(".000Z", "Z")
        rows = [
            {"host_id": h, "hostname": h, "instance": h, "total_bytes": 2**34, "used_bytes": 1}
            for h in ("a", "b")
            if h == "a" or i not in gone
        ]
        obj = {"hostname": "a", "memory": rows, "schema": 1, "timestamp": stamp}
        lines.append(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS))
    path.write_bytes(b"\n".join(lines) + b"\n")


def _report(path: Path, *, deep: bool = False) -> tuple[Report, str]:
    with RecordingSource(path, log_frames=True) as source:
        report = build_report(source, deep=deep)
    out = io.StringIO()
    render(report, out)
    return report, out.getvalue()


def _at(i: int) -> int:
    return T0 + i * 1000


HOSTS = [_host(n) for n in range(1, 21)]
FAILING = {_host(4): range(30), _host(11): range(30), _host(17): range(30)}


@pytest.mark.parametrize(
    ("name", "codec"),
    [("f.ndjson.zst", Codec.ZSTD), ("f.ndjson.gz", Codec.GZIP), ("f.ndjson", Codec.NONE)],
)
def test_three_of_twenty_hosts_failing_in_every_frame_are_named_with_counts_and_times(
    tmp_path: Path, name: str, codec: Codec
) -> None:
    path = tmp_path / name
    write_cluster(path, codec, hosts=HOSTS, frames=30, failing=FAILING)
    report, text = _report(path)
    assert report.status == 0 and report.error_frames == 30
    assert report.troubled == [HostTrouble(h, 30, 30, _at(0), _at(29)) for h in FAILING]
    assert "errors:     30 frame(s) with an error" in text
    first, last = format_rfc3339_ms(_at(0)), format_rfc3339_ms(_at(29))
    for host in FAILING:
        assert f"  {host}  failed 30, missing 30; {first} – {last}\n" in text
    assert "failed:     3 of 20 hosts failed, 3 of 20 hosts missing in every frame" in text
    assert text.endswith(
        "OK (file sound; 3 of 20 hosts failed, 3 of 20 hosts missing in every frame)\n"
    )


def test_a_host_failing_in_some_frames_has_their_first_and_last_time(tmp_path: Path) -> None:
    path = tmp_path / "s.ndjson.zst"
    hosts = [_host(n) for n in range(1, 5)]
    write_cluster(path, Codec.ZSTD, hosts=hosts, frames=40, failing={_host(2): range(12, 25)})
    report, text = _report(path)
    assert report.troubled == [HostTrouble(_host(2), 13, 13, _at(12), _at(24))]
    assert report.error_frames == 13
    assert text.endswith(
        "OK (file sound; 1 of 4 hosts failed, 1 of 4 hosts missing in some frames)\n"
    )


def test_the_walk_and_the_deep_pass_agree_on_the_hosts(tmp_path: Path) -> None:
    path = tmp_path / "d.ndjson.gz"
    write_cluster(path, Codec.GZIP, hosts=HOSTS, frames=30, failing=FAILING)
    plain, _ = _report(path)
    deep, _ = _report(path, deep=True)
    assert plain.troubled == deep.troubled and plain.hosts == deep.hosts


def test_an_all_smi_host_that_drops_out_is_reported_missing(tmp_path: Path) -> None:
    path = tmp_path / "a.ndjson"
    all_smi_dropping(path, frames=20, gone=range(5, 9))
    report, text = _report(path)
    assert report.status == 0 and report.error_frames == 0
    assert report.troubled == [HostTrouble("b", 0, 4, _at(5), _at(8))]
    assert "errors:     0 frame(s) with an error" in text
    first, last = format_rfc3339_ms(_at(5)), format_rfc3339_ms(_at(8))
    assert f"  b  failed 0, missing 4; {first} – {last}\n" in text
    assert text.endswith("OK (file sound; 1 of 2 hosts missing in some frames)\n")


def test_a_host_that_appears_late_or_leaves_early_missed_the_frames_around(
    tmp_path: Path,
) -> None:
    path = tmp_path / "l.ndjson"
    hosts = [_host(1), _host(2), _host(3)]
    # n02 has rows only from frame 6 on; n03 only up to frame 13 (header names n01 alone)
    write_cluster(
        path,
        Codec.NONE,
        hosts=hosts,
        frames=20,
        failing={},
        absent={_host(2): range(6), _host(3): range(14, 20)},
        header=[_host(1)],
    )
    report, _ = _report(path)
    assert report.troubled == [  # as bad as each other: in the order first seen
        HostTrouble(_host(3), 0, 6, _at(14), _at(19)),
        HostTrouble(_host(2), 0, 6, _at(0), _at(5)),
    ]
    assert report.hosts == (_host(1), _host(3), _host(2))


def test_a_header_host_never_seen_is_missing_in_every_frame(tmp_path: Path) -> None:
    path = tmp_path / "h.ndjson.zst"
    hosts = [_host(1), _host(2)]
    write_cluster(
        path, Codec.ZSTD, hosts=hosts, frames=10, failing={}, absent={_host(2): range(10)}
    )
    report, _ = _report(path)
    assert report.troubled == [HostTrouble(_host(2), 0, 10, _at(0), _at(9))]
    assert report.hosts == tuple(hosts)


def test_an_error_naming_no_host_counts_its_frame_but_fails_no_host(tmp_path: Path) -> None:
    path = tmp_path / "e.ndjson.zst"
    write_cluster(
        path, Codec.ZSTD, hosts=[_host(1)], frames=8, failing={}, other_errors=("nvidia: gone",)
    )
    report, text = _report(path)
    assert report.error_frames == 8 and report.troubled == []
    assert "errors:     8 frame(s) with an error" in text
    assert "failed:" not in text and text.endswith("\nOK\n")


def test_a_huge_cluster_lists_the_worst_then_how_many_more(tmp_path: Path) -> None:
    path = tmp_path / "c.ndjson.zst"
    hosts = [_host(n) for n in range(1, 41)]
    # n01 fails in 30 frames, n02 in 29, … n30 in 1: worst first
    failing = {_host(n): range(n - 1, 30) for n in range(1, 31)}
    write_cluster(path, Codec.ZSTD, hosts=hosts, frames=30, failing=failing)
    report, text = _report(path)
    assert [h.host for h in report.troubled] == list(failing)
    listed = [line for line in text.splitlines() if line.startswith("  n")]
    assert [line.split()[0] for line in listed] == list(failing)[:MAX_FAILED_LISTED]
    assert f"  … and {30 - MAX_FAILED_LISTED} more hosts (only the worst listed)\n" in text
    assert f"the {MAX_FAILED_LISTED} worst" in text


def test_a_clean_recording_has_no_host_section(tmp_path: Path) -> None:
    path = tmp_path / "ok.ndjson.zst"
    write_cluster(path, Codec.ZSTD, hosts=HOSTS, frames=20, failing={})
    report, text = _report(path)
    assert report.troubled == [] and report.error_frames == 0
    assert "failed:" not in text and text.endswith("\nOK\n")


def test_facts_remembered_by_line_shape_are_each_lines_own() -> None:
    """ShapeFacts answers most lines from the shape of their host ids, parsing only new
    shapes: every answer is the line's own (an escaped id, errors, a line not ours and a
    row in a section that is not per host all parsed or told apart)."""
    lines = [
        wire.encode_line(Frame(t_ms=T0 + i, memory=(_memory(host),), errors=errors)).rstrip()
        for i, (host, errors) in enumerate(
            [
                ("a:1", ()),
                ("a:1", ()),  # the same shape: remembered
                ("b:1", ()),
                ('q"x:1', ()),  # an escaped id: its shape cannot be read, so it is parsed
                ('q"y:1', ()),
                ("a:1", ("a:1: timeout",)),  # errors: parsed
            ]
        )
    ]
    lines.append(b'{"schema":1,"t":"2026-04-18T12:00:00.000Z","errors":[]}')  # no rows at all
    facts = ShapeFacts()
    assert [facts(line) for line in lines] == [line_facts(line) for line in lines]
    assert [facts(line)[0] for line in lines] == [
        ("a:1",), ("a:1",), ("b:1",), ('q"x:1',), ('q"y:1',), ("a:1",), (),
    ]  # fmt: skip
    assert len(facts.shapes) == 3  # a:1, b:1 and the line without rows: the rest parsed


def test_a_damaged_line_never_sets_its_shapes_facts_and_process_rows_are_read() -> None:
    """The first line of a shape damaged in the middle is read as the damage it is, and
    the healthy lines of that shape after it keep their own facts; a process row names
    the host of its GPU, not a host with rows, so a line with one is parsed."""
    healthy = wire.encode_line(Frame(t_ms=T0, memory=(_memory("a:1"),))).rstrip()
    damaged = healthy.replace(b'"used_bytes":1', b'"used_bytes":1}0', 1)
    process = wire.encode_line(
        Frame(t_ms=T0, processes=(GpuProcess("a:1", "a:1", 0, "GPU-0", pid=7),))
    ).rstrip()
    facts = ShapeFacts()
    assert facts(damaged) == line_facts(damaged) == ((), UNREADABLE)
    assert facts(healthy) == (("a:1",), ())
    assert facts(process) == line_facts(process) == ((), ())
    assert facts(healthy) == (("a:1",), ())
