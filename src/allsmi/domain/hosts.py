"""Host lists for cluster sources (docs/architecture.md §3.2), and host identity (§4.4),
once. Pure.

A hostfile holds one host per line (``host:port`` or a URL); ``#`` comments and blank lines
are ignored. A host is kept as its *scrape target*: the host id (no scheme, no trailing slash)
with ``https://`` in front when it was given that way — plain HTTP is the default and needs
no scheme. Targets are deduplicated by host id, in first-seen order.

Host identity. Every host has two names, and this module is the only place that decides them:

- Its **id** (``host_id`` on every row): the scrape target without scheme and trailing slash
  (:func:`allsmi.domain.model.normalise_host_id`), e.g. ``127.0.0.1:10017``; for the local
  source, the local host name. Ids are what a source, a header's ``hosts`` and a hostfile
  list, and the only thing that *identifies* a host.
- Its **display name**: the ``hostname`` its rows report (``node-0017``), when that name is
  its own among the hosts in view; else its id. A host falls back to its id when its rows
  report no hostname or disagree on it, when another host reports the same hostname, when
  its hostname is another host's id, or when it has no rows at all (it is drawn ``no data``).
  So display names are unique among the hosts in view, and a name leads to one id. "In view"
  is one frame with the expected hosts (the view draws a frame from itself alone), or the
  frames of a recording taken together (:func:`reported_hostnames` over all of them).

How both appear (:class:`HostNames` computes them once per frame, and every part of the
screen asks it, never a row's ``hostname``):

- Rows (GPU, CPU, memory, process table), tabs, the ``no data`` line, the title and the
  cluster overview's node counts all show or count the **display name** of the row's id.
- Events and filters *name* a host by its display name and *match* it by id: an event holds
  the id and is shown under the display name of the frame it is shown with; a filter or a
  selection given a display name (or an id, with or without scheme) becomes the id through
  :meth:`HostNames.find`, and only ids are compared. A tab is a position in ``ids``.
- A frame's ``errors`` are text written at collection time, before the other hosts' names
  are known: they name the host by its scrape target. A host with an error entry has no rows
  in that frame, so its display name is its id, and the error and the ``no data`` line read
  alike on screen.
- Shard hashing and merging recordings (merged replay) use the **id only**: rows of the same
  id are the same host whatever hostname they report, and two ids are two hosts even when
  their hostnames agree. Display names are recomputed after a merge, never stored.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar
from urllib.parse import urlsplit

import attrs

from allsmi.domain.errors import UsageError
from allsmi.domain.model import HOST_SECTION_ATTRS, Frame, Row, normalise_host_id


def parse_hostfile(text: str, origin: str = "hostfile") -> tuple[str, ...]:
    """The hosts a hostfile lists, one a line, duplicates dropped; ``#`` comments and blank
    lines ignored. A bad line is a ``UsageError`` naming ``origin`` and its line number. A
    file of only comments and blanks gives ``()``: the caller says it lists no hosts."""
    seen: dict[str, str] = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        try:
            if any(c.isspace() for c in entry):
                raise UsageError(f"{entry!r} is not one host")
            _add(seen, entry)
        except UsageError as err:
            raise UsageError(f"{origin} line {line_no}: {err}") from None
    return tuple(seen.values())


def scrape_target(host: str) -> str:
    """``https://n1:443/`` → ``https://n1:443``; ``http://n1:9090`` → ``n1:9090``. A host
    that is no usable address is a usage error naming it."""
    ident = normalise_host_id(host)
    secure = host.strip().lower().startswith("https://")
    _check_address(ident, host)
    return f"https://{ident}" if secure else ident


def _check_address(ident: str, given: str) -> None:
    if "://" in ident:
        raise UsageError(f"host {given!r}: only http:// and https:// can be scraped")
    if not ident.isascii() or not ident.isprintable() or " " in ident:
        raise UsageError(f"host {given!r}: not an address (ASCII, no spaces)")
    try:
        parts = urlsplit(f"http://{ident}")
        port = parts.port
    except ValueError as err:
        raise UsageError(f"host {given!r}: not an address ({err})") from None
    if not parts.hostname:
        raise UsageError(f"host {given!r}: no host name")
    if port is None and parts.netloc.endswith(":"):
        raise UsageError(f"host {given!r}: empty port")


def merge_hosts(hosts: Iterable[str]) -> tuple[str, ...]:
    """Scrape targets, one per host id, in first-seen order; an empty entry is a usage error."""
    seen: dict[str, str] = {}
    for host in hosts:
        _add(seen, host)
    return tuple(seen.values())


def _add(seen: dict[str, str], host: str) -> None:
    """``host``'s target under its id, unless an earlier one has that id."""
    normal = normalise_host_id(host)
    if not normal:
        raise UsageError(f"empty host name in {host!r}")
    if normal not in seen:
        seen[normal] = scrape_target(host)


