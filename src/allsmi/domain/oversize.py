"""What the recorder drops from a frame whose line is over the line cap
(docs/recording-format.md §3.1).

The shell encodes and measures; this module only decides. A frame is tried as collected,
then without its heaviest parts — process rows and per-core lists, the two that grow without
bound (a process per row, a core per entry) — saying so in ``errors``, then as an errors-only
frame saying it was not recorded, which always fits. A frame that cannot be encoded at all
becomes an errors-only frame too, keeping its own errors.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from allsmi.domain.model import Frame
from allsmi.domain.sections import build_frame


def oversize_fallbacks(frame: Frame, cap_bytes: int) -> Iterator[Frame]:
    """The frames to try, in turn, while the last one's line is over ``cap_bytes``: each
    lighter than the one before; the last always fits. Lazy: a frame that fits costs none."""
    yield without_heavy_parts(frame, cap_bytes)
    yield build_frame(
        frame.t_ms,
        {},
        seq=frame.seq,
        source=frame.source,
        errors=(f"recorder: frame over {_mib(cap_bytes)} even without processes; not recorded",),
    )


def without_heavy_parts(frame: Frame, cap_bytes: int) -> Frame:
    """``frame`` without process rows and per-core lists, and an error saying so."""
    cpus = tuple(attrs.evolve(c, per_core_utilization=()) for c in frame.cpus or ())
    note = f"recorder: frame over {_mib(cap_bytes)}, dropped processes and per-core lists"
    return attrs.evolve(frame, processes=None, cpus=cpus or None, errors=(*frame.errors, note))


def unrecordable(frame: Frame, reason: str) -> Frame:
    """The errors-only frame left of one that cannot be encoded at all (``reason``: why)."""
    return build_frame(
        frame.t_ms,
        {},
        seq=frame.seq,
        source=frame.source,
        errors=(*frame.errors, f"recorder: frame not recordable ({reason})"),
    )


def _mib(n: int) -> str:
    return f"{n / (1 << 20):g} MiB"
