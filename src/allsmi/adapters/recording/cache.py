"""The raw lines of recently read chunks, bounded by their bytes.

Entries are keyed by the chunk itself, never by its position: positions shift as chunks are
adopted, dropped or rescanned, and a stale entry would answer for another chunk. The least
recently used entries go first once the lines held pass the limit; the newest entry always
stays, so a chunk larger than the limit is still read once per use.

Some lines can only be held, never read again: the growing chunk a follower is adding to,
and chunks whose bytes were truncated away. They are *held* beside the bounded entries,
outside the limit, until their owner releases them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterable
from typing import Final

CACHE_BYTES: Final = 48 * 1024 * 1024  # raw lines kept; the 1M-frame bench peaks < 100 MB


class LineCache:
    """Raw lines by chunk: a byte-bounded LRU, plus lines held outside the bound."""

    def __init__(self, limit: int = CACHE_BYTES) -> None:
        self.limit = limit
        self._lines: OrderedDict[Hashable, list[bytes]] = OrderedDict()
        self._bytes = 0
        self._held: dict[Hashable, list[bytes]] = {}

    @property
    def size(self) -> int:
        """Bytes of the bounded entries' lines (held lines are not counted)."""
        return self._bytes

    def get(self, chunk: Hashable) -> list[bytes] | None:
        lines = self._lines.get(chunk)
        if lines is not None:
            self._lines.move_to_end(chunk)
            return lines
        return self._held.get(chunk)

    def put(self, chunk: Hashable, lines: list[bytes]) -> None:
        """Keep ``lines`` for ``chunk``, dropping the least recently used past the limit."""
        self.forget([chunk])
        self._held.pop(chunk, None)
        self._lines[chunk] = lines
        self._bytes += sum(map(len, lines))
        while self._bytes > self.limit and len(self._lines) > 1:
            _, dropped = self._lines.popitem(last=False)
            self._bytes -= sum(map(len, dropped))

    def forget(self, chunks: Iterable[Hashable]) -> None:
        """Drop the bounded entries of ``chunks`` (held lines stay)."""
        for chunk in chunks:
            dropped = self._lines.pop(chunk, None)
            if dropped is not None:
                self._bytes -= sum(map(len, dropped))

    def clear(self) -> None:
        """Drop every bounded entry (held lines stay)."""
        self._lines.clear()
        self._bytes = 0

    def hold(self, chunk: Hashable, lines: list[bytes]) -> None:
        """Answer for ``chunk`` with ``lines`` (the very list: it may grow) until released;
        a chunk held is never put in the bounded part."""
        self.forget([chunk])
        self._held[chunk] = lines

    def release(self, chunk: Hashable) -> None:
        self._held.pop(chunk, None)

    def holding(self) -> list[Hashable]:
        """The chunks whose lines are held."""
        return list(self._held)
