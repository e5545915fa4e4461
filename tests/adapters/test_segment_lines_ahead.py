"""A segment decoded ahead in a helper thread (allsmi.adapters.recording.mapscan.segment_lines,
DecodeAhead) gives the lines of the unthreaded read, in the same order, over the demo in every
codec and over damaged files; what stops the decoding reaches the consumer after the same
lines, with the same type; a consumer that stops early leaves no thread behind and the file
its own; the LineStats of a read are those of the unthreaded read once the lines end."""

from __future__ import annotations

import gzip
import random
import threading
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import BinaryIO

import pytest
import zstandard

from allsmi.adapters.recording import mapscan
from allsmi.adapters.recording.decoding import (
    LineStats,
    Start,
    decode_with_restarts,
    fast_lines,
    sniff,
)
from allsmi.adapters.recording.mapscan import AHEAD_THREAD, DecodeAhead, segment_lines
from allsmi.adapters.recording.sink import Codec
from allsmi.app.demo import write_demo

from . import recordings as rec


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The demo recording as the recorder writes it (zstd), and gzip and plain copies."""
    folder = tmp_path_factory.mktemp("demo")
    zst = folder / "demo.ndjson.zst"
    write_demo(zst)
    with open(zst, "rb") as fh:
        plain = zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True).read()
    (folder / "demo.ndjson").write_bytes(plain)
    (folder / "demo.ndjson.gz").write_bytes(gzip.compress(plain, compresslevel=1))
    return {"zstd": zst, "gzip": folder / "demo.ndjson.gz", "none": folder / "demo.ndjson"}


def lines(path: Path, *, ahead: bool) -> list[bytes]:
    with open(path, "rb") as fh:
        codec = sniff(fh.read(8))
        fh.seek(0)
        return list(segment_lines(fh, codec, ahead=ahead))


def ahead_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == AHEAD_THREAD]


def gone_within(threads: list[threading.Thread], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while any(t.is_alive() for t in threads):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


@pytest.mark.parametrize("codec", ["zstd", "gzip", "none"])
def test_the_demo_gives_the_same_lines_in_the_same_order(demo: dict[str, Path], codec: str) -> None:
    path = demo[codec]
    assert path.stat().st_size >= mapscan.AHEAD_MIN_BYTES  # many blocks through the queue
    threaded = lines(path, ahead=True)
    assert len(threaded) > 3000
    assert threaded == lines(path, ahead=False)


def truncated_gzip(tmp_path: Path) -> Path:
    path = tmp_path / "cut.ndjson.gz"
    rec.write_sink(path, 3000, Codec.GZIP, close=False)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3 + 17])  # inside a member, mid-line
    return path


def junk_in_the_middle(kind: Codec) -> Callable[[Path], Path]:
    def make(tmp_path: Path) -> Path:
        path = tmp_path / f"junk.ndjson.{kind.value}"
        rec.write_sink(path, 3000, kind, chunk_frames=100)
        data = path.read_bytes()
        junk = random.Random(3).randbytes(5000)
        middle = len(data) // 2
        path.write_bytes(data[:middle] + junk + data[middle:])
        return path

    return make


DAMAGED = {
    "truncated gzip": truncated_gzip,
    "junk inside gzip": junk_in_the_middle(Codec.GZIP),
    "junk inside zstd": junk_in_the_middle(Codec.ZSTD),
    "junk inside plain": junk_in_the_middle(Codec.NONE),
}


@pytest.mark.parametrize("damage", sorted(DAMAGED))
def test_a_damaged_file_gives_the_same_lines_and_the_same_stats(
    tmp_path: Path, damage: str
) -> None:
    path = DAMAGED[damage](tmp_path)
    found: list[tuple[list[bytes], list[object]]] = []
    for ahead in (False, True):
        stats = LineStats()
        with open(path, "rb") as fh:
            codec = sniff(fh.read(8))
            fh.seek(0)
            blocks = decode_with_restarts(
                fh, codec, Start(0), stats, restarts=False, judge_end=False
            )
            data = (block.data for block in blocks)
            if ahead:
                reader = DecodeAhead(data, depth=2)
                got = list(fast_lines(reader.blocks(), stats))
                reader.close()
            else:
                got = list(fast_lines(data, stats))
        found.append((got, list(stats.records())))
    # the damage was noticed (plain junk is lines like any): the stats have something to compare
    assert found[0][1] or damage == "junk inside plain"
    assert found[1] == found[0]
    with open(path, "rb") as fh:  # and segment_lines itself agrees
        codec = sniff(fh.read(8))
        fh.seek(0)
        assert list(segment_lines(fh, codec, ahead=True)) == found[0][0]


class FailingFile:
    """A file whose reads fail with ``error`` once ``after`` bytes have been read."""

    def __init__(self, fh: BinaryIO, after: int, error: Exception) -> None:
        self._fh, self._after, self._error = fh, after, error
        self.readers: set[str] = set()

    def read(self, size: int = -1) -> bytes:
        self.readers.add(threading.current_thread().name)
        if self._fh.tell() >= self._after:
            raise self._error
        return self._fh.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()

    def fileno(self) -> int:
        return self._fh.fileno()

    def readinto(self, buffer: bytearray) -> int:  # zstandard's reader may use it
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def until_failure(path: Path, codec: str, error: Exception, *, ahead: bool) -> tuple[int, object]:
    """Lines read before the failure, and what was raised."""
    with open(path, "rb") as raw:
        fh = FailingFile(raw, path.stat().st_size // 2, error)
        count = 0
        try:
            for _line in segment_lines(fh, codec, ahead=ahead):  # type: ignore[arg-type]
                count += 1
        except Exception as err:  # what reaches the consumer, whatever it is
            return count, err
    raise AssertionError("the read did not fail")


@pytest.mark.parametrize("codec", ["zstd", "gzip", "none"])
@pytest.mark.parametrize("error", [OSError(5, "Input/output error"), ValueError("damage")])
def test_an_error_in_the_decoding_reaches_the_consumer_after_the_same_lines(
    demo: dict[str, Path], codec: str, error: Exception
) -> None:
    before = ahead_threads()
    plain_count, plain_err = until_failure(demo[codec], codec, error, ahead=False)
    count, err = until_failure(demo[codec], codec, error, ahead=True)
    assert plain_count > 0
    assert (count, type(err), err) == (plain_count, type(plain_err), error)
    assert ahead_threads() == before  # no thread left behind


def test_closing_after_the_first_line_ends_the_thread_and_frees_the_file(
    demo: dict[str, Path],
) -> None:
    path = demo["gzip"]
    before = set(ahead_threads())
    with open(path, "rb") as raw:
        fh = FailingFile(raw, path.stat().st_size + 1, OSError("never"))
        found = segment_lines(fh, "gzip", ahead=True)  # type: ignore[arg-type]
        assert isinstance(found, Generator)  # a caller can close it
        assert next(found)
        started = [t for t in ahead_threads() if t not in before]
        assert len(started) == 1 and started[0].is_alive()
        found.close()
        assert not started[0].is_alive()  # close() returned once the thread had ended
        at = raw.tell()
        assert fh.readers == {AHEAD_THREAD}  # only the helper read the file ...
        assert raw.tell() == at  # ... and nothing reads it any more
    assert gone_within(started, 1.0)


def test_breaking_out_of_the_loop_ends_the_thread(demo: dict[str, Path]) -> None:
    before = set(ahead_threads())
    with open(demo["zstd"], "rb") as fh:
        found = segment_lines(fh, "zstd", ahead=True)
        for _line in found:
            break
        started = [t for t in ahead_threads() if t not in before]
        assert len(started) == 1
        del found  # the caller drops the generator: it is closed
        assert gone_within(started, 1.0)


def endless() -> Generator[bytes, None, None]:
    while True:
        yield b"x\n" * 1000


def test_close_with_a_full_queue_never_blocks() -> None:
    reader = DecodeAhead(endless(), depth=2)
    blocks = reader.blocks()
    assert next(blocks)
    deadline = time.monotonic() + 5
    while not reader._queue.full():  # the thread now waits to put its next block
        assert time.monotonic() < deadline
        time.sleep(0.001)
    thread = reader._thread
    closer = threading.Thread(target=reader.close)
    closer.start()
    closer.join(1.0)
    assert not closer.is_alive() and not thread.is_alive()


def test_the_queue_holds_at_most_its_depth() -> None:
    made: list[int] = []

    def counted() -> Iterator[bytes]:
        for i in range(100):
            made.append(i)
            yield b"%d\n" % i

    source = counted()
    reader = DecodeAhead(source, depth=3)  # type: ignore[arg-type]
    blocks = reader.blocks()
    assert next(blocks) == b"0\n"
    deadline = time.monotonic() + 5
    while not reader._queue.full():
        assert time.monotonic() < deadline
        time.sleep(0.001)
    # one taken, three queued, one made and waiting to be put: no more
    assert len(made) <= 1 + 3 + 1
    assert b"".join(blocks) == b"".join(b"%d\n" % i for i in range(1, 100))
    assert not reader._thread.is_alive()


def test_only_a_large_segment_is_decoded_ahead(demo: dict[str, Path], tmp_path: Path) -> None:
    small = tmp_path / "small.ndjson"
    small.write_bytes(demo["none"].read_bytes()[: mapscan.AHEAD_MIN_BYTES // 2])
    for path, threaded in ((demo["gzip"], True), (small, False)):
        before = set(ahead_threads())
        with open(path, "rb") as fh:
            codec = sniff(fh.read(8))
            fh.seek(0)
            found = segment_lines(fh, codec)
            assert next(found)
            assert bool(set(ahead_threads()) - before) is threaded
            rest = list(found)
        assert rest == lines(path, ahead=False)[1:]
