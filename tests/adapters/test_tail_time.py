"""The last frame's time from a segment's tail (:mod:`allsmi.adapters.recording.tail`), and
the whole duration a replay knows at once from it while the index grows behind
(docs/architecture.md §3.1). Files are written by the real sink; foreign ones by the
``gzip`` module. The index's pace is held by wrapping the real bulk scan, never by sleeping.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from allsmi.adapters import wire
from allsmi.adapters.recording import source as source_module
from allsmi.adapters.recording.sink import Codec
from allsmi.adapters.recording.source import RecordingSource
from allsmi.adapters.recording.tail import tail_time
from allsmi.domain.model import Frame, IndexLine

from . import recordings as rec
from .recordings import PacedIndex

CODEC_NAME = {Codec.NONE: "none", Codec.GZIP: "gzip", Codec.ZSTD: "zstd"}


def last_time_read(path: Path) -> int:
    """The last frame's time as the exact reader reads it."""
    with RecordingSource(path) as source:
        return source.time_at(source.frame_count - 1)


def later_line(n: int) -> bytes:
    """A data line recorded after the ``n`` frames :func:`rec.write_sink` wrote."""
    return wire.encode_line(rec.make_frame(n, rec.T0 + (n + 5) * 1000, n))


def whole_ndjson(path: Path) -> bytes:
    """The lines of one of our (closed) gzip recordings."""
    return gzip.decompress(path.read_bytes())


# --------------------------------------------------------------------------- tail_time


@pytest.mark.parametrize("codec", [Codec.NONE, Codec.GZIP])
def test_the_tail_gives_the_last_frames_time_as_the_reader_reads_it(
    tmp_path: Path, codec: Codec
) -> None:
    path = tmp_path / "r.ndjson"
    truth = rec.write_sink(path, 2500, codec, chunk_frames=100)
    assert tail_time(path, CODEC_NAME[codec]) == last_time_read(path) == truth[-1][0]


def test_a_torn_last_line_is_passed_over(tmp_path: Path) -> None:
    path = tmp_path / "torn.ndjson"
    rec.write_sink(path, 300, Codec.NONE)
    with open(path, "ab") as fh:
        fh.write(later_line(300)[:-20])  # a frame cut mid-line: no newline
    assert tail_time(path, "none") == last_time_read(path) == rec.T0 + 299 * 1000


def test_an_index_line_at_the_end_is_passed_over(tmp_path: Path) -> None:
    path = tmp_path / "index.ndjson"
    rec.write_sink(path, 300, Codec.NONE)
    index = IndexLine(t_ms=rec.T0 + 400 * 1000, seq=400, byte_offset=path.stat().st_size)
    with open(path, "ab") as fh:
        fh.write(wire.encode_line(index))
    assert tail_time(path, "none") == last_time_read(path) == rec.T0 + 299 * 1000


def test_a_plain_file_that_ends_in_junk_lines_gives_the_last_frame_before_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "junk.ndjson"
    rec.write_sink(path, 300, Codec.NONE)
    with open(path, "ab") as fh:
        fh.write(b"not a recording line\n\n" + b"\0" * 512)
    assert tail_time(path, "none") == last_time_read(path) == rec.T0 + 299 * 1000


def test_a_plain_file_of_one_line_gives_its_time(tmp_path: Path) -> None:
    path = tmp_path / "one.ndjson"
    path.write_bytes(later_line(0))
    assert tail_time(path, "none") == rec.T0 + 5 * 1000


def test_a_plain_last_line_longer_than_a_block_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "long.ndjson"
    rec.write_sink(path, 300, Codec.NONE)
    long_error = "e" * 200_000  # the line spans several of the tail's blocks
    frame = Frame(t_ms=rec.T0 + 400 * 1000, seq=300, errors=(long_error,))
    with open(path, "ab") as fh:
        fh.write(wire.encode_line(frame))
    assert tail_time(path, "none") == last_time_read(path) == rec.T0 + 400 * 1000


def test_a_single_member_gzip_has_no_tail_to_read(tmp_path: Path) -> None:
    """The same lines as one member (the gzip tool's, all-smi's): the last member is the
    whole file, which the tail never decodes."""
    ours = tmp_path / "ours.ndjson.gz"
    rec.write_sink(ours, 2500, Codec.GZIP, chunk_frames=100)
    single = tmp_path / "single.ndjson.gz"
    single.write_bytes(gzip.compress(whole_ndjson(ours)))
    assert tail_time(ours, "gzip") == last_time_read(single)
    assert tail_time(single, "gzip") is None


