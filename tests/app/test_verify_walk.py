"""verify's walk over a scanned segment reads the scan's log of every frame
(:class:`allsmi.adapters.recording.index.FrameLog`) instead of decoding the segment again;
what it finds must be exactly what the chunk-by-chunk walk finds, on every shape of file."""

from __future__ import annotations

import gzip
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from allsmi.adapters.recording.sink import Codec
from allsmi.adapters.recording.source import RecordingSource
from allsmi.app.verify import Report, build_report

from ..adapters import recordings as rec


def _shuffled_plain(path: Path) -> None:
    """A plain file whose frames repeat a seq and go back in time within the run."""
    rec.write_sink(path, 300, Codec.NONE)
    lines = path.read_bytes().splitlines(keepends=True)
    data = [i for i, line in enumerate(lines) if line.startswith(b'{"schema":1,"t":')]
    lines[data[50]], lines[data[51]] = lines[data[51]], lines[data[50]]  # back in time
    lines.insert(data[120], lines[data[119]])  # a duplicate
    lines.insert(data[200], b"{not json\n")  # a corrupt line
    path.write_bytes(b"".join(lines))
    assert any(
        f.rule.name in ("backwards", "duplicate") for f in _report(path, logged=True)[0].findings
    )


def _concatenated_gzip(path: Path) -> None:
    plain = path.with_suffix(".zst")
    rec.concatenated(plain, 250, back_in_time=True)
    raw = subprocess.run(["zstd", "-dc", str(plain)], capture_output=True, check=True).stdout
    path.write_bytes(gzip.compress(raw))


def _rotated_gzip(path: Path) -> None:
    rec.write_sink(path, 900, Codec.GZIP, max_size=20_000, dup=2)


SHAPES: dict[str, tuple[str, Callable[[Path], object]]] = {
    "plain, shuffled": ("a.ndjson", _shuffled_plain),
    "gzip, two runs back in time": ("b.ndjson.gz", _concatenated_gzip),
    "gzip, rotated, frames sharing times": ("c.ndjson.gz", _rotated_gzip),
    "all-smi": ("d.ndjson", lambda p: rec.all_smi_file(p, 1500)),
}


def _report(path: Path, *, logged: bool) -> tuple[Report, RecordingSource]:
    source = RecordingSource(path, log_frames=logged)
    return build_report(source, deep=False), source


@pytest.mark.parametrize("shape", SHAPES)
def test_the_logged_walk_finds_exactly_what_reading_every_chunk_finds(
    shape: str, tmp_path: Path
) -> None:
    name, build = SHAPES[shape]
    path = tmp_path / name
    build(path)
    by_chunks, _ = _report(path, logged=False)
    by_log, source = _report(path, logged=True)
    scanned = [i for i, s in enumerate(source.segments) if s.opened_by == "scan"]
    assert scanned and source.frame_logs is not None
    assert set(source.frame_logs) == set(scanned)  # the walk had a log to read
    assert by_log == by_chunks
    assert by_log.frames == sum(len(log.times) for log in source.frame_logs.values())


def test_a_walk_without_a_log_for_a_segment_reads_it_by_chunks(tmp_path: Path) -> None:
    path = tmp_path / "z.ndjson.zst"
    rec.write_sink(path, 400, Codec.ZSTD)  # opened by its footer: never scanned, no log
    report, source = _report(path, logged=True)
    assert source.frame_logs == {}
    assert report.frames == 400 and not report.damage