def host_ids(targets: Iterable[str]) -> tuple[str, ...]:
    """The host ids of scrape targets (what rows carry in ``host_id``)."""
    return tuple(normalise_host_id(target) for target in targets)


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` → ``(2, 4)``: the K-th of N shards, 1 ≤ K ≤ N ≤ 65,536; anything else is a
    usage error saying what is expected."""
    k_text, sep, n_text = (part.strip() for part in text.strip().partition("/"))

    def number(part: str) -> bool:  # ASCII digits only ("²" is a digit to str.isdigit)
        return bool(part) and part.isascii() and part.isdecimal()

    def value(part: str) -> int:  # a number too long for int() is past any bound anyway
        return int(part) if len(part.lstrip("0")) <= 9 else 10**9

    if not (sep and number(k_text) and number(n_text)):
        raise UsageError(f"--shard {text!r}: expected K/N, as 1/4 (the first of 4 shards)")
    k, n = value(k_text), value(n_text)
    if not 1 <= n <= MAX_SHARDS:
        raise UsageError(f"--shard {text!r}: N must be 1..{MAX_SHARDS}")
    if not 1 <= k <= n:
        raise UsageError(f"--shard {text!r}: K must be 1..{n}")
    return k, n


MAX_SHARDS = 65_536


def host_part(target: str) -> str:
    """The host name of a scrape target, lower-cased, without scheme, port or path:
    ``https://GPU-01:9400/`` → ``gpu-01``, ``[::1]:9100`` → ``::1``."""
    ident = normalise_host_id(target)
    try:
        name = urlsplit(f"http://{ident}").hostname
    except ValueError:
        name = None
    return name if name else ident.lower()


def shard_of(target: str, shards: int) -> int:
    """The shard (1..``shards``) a target falls in: the first 8 bytes of the sha256 of its
    :func:`host_part` (UTF-8), read big-endian, modulo ``shards``, plus 1 — the same on every
    machine and run (Python's ``hash`` is salted), and the same for every port of one host
    (its dcgm-exporter and node_exporter pages)."""
    digest = hashlib.sha256(host_part(target).encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards + 1


def select_shard(targets: Iterable[str], shard: int, shards: int) -> tuple[str, ...]:
    """The targets of shard ``shard`` of ``shards``, in their given order."""
    return tuple(t for t in targets if shard_of(t, shards) == shard)


_R = TypeVar("_R", bound=Row)


def claim_rows(
    given: dict[tuple[str, str], str], target: str, paired: bool, key: str, rows: list[_R]
) -> list[_R]:
    """One target's rows of section ``key``, as a frame takes them: ``given`` (host id,
    section key) → the target that gave them first. A paired target (one of the two
    exporters of a node: its rows carry its partner's id) whose partner already gives the
    section is a host of its own after all — two exporters of one kind on one address — and
    its rows keep its own id: nothing is dropped."""
    if not rows:
        return rows
    first = given.setdefault((rows[0].host_id, key), target)
    if not paired or first == target:
        return rows
    own = normalise_host_id(target)
    given.setdefault((own, key), target)
    return [attrs.evolve(row, host_id=own) for row in rows]


# --------------------------------------------------------------------------- identity


def reported_hostnames(frames: Iterable[Frame]) -> dict[str, str | None]:
    """Each host id with rows in ``frames`` → the hostname its rows report (``None`` when
    they disagree), ids in first-seen order. One pass over the rows of the sections
    :meth:`Frame.hosts` reads (a process row names the host of its GPU)."""
    reported: dict[str, str | None] = {}
    claim = reported.setdefault  # the first row's hostname stays; a different one is noted
    mixed: set[str] = set()
    for frame in frames:
        for attr in HOST_SECTION_ATTRS:
            rows: tuple[Row, ...] | None = getattr(frame, attr)
            for row in rows or ():
                name = row.hostname
                if claim(row.host_id, name) != name:
                    mixed.add(row.host_id)
    for host in mixed:
        reported[host] = None
    return reported


def _unique_names(
    _: object, __: attrs.Attribute[Mapping[str, str]], shown: Mapping[str, str]
) -> None:
    if len(set(shown.values())) != len(shown):
        raise ValueError(f"two hosts under one name: {dict(shown)!r}")


@attrs.frozen
class HostNames:
    """The hosts in view by id, each with the one name it is shown under (module header)."""

    # id → display name: the expected hosts first, then the others, first seen first
    shown: Mapping[str, str] = attrs.field(validator=_unique_names)
    reporting: int = 0  # hosts with rows
    silent: frozenset[str] = frozenset()  # ids in view with no rows (failing or not yet seen)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(self.shown)

    @property
    def names(self) -> tuple[str, ...]:
        """The display names, in the order of :attr:`ids`."""
        return tuple(self.shown.values())

    def name(self, host_id: str) -> str:
        """The display name of ``host_id``; a host not in view is shown by its id."""
        return self.shown.get(host_id, host_id)

    def find(self, text: str) -> str | None:
        """The id of the host ``text`` names, by id (any scheme or trailing slash) or by
        display name; None when no host in view has that name. A display name is never
        another host's id, so the two ways never disagree."""
        text = text.strip()
        if text in self.shown:
            return text
        for host, name in self.shown.items():
            if name == text:
                return host
        ident = normalise_host_id(text)
        return ident if ident in self.shown else None


def name_hosts(reported: Mapping[str, str | None], expected: Sequence[str] = ()) -> HostNames:
    """:class:`HostNames` of the ``expected`` ids and the hosts that ``reported`` a hostname
    (:func:`reported_hostnames`): a hostname is shown when it is one host's alone and no
    other host's id. Runs once per frame drawn: one dict look-up or two per host."""
    ids = dict.fromkeys([*expected, *reported]) if expected else reported
    claims = Counter(filter(None, reported.values()))
    shown: dict[str, str] = {}
    for host in ids:
        name = reported.get(host)
        if not name or name == host:
            shown[host] = host
        elif claims[name] > 1 or name in ids or not name.strip():
            shown[host] = host  # shared, another host's id, or blank
        else:
            shown[host] = name
    silent = frozenset(host for host in shown if host not in reported)
    return HostNames(shown, len(reported), silent)


def host_names(frame: Frame | None, expected: Sequence[str] = ()) -> HostNames:
    """The hosts of one frame: ``expected`` first, then the frame's others, and their names."""
    return name_hosts(reported_hostnames((frame,) if frame is not None else ()), expected)
