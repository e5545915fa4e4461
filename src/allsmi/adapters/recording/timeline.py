"""The timeline of a recording: every frame's place, time and seek key (docs/architecture.md §5.1).

Frames are addressed by their ordinal *index* across the whole set (0 … N−1), so frames
that share a timestamp, and recordings whose ``seq`` has gaps (``jq``-filtered, evicted),
step one by one. The timeline is the list of chunks, oldest first; each knows its first index
(numbered here), its frame count and its first seek key, and — once it was decoded — the time
and key of each of its frames (8 bytes a frame each).

Seeking by time uses a non-decreasing *key* (the running maximum of ``t``), so a
concatenated file whose clock goes back still bisects; a frame shows its own ``t``.

A timeline answers from what it knows; loading a chunk's times is its owner's job (the
reader decodes the chunk and calls :meth:`Timeline.learn`). :attr:`Timeline.generation` bumps
whenever frames already counted are counted anew (a segment rescanned, a chunk that held
fewer frames than promised, chunks removed), so whoever holds an index knows to find its
frame again.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Collection, Iterable, Sequence

from allsmi.adapters.recording.index import Chunk, running_max


class Timeline:
    """The chunks of a recording in order, numbered, with their frames' times and keys."""

    def __init__(self) -> None:
        self._chunks: list[Chunk] = []
        self._first_indexes: list[int] = []
        self._first_keys: list[int] = []
        self._generation = 0

    @property
    def chunks(self) -> Sequence[Chunk]:
        """The chunks, oldest first: always this same list, changed in place."""
        return self._chunks

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def frame_count(self) -> int:
        if not self._chunks:
            return 0
        last = self._chunks[-1]
        return last.first_index + (last.count or 0)

    def __len__(self) -> int:
        return len(self._chunks)

    def __contains__(self, chunk: object) -> bool:
        return any(c is chunk for c in self._chunks)

    # ----------------------------------------------------------------- lookups

    def chunk_of(self, index: int) -> int:
        """The position of the chunk that frame ``index`` falls in, by the counts known."""
        return bisect.bisect_right(self._first_indexes, index) - 1

    def chunk_by_key(self, key: int) -> int:
        """The position of the last chunk whose first key is ≤ ``key`` (0 when none is)."""
        return max(0, bisect.bisect_right(self._first_keys, key) - 1)

    def index_by_key(self, at: int, key: int) -> int:
        """The last frame of the loaded chunk ``at`` whose key is ≤ ``key`` (its first frame
        when none is), kept within the timeline."""
        chunk = self._chunks[at]
        assert chunk.keys is not None
        pos = bisect.bisect_right(chunk.keys, key) - 1
        return min(self.frame_count - 1, chunk.first_index + max(0, pos))

    def key_before(self, at: int) -> int | None:
        """The seek key that chunk ``at`` continues from: the last key before it, None at the
        very start."""
        if at <= 0 or not self._chunks:
            return None
        before = self._chunks[min(at, len(self._chunks)) - 1]
        return before.keys[-1] if before.keys else before.t_first

    def last_key(self) -> int | None:
        """The key a chunk appended now continues from."""
        return self.key_before(len(self._chunks))

    def segment_span(self, segment: int) -> tuple[int, int] | None:
        """Positions of the first and the last chunk of ``segment``; None when it has none."""
        ats = [i for i, c in enumerate(self._chunks) if c.segment == segment]
        return (ats[0], ats[-1]) if ats else None

    def chunk_starts(self) -> list[tuple[int, int]]:
        """(first index, first seek key) of every chunk: the coarse timeline."""
        return [(c.first_index, c.t_first) for c in self._chunks]

    # ----------------------------------------------------------------- learning

    def learn(self, at: int, times: list[int]) -> bool:
        """Chunk ``at`` was decoded: it holds frames at ``times``. True when that is not the
        count it had (frames after it are then numbered anew)."""
        chunk = self._chunks[at]
        first_read = chunk.keys is None
        changed = chunk.count is not None and chunk.count != len(times)
        if first_read or changed:  # times learned before no longer match these lines
            chunk.times = array("q", times)
            chunk.keys = running_max(times, self.key_before(at))
        if chunk.count != len(times):
            chunk.count = len(times)
            self.renumber()
            self._generation += changed
        return changed

    def shrink(self, at: int, count: int) -> None:
        """Chunk ``at`` holds only its first ``count`` frames."""
        chunk = self._chunks[at]
        chunk.count = count
        if chunk.keys is not None and chunk.times is not None:
            del chunk.keys[count:], chunk.times[count:]
        self.renumber()
        self._generation += 1

    def add_frame(self, chunk: Chunk, t_ms: int) -> None:
        """One more frame at the end of ``chunk``, the growing last chunk."""
        assert chunk.keys is not None and chunk.times is not None
        key = chunk.keys[-1] if chunk.keys else self.key_before(self._position(chunk))
        chunk.times.append(t_ms)
        chunk.keys.append(t_ms if key is None else max(key, t_ms))
        chunk.count = (chunk.count or 0) + 1

    # ----------------------------------------------------------------- changing the chunks

    def extend(self, chunks: Iterable[Chunk]) -> None:
        """Chunks after the last (a segment opened)."""
        for chunk in chunks:
            self.append(chunk)

    def append(self, chunk: Chunk) -> None:
        chunk.first_index = self.frame_count
        self._chunks.append(chunk)
        self._first_indexes.append(chunk.first_index)
        self._first_keys.append(chunk.t_first)

    def truncate(self, length: int) -> list[Chunk]:
        """Drop the chunks from position ``length`` on (added just now and not taken); the
        chunks dropped."""
        dropped = self._chunks[length:]
        del self._chunks[length:], self._first_indexes[length:], self._first_keys[length:]
        return dropped

    def replace(self, first: int, last: int, chunks: list[Chunk]) -> None:
        """Chunks ``first`` … ``last`` become ``chunks`` (a segment rescanned)."""
        self._chunks[first : last + 1] = chunks
        self.renumber()
        self._generation += 1

    def remove(self, chunks: Collection[Chunk]) -> int:
        """Take ``chunks`` out of the timeline; the frames they held."""
        gone = {id(c) for c in chunks}
        dropped = sum(c.count or 0 for c in self._chunks if id(c) in gone)
        self._chunks[:] = [c for c in self._chunks if id(c) not in gone]
        self.renumber()
        self._generation += 1
        return dropped

    def renumber(self) -> None:
        index = 0
        for chunk in self._chunks:
            chunk.first_index = index
            index += chunk.count or 0
        self._first_indexes = [c.first_index for c in self._chunks]
        self._first_keys = [c.t_first for c in self._chunks]

    def _position(self, chunk: Chunk) -> int:
        return next(i for i in range(len(self._chunks) - 1, -1, -1) if self._chunks[i] is chunk)
