"""Many recordings replayed as one timeline (docs/architecture.md §5.8).

Theory of operation. The inputs (recordings, rotated sets) are opened as they are alone,
each with its own index, and share one byte-bounded line cache (:class:`LineCache`); no
input's frames are read until they are shown. The merged timeline is every input's frames
in the order of their seek keys — ties between inputs in the order the inputs were given —
so every input frame stays reachable, and merged frame *i* is the state after the first
*i + 1* of them: its frame count is the sum of the inputs' counts, known from their indexes
alone. A place on the merged timeline is a *position*: for each input, how many of its
frames are at or before it. It is found

- for a seek key, from each input's own seek (one chunk each);
- for a neighbour of the position held, by stepping: the input whose next frame comes first
  moves (``O(inputs)`` seek-key lookups);
- for any other index, by bisecting seek keys on the sum of the inputs' counts.

The frame at a position holds each input's frame at its position when that frame is fresh —
its key within :data:`STALE_INTERVALS` intervals of the input's (the ``gap`` rule of
``verify``) — merged by :func:`allsmi.domain.merge.merge_parts`: a 5 s shard's hosts stand
between its frames, a stopped shard's hosts become ``no data``. Each input's last decoded
frame is kept, so stepping decodes one frame, not one per input. Seek keys are each input's
own (the running maximum of its times); a merged frame shows its own input frame's time.

Rules this module obeys:
- Files are opened only to read and closed after (:class:`RecordingSource`), so however many
  inputs there are, the merge itself holds none open between calls.
- Hosts are matched by id; a host found in two inputs at once is reported once (the newer
  row is shown); inputs that overlap no other in time are reported when opened.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Final, Protocol

from allsmi.adapters.recording.cache import CACHE_BYTES, LineCache
from allsmi.adapters.recording.source import IndexUpdate, RecordingSource
from allsmi.domain.errors import RecordingUnreadable
from allsmi.domain.merge import Part, merge_parts
from allsmi.domain.model import Frame, Header, Source
from allsmi.domain.parse import format_offset
from allsmi.domain.segments import split_name

STALE_INTERVALS: Final = 2  # a frame stands for its hosts this many intervals (verify's gap)
FALLBACK_INTERVAL_MS: Final = 5_000  # an input whose header tells no interval, none measured
STEP_LIMIT: Final = 64  # an index this near the one held is reached by stepping
MAX_INPUTS: Final = 10_000
RECORDING_SUFFIXES: Final = (".ndjson", ".jsonl", ".json")
CODEC_SUFFIXES: Final = ("", ".zst", ".zstd", ".gz")


class MergeInput(Protocol):
    """What the merge needs of an input (a :class:`RecordingSource` is one)."""

    @property
    def frame_count(self) -> int: ...
    @property
    def header(self) -> Header | None: ...
    @property
    def generation(self) -> int: ...
    @property
    def skipped_lines(self) -> int: ...

    warnings: list[str]

    def key_at(self, index: int) -> int: ...
    def time_at(self, index: int) -> int: ...
    def index_at_or_before(self, key_ms: int) -> int: ...
    def frame(self, index: int) -> Frame: ...
    def close(self) -> None: ...


def recordings_in(paths: Sequence[Path]) -> list[Path]:
    """The recordings named by ``paths``: each path as it is, a directory as the recordings in
    it (files named ``*.ndjson``, ``*.jsonl`` or ``*.json``, optionally ``.zst``/``.gz``;
    each rotated set once, by its active name), in name order. Hidden files and locks are
    skipped. A directory without one is an error naming it. A recording named twice — one
    file by two paths, a directory and a file in it, a rotated set and one of its numbered
    files — is kept once (the whole set, where both were named)."""
    found: list[Path] = []
    place: dict[tuple[Path, str], int] = {}  # (real directory, set's active name) → in found

    def add(path: Path) -> None:
        active = _active_name(path.name)
        try:
            key = (path.parent.resolve(), _active_name(path.resolve().name))
        except (OSError, RuntimeError):  # a symlink loop: opening it says what is wrong
            key = (path.parent, path.name)
        at = place.get(key)
        if at is None:
            place[key] = len(found)
            found.append(path)
        elif path.name == active and found[at].name != _active_name(found[at].name):
            found[at] = path  # the set, named after one of its files: the set stands

    for path in paths:
        if not path.is_dir():
            add(path)
            continue
        try:
            names = sorted(os.listdir(path))
        except OSError as err:
            raise RecordingUnreadable(f"cannot read {path}: {err.strerror}") from None
        sets: dict[str, None] = {}
        for name in names:
            if name.startswith(".") or not _recording_name(name) or not (path / name).is_file():
                continue
            sets.setdefault(_active_name(name), None)
        if not sets:
            raise RecordingUnreadable(
                f"{path} holds no recording (*.ndjson, *.jsonl, *.json, each maybe .zst or .gz)"
            )
        for name in sets:
            add(path / name)
    return found


def _recording_name(name: str) -> bool:
    return any(name.endswith(r + c) for r in RECORDING_SUFFIXES for c in CODEC_SUFFIXES)


def _active_name(name: str) -> str:
    """The set a file belongs to: ``trace.0003.ndjson.zst`` → ``trace.ndjson.zst``."""
    stem, suffix = split_name(name)
    number, dot, rest = suffix[1:].partition(".")
    if dot and len(number) >= 4 and number.isascii() and number.isdigit():
        return f"{stem}.{rest}"
    return name


class MergedSource:
    """The inputs as one timeline (module header). Context manager: closes every input."""

    def __init__(
        self, inputs: Sequence[MergeInput], names: Sequence[str], *, cache: LineCache | None = None
    ) -> None:
        if not inputs:
            raise RecordingUnreadable("no recordings to merge")
        self.inputs = list(inputs)
        self.names = list(names)
        self.cache = cache
        self.indexing: float | None = None
        self.header: Header | None = _merged_header(self.inputs)
        self._hosts = frozenset(self.header.hosts) if self.header else frozenset()
        self._stale = [STALE_INTERVALS * _interval_of(s) for s in self.inputs]
        self._log, told = _overlaps(self.inputs, self.names)  # the message lines, in order
        self._told_of = [0] * len(self.inputs)  # of each input's warnings, how many are logged
        self._shared_told: set[str] = set(told)
        self._decoded: dict[int, tuple[int, Frame]] = {}  # input → (its index, its frame)
        self._generation = -1
        self._renumber()

    @classmethod
    def open(cls, paths: Sequence[Path], *, cache_bytes: int = CACHE_BYTES) -> MergedSource:
        """The recordings at ``paths`` (directories expanded: :func:`recordings_in`), sharing
        one line cache of ``cache_bytes``."""
        found = recordings_in(paths)
        if len(found) > MAX_INPUTS:
            raise RecordingUnreadable(f"{len(found)} recordings given; at most {MAX_INPUTS}")
        cache = LineCache(cache_bytes)
        opened: list[RecordingSource] = []
        try:
            for path in found:
                opened.append(RecordingSource(path, cache=cache))
        except BaseException:
            for source in opened:
                source.close()
            raise
        return cls(opened, [str(p) for p in found], cache=cache)

    def close(self) -> None:
        for source in self.inputs:
            source.close()

    def __enter__(self) -> MergedSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- the timeline

    def _renumber(self) -> None:
        """Take the inputs' counts anew (at open, and when one was counted anew)."""
        self._generation = sum(s.generation for s in self.inputs)
        self._counts = [s.frame_count for s in self.inputs]
        self._total = sum(self._counts)
        self._pos = [0] * len(self.inputs)
        self._cursor = -1  # the merged index the positions stand at; -1: none
        self._which = -1  # the input of the frame at the cursor
        self._ends_at: tuple[tuple[int, int], tuple[int, int]] | None = None
        self._decoded.clear()

    def _fresh(self) -> None:
        if sum(s.generation for s in self.inputs) != self._generation:
            self._renumber()

    @property
    def generation(self) -> int:
        self._fresh()
        return self._generation

    @property
    def frame_count(self) -> int:
        self._fresh()
        return self._total

    @property
    def warnings(self) -> list[str]:
        """Every input's warnings (named by its file) and the merge's own, in the order they
        were found: the message line shows the newest."""
        for n, (name, source) in enumerate(zip(self.names, self.inputs, strict=True)):
            new = source.warnings[self._told_of[n] :]
            self._told_of[n] += len(new)
            self._log += (f"{name}: {text}" for text in new)
        return self._log

    @property
    def skipped_lines(self) -> int:
        return sum(s.skipped_lines for s in self.inputs)

    @property
    def duration_ms(self) -> int:
        return max(0, self.key_at(self.frame_count - 1) - self.key_at(0))

    @property
    def whole_duration_ms(self) -> int:
        return self.duration_ms

    @property
    def first_t_ms(self) -> int:
        return self.time_at(0)

    @property
    def last_t_ms(self) -> int:
        return self.time_at(self.frame_count - 1)

    def poll_index(self) -> IndexUpdate:
        return IndexUpdate()  # every input is indexed when opened

    def estimated_frames(self) -> int:
        return self.frame_count

    def key_at(self, index: int) -> int:
        """The seek key of merged frame ``index`` (its input's key for it)."""
        source, at = self._frame_of(index)
        return self.inputs[source].key_at(at)

    def time_at(self, index: int) -> int:
        """The recorded time of merged frame ``index`` (its input frame's)."""
        source, at = self._frame_of(index)
        return self.inputs[source].time_at(at)

    def index_at_or_before(self, key_ms: int) -> int:
        """The last merged frame whose seek key is ≤ ``key_ms`` (the first when none is)."""
        self._fresh()
        pos = [self._count_to(n, key_ms) for n in range(len(self.inputs))]
        if not any(pos):
            self._goto(0)
            return 0
        self._hold(pos)
        return self._cursor

    def input_frames(self, index: int) -> list[tuple[int, int]]:
        """(input, its index) of each input's latest frame at or before merged frame
        ``index`` (the map's partial bucket reads them)."""
        self._goto(index)
        return [(n, p - 1) for n, p in enumerate(self._pos) if p]

    # ----------------------------------------------------------------- frames

    def frame(self, index: int) -> Frame:
        """The merged frame ``index`` (module header)."""
        self._goto(index)
        which = self._which
        key = self.inputs[which].key_at(self._pos[which] - 1)
        parts: list[Part] = []
        for n, (source, p) in enumerate(zip(self.inputs, self._pos, strict=True)):
            if p and key - source.key_at(p - 1) <= self._stale[n]:
                parts.append(Part(self._input_frame(n, p - 1), n))
        t_ms = self.inputs[which].time_at(self._pos[which] - 1)
        source_kind: Source = self.header.source if self.header else "remote"
        merged = merge_parts(parts, t_ms, seq=index, source=source_kind, hosts=self._hosts)
        for host in merged.shared:
            if host not in self._shared_told:
                self._shared_told.add(host)
                self.warnings.append(
                    f"host {host} is in more than one recording at once: the newer row is shown"
                )
        return merged.frame

    def input_frame(self, source: int, index: int) -> Frame:
        """Frame ``index`` of input ``source`` (the last one read of each is kept)."""
        return self._input_frame(source, index)

    def _input_frame(self, source: int, index: int) -> Frame:
        kept = self._decoded.get(source)
        if kept is not None and kept[0] == index:
            return kept[1]
        frame = self.inputs[source].frame(index)
        self._decoded[source] = (index, frame)
        return frame

    # ----------------------------------------------------------------- positions

    def _frame_of(self, index: int) -> tuple[int, int]:
        """(input, its index) of merged frame ``index``; the one after the position held is
        looked at without moving there."""
        self._fresh()
        if index == self._cursor + 1 and self._cursor >= 0 and index < self._total:
            upcoming = self._next()
            assert upcoming is not None
            return upcoming, self._pos[upcoming]
        if index in (0, self._total - 1) and index != self._cursor:
            return self._ends()[0 if index == 0 else 1]  # asked on every paint: no move
        self._goto(index)
        return self._which, self._pos[self._which] - 1

    def _ends(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """(input, its index) of the first and of the last merged frame, kept until the
        inputs are counted anew."""
        if self._ends_at is None:
            counted = [n for n, c in enumerate(self._counts) if c]
            first = min(counted, key=lambda n: (self.inputs[n].key_at(0), n))
            last = max(counted, key=lambda n: (self.inputs[n].key_at(self._counts[n] - 1), n))
            self._ends_at = ((first, 0), (last, self._counts[last] - 1))
        return self._ends_at

    def _goto(self, index: int) -> None:
        self._fresh()
        if not 0 <= index < self._total:
            raise IndexError(f"frame {index} outside 0..{self._total - 1}")
        if index == self._cursor:
            return
        if self._cursor >= 0 and abs(index - self._cursor) <= STEP_LIMIT:
            while self._cursor < index:
                self._forward()
            while self._cursor > index:
                self._back()
            return
        if index == self._total - 1:
            self._hold(list(self._counts))
            return
        self._pos = [0] * len(self.inputs)
        self._cursor = -1
        if index == 0:
            self._forward()
            return
        self._bisect(index)

    def _count_to(self, source: int, key_ms: int) -> int:
        """How many frames of input ``source`` have a seek key ≤ ``key_ms``."""
        if not self._counts[source]:
            return 0
        inp = self.inputs[source]
        at = inp.index_at_or_before(key_ms)
        return at + 1 if inp.key_at(at) <= key_ms else 0

    def _hold(self, pos: list[int]) -> None:
        """Stand at ``pos``: the frame held is the last of them in merged order."""
        self._pos = pos
        self._cursor = sum(pos) - 1
        best: tuple[int, int] | None = None
        for n, p in enumerate(pos):
            if p:
                rank = (self.inputs[n].key_at(p - 1), n)
                if best is None or rank > best:
                    best = rank
        assert best is not None
        self._which = best[1]

    def _next(self) -> int | None:
        """The input whose next frame comes next in merged order."""
        best: tuple[int, int] | None = None
        for n, (p, count) in enumerate(zip(self._pos, self._counts, strict=True)):
            if p < count:
                rank = (self.inputs[n].key_at(p), n)
                if best is None or rank < best:
                    best = rank
        return None if best is None else best[1]

    def _forward(self) -> None:
        upcoming = self._next()
        assert upcoming is not None
        self._pos[upcoming] += 1
        self._cursor += 1
        self._which = upcoming

    def _back(self) -> None:
        self._pos[self._which] -= 1
        self._hold(self._pos)

    def _bisect(self, index: int) -> None:
        """Stand at merged frame ``index`` (module header: by the sum of counts, ties in input
        order)."""
        n_inputs = range(len(self.inputs))
        lo = min(self.inputs[n].key_at(0) for n in n_inputs if self._counts[n]) - 1
        hi = max(self.inputs[n].key_at(c - 1) for n, c in enumerate(self._counts) if c)
        while hi - lo > 1:  # rank(lo) ≤ index < rank(hi)
            mid = (lo + hi) // 2
            if sum(self._count_to(n, mid) for n in n_inputs) > index:
                hi = mid
            else:
                lo = mid
        pos = [self._count_to(n, lo) for n in n_inputs]
        need = index + 1 - sum(pos)
        for n in n_inputs:  # the frames at key hi, in input order, until index is reached
            if need <= 0:
                break
            take = min(need, self._count_to(n, hi) - pos[n])
            pos[n] += take
            need -= take
        self._pos = pos
        self._cursor = index
        self._which = max((self.inputs[n].key_at(p - 1), n) for n, p in enumerate(pos) if p)[1]


def _interval_of(source: MergeInput) -> int:
    """An input's interval: its header's, else its mean spacing, else a fallback."""
    header = source.header
    if header is not None and header.interval_ms:
        return header.interval_ms
    count = source.frame_count
    if count > 1:
        spread = source.key_at(count - 1) - source.key_at(0)
        if spread > 0:
            return max(1, spread // (count - 1))
    return FALLBACK_INTERVAL_MS


def _merged_header(inputs: Sequence[MergeInput]) -> Header:
    """One header for the merge: the union of the inputs' hosts, the shortest interval."""
    hosts: dict[str, None] = {}
    kinds: set[Source] = set()
    intervals: list[int] = []
    for source in inputs:
        header = source.header
        if header is None:
            continue
        kinds.add(header.source)
        hosts.update(dict.fromkeys(header.hosts))
        if header.interval_ms:
            intervals.append(header.interval_ms)
    kind: Source = kinds.pop() if len(kinds) == 1 and len(inputs) == 1 else "remote"
    return Header(source=kind, interval_ms=min(intervals, default=None), hosts=tuple(hosts))


def _overlaps(inputs: Sequence[MergeInput], names: Sequence[str]) -> tuple[list[str], set[str]]:
    """A line for each input that overlaps no other in time, and for each host two inputs'
    headers list over the same time (those hosts, as told)."""
    spans = [(s.time_at(0), s.time_at(s.frame_count - 1)) for s in inputs]
    spans = [(min(a, b), max(a, b)) for a, b in spans]
    found: list[str] = []
    if len(spans) > 1:
        # sorted by start, a span is alone when every span before it ended before it starts
        # and the next one (the earliest start after it) starts after it ends
        order = sorted(range(len(spans)), key=lambda n: spans[n])
        alone: list[int] = []
        reach: int | None = None  # the latest end among the spans before
        for place, n in enumerate(order):
            first, last = spans[n]
            later = order[place + 1] if place + 1 < len(order) else None
            if (reach is None or reach < first) and (later is None or spans[later][0] > last):
                alone.append(n)
            reach = last if reach is None else max(reach, last)
        for n in sorted(alone):
            first, last = spans[n]
            length = format_offset(last - first)
            found.append(f"{names[n]} ({length} long) overlaps no other recording in time")
    owners: dict[str, list[int]] = {}  # host → the inputs whose headers list it, so far
    told: set[str] = set()
    for n, source in enumerate(inputs):
        for host in source.header.hosts if source.header else ():
            before = owners.setdefault(host, [])
            if host not in told:
                first, last = spans[n]
                m = next((m for m in before if spans[m][0] <= last and first <= spans[m][1]), None)
                if m is not None:
                    told.add(host)
                    found.append(
                        f"host {host} is in {names[m]} and {names[n]} at once: "
                        "the newer row is shown"
                    )
            before.append(n)
    return found, told