def test_a_gzip_whose_last_member_is_unfinished_has_no_tail_to_read(tmp_path: Path) -> None:
    """A crash (or a recorder still writing): the last member ends at a sync flush."""
    path = tmp_path / "crash.ndjson.gz"
    rec.write_sink(path, 2500, Codec.GZIP, close=False, chunk_frames=100)
    assert last_time_read(path) == rec.T0 + 2499 * 1000  # the reader reads it all
    assert tail_time(path, "gzip") is None


def test_a_gzip_that_ends_in_junk_has_no_tail_to_read(tmp_path: Path) -> None:
    path = tmp_path / "junk.ndjson.gz"
    rec.write_sink(path, 2500, Codec.GZIP, chunk_frames=100)
    assert tail_time(path, "gzip") is not None
    with open(path, "ab") as fh:
        fh.write(b"\x1f\x8b\x08 junk after the last member")
    assert tail_time(path, "gzip") is None


def test_a_gzip_whose_last_members_hold_no_frame_gives_the_frame_before_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "empty-end.ndjson.gz"
    truth = rec.write_sink(path, 2500, Codec.GZIP, chunk_frames=100)
    with open(path, "ab") as fh:
        fh.write(gzip.compress(b"not a frame\n", mtime=0) + gzip.compress(b"", mtime=0))
    assert tail_time(path, "gzip") == last_time_read(path) == truth[-1][0]


@pytest.mark.parametrize("codec", ["none", "gzip", "zstd"])
def test_an_empty_file_has_no_tail_time(tmp_path: Path, codec: str) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert tail_time(path, codec) is None


def test_a_zstd_file_is_left_to_its_footer_or_markers(tmp_path: Path) -> None:
    path = tmp_path / "r.ndjson.zst"
    rec.write_sink(path, 300, Codec.ZSTD)
    assert tail_time(path, "zstd") is None


def test_a_missing_file_has_no_tail_time(tmp_path: Path) -> None:
    assert tail_time(tmp_path / "gone.ndjson", "none") is None


# --------------------------------------------------------------------------- the source


def final_duration(path: Path) -> int:
    with RecordingSource(path) as exact:
        return exact.duration_ms


def index_all(source: RecordingSource, pace: PacedIndex) -> None:
    pace.go.set()
    while source.indexing is not None:
        source.poll_index()


@pytest.mark.parametrize(
    ("codec", "rotated"), [(Codec.GZIP, False), (Codec.NONE, False), (Codec.GZIP, True)]
)
def test_the_whole_duration_is_known_at_open_where_the_tail_tells_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, codec: Codec, rotated: bool
) -> None:
    """Our gzip (a member a chunk) and plain files, a rotated set's end in its last file:
    the whole length from the first moment; how far the frames reach still grows."""
    path = tmp_path / "r.ndjson"
    max_size = 200_000 if rotated else 0
    rec.write_sink(path, 20_000, codec, chunk_frames=1000, max_size=max_size, max_files=50)
    assert (len(source_module.discover(path)) > 1) == rotated
    final = final_duration(path)
    pace = PacedIndex(monkeypatch)
    source = RecordingSource(path, background=True)
    assert source.indexing is not None  # held after its first batch
    assert source.whole_duration_ms == final
    assert source.duration_ms < final  # a seek past what is indexed still waits for it
    index_all(source, pace)
    assert source.whole_duration_ms == source.duration_ms == final
    source.close()


def test_a_single_member_gzip_grows_its_duration_with_the_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = tmp_path / "ours.ndjson.gz"
    rec.write_sink(ours, 20_000, Codec.GZIP, chunk_frames=1000)
    path = tmp_path / "single.ndjson.gz"
    path.write_bytes(gzip.compress(whole_ndjson(ours), compresslevel=1))
    final = final_duration(path)
    pace = PacedIndex(monkeypatch)
    source = RecordingSource(path, background=True)
    assert source.indexing is not None
    assert source.whole_duration_ms is None
    assert source.duration_ms < final
    index_all(source, pace)
    assert source.whole_duration_ms == source.duration_ms == final
    source.close()


def test_a_tail_earlier_than_the_first_frame_never_makes_the_duration_negative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clock that went back before the last frame: the tail's time is below the first
    key, and what is indexed stands."""
    path = tmp_path / "back.ndjson"
    rec.write_sink(path, 20_000, Codec.NONE, chunk_frames=1000)
    early = wire.encode_line(rec.make_frame(20_000, rec.T0 - 60_000, 20_000))
    with open(path, "ab") as fh:
        fh.write(early)
    pace = PacedIndex(monkeypatch)
    source = RecordingSource(path, background=True)
    assert source.indexing is not None
    assert source.whole_duration_ms == source.duration_ms >= 0
    index_all(source, pace)
    assert source.whole_duration_ms == source.duration_ms == final_duration(path) > 0
    source.close()
