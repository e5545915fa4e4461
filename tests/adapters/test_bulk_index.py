"""The background index (RecordingSource(background=True)): it opens on the first chunk,
stops when closed, fails an open as the exact path does, ends cleanly when the file shrinks
under it, and reports the damage the exact scan reports (docs/architecture.md §3.1;
docs/recording-format.md §7.7). The thread's pace is controlled by wrapping the real
bulk scan, never by sleeping.
"""

from __future__ import annotations

import gzip
import threading
from pathlib import Path

import pytest

from allsmi.adapters import wire
from allsmi.adapters.recording import source as source_module
from allsmi.adapters.recording.sink import Codec
from allsmi.adapters.recording.source import RecordingSource
from allsmi.domain.errors import RecordingUnreadable, UnsupportedSchema
from allsmi.domain.model import Header

from . import recordings as rec
from .recordings import PacedIndex

HEADER = wire.encode_line(Header(interval_ms=1000, hosts=("h",)))


def frame_lines(n: int, first: int = 0) -> bytes:
    return b"".join(
        wire.encode_line(rec.make_frame(first + i, rec.T0 + (first + i) * 1000, first + i))
        for i in range(n)
    )


def big_gzip(path: Path, n: int = 20_000) -> Path:
    path.write_bytes(gzip.compress(HEADER + frame_lines(n), compresslevel=1))
    return path


def indexer_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.endswith("(_run)")}


def test_the_first_chunk_is_shown_before_the_index_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pace = PacedIndex(monkeypatch)
    path = big_gzip(tmp_path / "big.ndjson.gz")
    source = RecordingSource(path, background=True)
    assert pace.batches == 1 and not pace.finished  # held after its first batch
    assert source.indexing is not None and 0 < source.indexing < 1
    assert 0 < source.frame_count < 20_000
    assert source.estimated_frames() > source.frame_count
    assert source.time_at(0) == rec.T0
    pace.go.set()
    while source.indexing is not None:
        source.poll_index()
    assert source.frame_count == 20_000 and pace.finished
    source.close()


def test_close_stops_the_index_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pace = PacedIndex(monkeypatch)
    before = indexer_threads()
    source = RecordingSource(big_gzip(tmp_path / "big.ndjson.gz"), background=True)
    (thread,) = indexer_threads() - before
    assert thread.is_alive()
    pace.go.set()
    source.close()
    assert not thread.is_alive()
    assert source.indexing is None


@pytest.mark.parametrize("background", [False, True])
def test_an_unsupported_schema_fails_the_open_and_leaves_no_index_running(
    tmp_path: Path, background: bool
) -> None:
    path = tmp_path / "s2.ndjson.gz"
    body = HEADER.replace(b'"schema":1', b'"schema":2') + frame_lines(40_000)
    path.write_bytes(gzip.compress(body, compresslevel=1))
    before = indexer_threads()
    with pytest.raises(UnsupportedSchema):
        RecordingSource(path, background=background)
    # the index of a source that failed to open was stopped, not left decoding the rest
    assert not [t for t in indexer_threads() - before if t.is_alive()]


@pytest.mark.parametrize("background", [False, True])
@pytest.mark.parametrize("content", [b"", HEADER], ids=["empty", "header-only"])
@pytest.mark.parametrize("codec", ["gzip", "none"])
def test_a_recording_without_frames_is_unreadable(
    tmp_path: Path, background: bool, content: bytes, codec: str
) -> None:
    path = tmp_path / "n.ndjson"
    path.write_bytes(gzip.compress(content) if codec == "gzip" else content)
    with pytest.raises(RecordingUnreadable, match="no frames"):
        RecordingSource(path, background=background)


