"""One frame of many recordings at one instant: the merged replay's rows (docs/architecture.md
§5.8). Pure.

A merged frame is built from each input's latest frame at or before the instant, among those
still *fresh* (the caller judges freshness: within twice that input's interval). Hosts are
compared by id only (:mod:`allsmi.domain.hosts`): a host present in two of those frames is
taken from the newer one (the later input on a tie), and reported; every other host keeps its
rows from the one frame that has it. An error entry naming a host by its scrape target goes
with that host: it is kept only from the frame the host is taken from. Errors that name no
host (a local collector's) are kept from every frame. A section is ``None`` (not collected)
only when no frame collected it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import attrs

from allsmi.domain.model import SECTION_TABLE, Frame, Row, Source, normalise_host_id
from allsmi.domain.sections import rows_of


@attrs.frozen
class Part:
    """One input's frame in a merge, and the input's place (its order among the inputs)."""

    frame: Frame
    place: int


@attrs.frozen
class Merged:
    frame: Frame
    shared: tuple[str, ...]  # host ids present in more than one part (the newer was taken)


def merge_parts(
    parts: Sequence[Part],
    t_ms: int,
    *,
    seq: int | None = None,
    source: Source = "remote",
    hosts: Collection[str] = (),
) -> Merged:
    """The merged frame of ``parts`` (module header), stamped ``t_ms`` and ``seq``. An error
    names a host when its target is ``hosts`` (the inputs' headers') or has rows here."""
    owner: dict[str, tuple[int, int, int]] = {}  # host id → (t, place, part) of the newest
    shared: dict[str, None] = {}
    known = set(hosts)
    for part in parts:
        known.update(part.frame.hosts())
    for number, part in enumerate(parts):
        rank = (part.frame.t_ms, part.place, number)
        for host in _hosts_of(part.frame, known):
            held = owner.get(host)
            if held is not None:
                shared[host] = None
            if held is None or rank > held:
                owner[host] = rank
    sections: dict[str, tuple[Row, ...] | None] = {}
    for section in SECTION_TABLE:
        collected = False
        rows: list[Row] = []
        for number, part in enumerate(parts):
            found = rows_of(part.frame, section)
            if found is None:
                continue
            collected = True
            rows += (row for row in found if owner[row.host_id][2] == number)
        sections[section.attr] = tuple(rows) if collected else None
    errors: list[str] = []
    for number, part in enumerate(parts):
        for error in part.frame.errors:
            named = _error_target(error)
            if named is None or named not in owner or owner[named][2] == number:
                errors.append(error)
    frame = Frame(t_ms=t_ms, seq=seq, source=source, errors=tuple(errors), **sections)  # type: ignore[arg-type]
    return Merged(frame, tuple(shared))


def _hosts_of(frame: Frame, known: Collection[str]) -> list[str]:
    """Every host id the frame speaks of: its rows' (process rows included) and the known
    hosts its errors name."""
    seen: dict[str, None] = {}
    for section in SECTION_TABLE:
        for row in rows_of(frame, section) or ():
            seen.setdefault(row.host_id, None)
    for error in frame.errors:
        host = _error_target(error)
        if host is not None and host in known:
            seen.setdefault(host, None)
    return list(seen)


def _error_target(error: str) -> str | None:
    """The scrape target an error entry names (``"n1:9090: timeout"`` → ``n1:9090``), when
    it names one: text before ``": "`` that holds no blank."""
    target, sep, _ = error.partition(": ")
    if not sep or not target or " " in target:
        return None
    return normalise_host_id(target)
