"""The ports the shell plugs adapters into (cosmicpython's ``AbstractRepository``, as a Protocol).

Rules: typing only. A port names what the composition roots need from an edge and nothing
about how an adapter provides it, so this module imports the standard library's ``typing``
and the domain model alone (docs/architecture.md §2.2; ``tests/domain/test_purity.py`` checks).
"""

from __future__ import annotations

from typing import Protocol

from allsmi.domain.model import Frame


class FrameSource(Protocol):
    """Anything the recorder can collect frames from (local readers, remote scrape, simulator)."""

    async def start(self) -> None:
        """Open devices and prime counters; the first ``collect`` after it is real."""
        ...

    async def collect(self, t_ms: int) -> Frame: ...

    def hosts(self) -> tuple[str, ...]: ...

    async def aclose(self) -> None: ...