@pytest.mark.parametrize("codec", ["gzip", "none"])
def test_a_file_truncated_while_indexed_ends_the_index_with_what_remains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, codec: str
) -> None:
    """What the index counted before the cut stays counted until read; reading shows what
    is left, and a file cut to nothing is a clear error, not a crash."""
    pace = PacedIndex(monkeypatch)
    body = HEADER + frame_lines(20_000)
    path = tmp_path / "cut.ndjson"
    path.write_bytes(gzip.compress(body, compresslevel=1) if codec == "gzip" else body)
    source = RecordingSource(path, background=True)
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size // 2)
    pace.go.set()
    read_all(source)  # reading corrects what the cut took from the counts
    assert 0 < source.frame_count < 20_000
    last = source.frame_count - 1
    assert wire.decode_line(source.raw(last), 1) == rec.make_frame(last, rec.T0 + last * 1000, last)
    with open(path, "r+b") as fh:
        fh.truncate(0)
    source.cache.clear()
    for chunk in source.chunks:
        chunk.keys = chunk.times = None  # as if never read: the next read finds nothing
    with pytest.raises(RecordingUnreadable, match="no frames left"):
        source.raw(0)
    source.close()


def damage_of(source: RecordingSource) -> list[str]:
    return sorted(repr(d) for s in source.segments for d in s.damage)


def read_all(source: RecordingSource) -> None:
    while source.indexing is not None:
        source.poll_index()
    i = 0
    while i < source.frame_count:
        source.raw(i)
        i += 1


@pytest.mark.parametrize("where", ["junk-mid-gzip", "zeros-after-gzip", "corrupt-lines"])
def test_damage_the_bulk_scan_finds_is_the_exact_scans(tmp_path: Path, where: str) -> None:
    path = tmp_path / "d.ndjson.gz"
    first, second = HEADER + frame_lines(1500), frame_lines(1500, first=1500)
    if where == "junk-mid-gzip":
        path.write_bytes(gzip.compress(first) + b"JUNK" * 300 + gzip.compress(second))
    elif where == "zeros-after-gzip":
        path.write_bytes(gzip.compress(first + second) + b"\0" * 4000)
    else:  # corrupt lines between chunks and after the last frame
        path.write_bytes(gzip.compress(first + b"garbage\n\r\n{\n" + second + b"tail junk\n"))
    exact = RecordingSource(path)
    background = RecordingSource(path, background=True)
    read_all(background)
    assert damage_of(background) == damage_of(exact) != []
    assert background.skipped_lines == exact.skipped_lines
    assert background.frame_count == exact.frame_count == 3000
    background.close()


def test_a_later_run_starts_where_the_exact_scan_says_despite_junk_before_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cat.ndjson"
    path.write_bytes(HEADER + frame_lines(700) + b"junk\n\njunk\n" + HEADER + frame_lines(300))
    exact = RecordingSource(path)
    background = RecordingSource(path, background=True)
    read_all(background)
    assert exact.segments[0].run_starts == [700]
    assert background.segments[0].run_starts == exact.segments[0].run_starts
    background.close()


def test_seek_keys_after_a_clock_that_went_back_are_exact_whatever_the_read_order(
    tmp_path: Path,
) -> None:
    path = tmp_path / "back.ndjson"
    rec.concatenated(path, 2500, back_in_time=True)  # zstd files cat-ed: no usable footer
    exact = RecordingSource(path)
    background = RecordingSource(path, background=True)
    while background.indexing is not None:
        background.poll_index()
    for i in reversed(range(0, background.frame_count, 500)):  # later chunks first
        background.raw(i)
    read_all(background)
    assert [background.key_at(i) for i in range(exact.frame_count)] == [
        exact.key_at(i) for i in range(exact.frame_count)
    ]
    assert background.duration_ms == exact.duration_ms
    background.close()


def test_a_rotated_gzip_set_indexes_its_segments_one_after_another(tmp_path: Path) -> None:
    path = tmp_path / "set.ndjson.gz"
    truth = rec.write_sink(path, 3000, Codec.GZIP, max_size=60_000, max_files=20)
    source = RecordingSource(path, background=True)
    assert len(source.segments) == 1  # the next is opened when this one is indexed
    read_all(source)
    assert len(source.segments) == len(source_module.discover(path)) > 1
    assert [source.time_at(i) for i in range(source.frame_count)] == [t for t, _ in truth]
    source.close()
