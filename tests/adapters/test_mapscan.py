"""The map's background pass (adapters/recording/mapscan.py) over real files written by the
real sink: its merged batches are the summary of every frame the exact reader returns, for
every shape the reader opens; progress rises to done; close() stops it mid-file; a segment
that vanishes is one clear error; stored segments are skipped."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import pytest

from allsmi.adapters import wire
from allsmi.adapters.recording import mapscan
from allsmi.adapters.recording.discovery import discover
from allsmi.adapters.recording.mapscan import MapBatch, MapScan
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.adapters.recording.source import RecordingSource
from allsmi.domain.errors import RecordingUnreadable
from allsmi.domain.model import Cpu, Frame, Gpu, Header, Memory
from allsmi.domain.summary import Summary
from tests.adapters import recordings as rec

HOSTS = ("n1:9090", "n2:9090")
WAIT_S = 30.0  # a bound on waiting for the thread, never a pause


def rich_frame(i: int, t_ms: int) -> Frame:
    """Two hosts with GPUs, CPUs and memory, a missing host now and then, errors naming one."""
    hosts = HOSTS if i % 7 else HOSTS[:1]
    gpus = tuple(
        Gpu(
            uuid=f"GPU-{g}",
            name="x",
            device_type="GPU",
            host_id=h,
            hostname=h,
            instance=h,
            utilization=(i * 7 + g) % 101 if i % 5 else None,
            temperature=40 + i % 30,
            used_memory=i * 1000 + g,
            total_memory=10**6,
            frequency=1500 + i % 9,
            power_consumption=300.25 + i % 11,
        )
        for h in hosts
        for g in range(2)
    )
    cpus = tuple(Cpu(h, h, h, utilization=float(i % 100)) for h in hosts)
    memory = tuple(Memory(h, h, h, total_bytes=2**34, used_bytes=i * 4096) for h in hosts)
    errors = ("n2:9090: HTTP 503",) if i % 7 == 0 else ()
    return Frame(t_ms=t_ms, seq=i, gpus=gpus, cpus=cpus, memory=memory, errors=errors)


def rich_sink(path: Path, n: int, codec: Codec, *, max_size: int = 0, step: int = 700) -> None:
    config = SinkConfig(path=path, codec=codec, max_size=max_size, chunk_max_frames=50)
    sink = RecordingSink(config, Header(source="remote", interval_ms=step, hosts=HOSTS))
    for i in range(n):
        t = rec.T0 + i * step
        sink.append(wire.encode_line(rich_frame(i, t)), i, t)
        sink.flush()
    sink.close()


def exact_summary(path: Path) -> Summary:
    """Summary.of every frame the exact reader returns, with the header's hosts."""
    source = RecordingSource(path)
    header = source.header
    frames = [source.frame(i) for i in range(source.frame_count)]
    source.close()
    hosts = header.hosts if header is not None else ()
    return Summary.of(frames, expected_hosts=hosts)


def scan_all(scan: MapScan) -> tuple[Summary, list[MapBatch]]:
    """Every batch until done, merged in order."""
    batches: list[MapBatch] = []
    while not scan.done:
        got = scan.wait(WAIT_S)
        assert got or scan.done, "the scan handed nothing over in time"
        batches += got
    merged = batches[0].summary
    for batch in batches[1:]:
        merged.merge(batch.summary)
    scan.close()
    return merged, batches


def build(kind: str, path: Path) -> Path:
    if kind in ("zstd", "gzip", "none"):
        rich_sink(path, 300, Codec(kind))
    elif kind == "rotated":
        rich_sink(path, 400, Codec.ZSTD, max_size=8_000)
        assert len(discover(path)) > 2
    elif kind == "crash-zstd":
        rec.crash_cut(path, 300, Codec.ZSTD, cut_into_last=0.5)
    elif kind == "crash-gzip":
        rec.crash_cut(path, 300, Codec.GZIP, cut_into_last=0.5)
    elif kind == "concatenated":
        rec.concatenated(path, 600)  # 150: the reader finds 150 of 300 (report)
    elif kind == "all-smi":
        rec.all_smi_file(path, 2500)
    elif kind == "all-smi-plain":
        rec.all_smi_file(path, 300, compress=False)
    elif kind == "headerless":
        rec.headerless(path, 200)
    elif kind == "jq":
        rec.jq_filtered(path, 200)
    return path


SHAPES = [
    "zstd",
    "gzip",
    "none",
    "rotated",
    "crash-zstd",
    "crash-gzip",
    "concatenated",
    "all-smi",
    "all-smi-plain",
    "headerless",
    "jq",
]


@pytest.mark.parametrize("kind", SHAPES)
def test_merged_batches_are_the_summary_of_every_frame_the_reader_returns(
    tmp_path: Path, kind: str
) -> None:
    path = build(kind, tmp_path / "rec.ndjson")
    merged, _ = scan_all(MapScan(path))
    expected = exact_summary(path)
    assert expected.buckets  # the comparison is about frames, not two empty maps
    assert merged == expected


def test_a_data_line_that_will_not_structure_counts_as_the_readers_errors_only_frame(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bad.ndjson"
    good = [wire.encode_line(rich_frame(i, rec.T0 + i * 1000)) for i in range(3)]
    stamp = good[1][17:41].decode()
    bad = f'{{"schema":1,"t":"{stamp}","seq":1,"gpus":[{{"uuid":"g"}}],"errors":[]}}\n'
    header = wire.encode_line(Header(interval_ms=1000, hosts=HOSTS))
    path.write_bytes(header + good[0] + bad.encode() + good[2])
    merged, _ = scan_all(MapScan(path))
    assert merged == exact_summary(path)
    (cell,) = merged.cells(rec.T0, rec.T0 + 10_000, 1)
    assert cell.frames == 3 and cell.errors  # the bad line is a frame, with an error


def test_progress_rises_to_done(tmp_path: Path) -> None:
    path = tmp_path / "big.ndjson.gz"
    frames = b"".join(wire.encode_line(rec.make_frame(i, rec.T0 + i, i)) for i in range(30_000))
    header = wire.encode_line(Header(interval_ms=1, hosts=("h",)))
    path.write_bytes(gzip.compress(header + frames, compresslevel=1))
    scan = MapScan(path)
    _, batches = scan_all(scan)
    progress = [b.progress for b in batches]
    assert len(batches) > 2  # handed over as it went, not at the end alone
    assert progress == sorted(progress) and 0 < progress[0] < 1
    assert progress[-1] == 1.0 and batches[-1].done and scan.done
    assert [b.done for b in batches[:-1]] == [False] * (len(batches) - 1)
    assert scan.frames == sum(b.frames for b in batches) == 30_000


class Pace:
    """The real line reader, held after ``after`` lines until ``release`` is set."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, after: int) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()
        self.lines = 0
        real = mapscan.segment_lines

        def paced(fh: BinaryIO, codec: str) -> Iterator[bytes]:
            for line in real(fh, codec):
                if self.lines == after:
                    self.reached.set()
                    self.release.wait()
                self.lines += 1
                yield line

        monkeypatch.setattr(mapscan, "segment_lines", paced)


def test_close_stops_the_thread_mid_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = rich_sink_path(tmp_path, 300)
    pace = Pace(monkeypatch, after=50)
    scan = MapScan(path)
    assert pace.reached.wait(WAIT_S)
    scan.stopping.set()  # what close() sets first; the held reader then goes on
    pace.release.set()
    scan.close()
    assert not scan.running
    assert pace.lines == 51  # it stopped at the next line, not at the end of the file
    got = scan.poll()
    assert not scan.done and not any(b.done for b in got)


def rich_sink_path(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "rec.ndjson"
    rich_sink(path, n, Codec.NONE)
    return path


def test_a_segment_that_vanishes_mid_scan_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "rec.ndjson.zst"
    rich_sink(path, 400, Codec.ZSTD, max_size=8_000)
    files = discover(path)
    pace = Pace(monkeypatch, after=5)
    scan = MapScan(path)
    assert pace.reached.wait(WAIT_S)
    files[-1].unlink()
    pace.release.set()
    batches: list[MapBatch] = []
    with pytest.raises(RecordingUnreadable) as err:
        for _ in range(10_000):
            batches += scan.wait(WAIT_S)
    message = str(err.value)
    assert "\n" not in message and files[-1].name in message and "gone" in message
    assert batches and not scan.done  # what was read before it was handed over first
    scan.close()


@pytest.mark.parametrize("what", ["missing", "directory"])
def test_a_path_that_is_no_recording_is_one_clear_error(tmp_path: Path, what: str) -> None:
    path = tmp_path / "nothing.ndjson" if what == "missing" else tmp_path
    scan = MapScan(path)
    with pytest.raises(RecordingUnreadable, match=r"no such recording|is a directory") as err:
        scan.wait(WAIT_S)
    assert "\n" not in str(err.value)
    scan.close()


def test_skipped_segments_are_not_read(tmp_path: Path) -> None:
    path = tmp_path / "rec.ndjson.zst"
    rich_sink(path, 400, Codec.ZSTD, max_size=8_000)
    files = discover(path)
    skip = {0, 2, len(files) - 1}  # the active file alone would name the whole set
    merged, batches = scan_all(MapScan(path, skip_segments=skip, expected_hosts=HOSTS))
    kept: list[Frame] = []
    for number, file in enumerate(files):
        if number not in skip:
            source = RecordingSource(file)
            kept += [source.frame(i) for i in range(source.frame_count)]
            source.close()
    assert merged == Summary.of(kept, expected_hosts=HOSTS)
    sizes = [f.stat().st_size for f in files]
    assert batches[0].progress >= sizes[0] / sum(sizes)  # the skipped count as read
    assert sum(b.frames for b in batches) == len(kept)


def test_summary_inputs_returns_none_for_lines_that_give_no_frame() -> None:
    header = wire.encode_line(Header(interval_ms=1000, hosts=HOSTS))
    objs: list[dict[str, Any]] = [
        orjson.loads(header),
        {"schema": 1, "index": True, "t": None, "seq": 0, "byte_offset": 0},
        {"schema": 1, "kind": "later"},
        {"schema": 2, "t": "2026-04-18T12:00:00.000Z"},
        {"schema": 1, "t": "not a time"},
    ]
    assert [mapscan.summary_inputs(o) for o in objs] == [None] * len(objs)
