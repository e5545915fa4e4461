"""Frames from the series a Prometheus server stored (docs/architecture.md §3.3).

A Prometheus server (or Thanos, Mimir, VictoriaMetrics: anything answering its HTTP query
API) that scraped all-smi's exporters or ours holds their pages as series. ``query_range``
gives each series' value at the instants ``start + k × step``; this module turns one such
window back into the frames a recorder scraping the same exporters would have written, by the
one parser every page goes through (:func:`~allsmi.adapters.prometheus.parser.
rows_from_samples`): at each instant, each host's samples are folded into rows as if they
were its page.

Rules this module obeys:
- A host is a series' ``instance`` label: the target Prometheus scraped (``10.0.0.5:9090``),
  the same id a recorder scraping that target gives its rows. The labels Prometheus added to
  the page's (the target's labels: ``job``, and any its configuration attaches) are dropped,
  and a page label it renamed for clashing with one of them (``exported_instance``: the
  exporter's own ``instance``, its hostname) is given back its name: the parser sees the
  labels the page had. With ``honor_labels`` the exporter's ``instance`` was kept and is the
  host.
- ``up`` (Prometheus's own series for each target) of 0 at an instant makes that host one
  ``errors`` entry there (``"10.0.0.5:9090: down in Prometheus (up == 0)"``), as a failed
  scrape is; ``up`` is read only for hosts that have rows in the window's series.
- A value the API writes that is no number is left out; ``NaN`` and ``±Inf`` are no reading,
  as on a page. A host with no sample at an instant has no rows there (``no data``).
- Sections: those the series' families belong to (``sections_of``), the same for every frame
  of a recording, so a section without rows at an instant is "none", not "not collected".
- Memory and time: a run's answer is kept as parsed; a frame is built only for the instant
  asked for (:class:`Run`), each series' value found by bisection on its points.

Exporters' series (docs/architecture.md §3.2): a host whose series at an instant include
dcgm-exporter's ``DCGM_FI_*`` families is read there by :mod:`.dcgm` (GPU rows), else one with
node_exporter's (``node_cpu_seconds_total``, ``node_memory_*``…) by :mod:`.node` (CPU, memory
and storage rows), as the scraper reads such a page: only the families those readers map are
asked for (:func:`family_regex`), and the readers are the scraper's, so a dcgm-exported
cluster reads the same scraped live or read back. Their rows carry the host's pair id
(``pairs``: the caller's, the scraper's pairing of ``gpu-01:9400`` and ``gpu-01:9100``); a
second target of one id giving rows of a section the first gave has them dropped, with an
error naming it, as the scraper does.
- Counters across instants: the readers keep each host's state from one page to the next
  (PCIe and CPU counters → rates, the last-XID gauge → counts). A run folds its exporter
  hosts' instants in grid order, from ``first_ms − step_ms`` — the *lead* instant, one
  before the run (the caller fetches it), or the state ``carried`` over from the run before,
  which ended there. So every frame's rates, a run's first included, are over the step before
  it, whichever frame is asked first; asking an instant at or before the last one folded
  folds the run again from its start (a seek back costs the run's instants up to it). XID
  counts are counted from the lead instant (a gauge already non-zero there is ``last_xid``
  without a time), or from wherever the carried state began. A host without samples at an
  instant (a failed scrape) keeps its state, as the scraper does.
"""

from __future__ import annotations

import bisect
import copy
import math
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

import attrs

from allsmi.adapters.prometheus import dcgm, node
from allsmi.adapters.prometheus.conversions import Number, PageLabels
from allsmi.adapters.prometheus.exposition import Sample, sample_value
from allsmi.adapters.prometheus.families import FAMILIES
from allsmi.adapters.prometheus.parser import OverLimit, PageLimits, rows_from_samples
from allsmi.domain.hosts import claim_rows, host_part
from allsmi.domain.model import SECTION_TABLE, Frame, normalise_host_id
from allsmi.domain.sections import build_frame

HOST_LABEL: Final = "instance"
UP: Final = "up"
# An entity of the family table → the section its rows are in.
_SECTION_OF_ENTITY: Final = {
    "gpu": "gpu",
    "process": "process",
    "cpu": "cpu",
    "socket": "cpu",
    "core": "cpu",
    "memory": "memory",
    "disk": "storage",
    "chassis": "chassis",
    "fan": "chassis",
}
_SECTION_OF_FAMILY: Final = {
    f.name: _SECTION_OF_ENTITY[f.entity.key] for f in FAMILIES if f.entity.key in _SECTION_OF_ENTITY
}
_SECTION_KEYS: Final = {s.name: s.key for s in SECTION_TABLE}
# The exporters' families the readers map → the section of their rows (module rules).
_NODE_SECTION_OF_PREFIX: Final = (
    ("node_cpu_", "cpu"),
    ("node_load", "cpu"),
    ("node_memory_", "memory"),
    ("node_filesystem_", "storage"),
)
_EXPORTER_SECTION: Final = {
    **{name: "gpu" for name in dcgm.DCGM_NAMES},
    **{
        name: section
        for name in node.NODE_NAMES
        for prefix, section in _NODE_SECTION_OF_PREFIX
        if name.startswith(prefix)
    },
}
# node_uname_info (the node's hostname, its CPUs' architecture) has no section of its own.
_NODE_HOST_FAMILIES: Final = node.NODE_NAMES - set(_EXPORTER_SECTION)
_SECTION_OF_FAMILY.update(_EXPORTER_SECTION)


@attrs.frozen
class RangeSeries:
    """One series of a ``query_range`` answer: its labels (``__name__`` included) and its
    points as the API gives them, ``[seconds, "value"]`` in time order (left as parsed: a
    replay converts only the instant it shows)."""

    labels: dict[str, str]
    points: Sequence[Sequence[object]]

    @property
    def name(self) -> str:
        return self.labels.get("__name__", "")

    @property
    def host(self) -> str | None:
        return self.labels.get(HOST_LABEL)

    def value_at(self, t_ms: int) -> str | None:
        return value_at(self.points, t_ms)


def value_at(points: Sequence[Sequence[object]], t_ms: int) -> str | None:
    """The value ``points`` hold for the instant ``t_ms``, if any (a point that is not
    ``[number, "text"]`` is none)."""
    t_s = t_ms / 1000  # both sides the double nearest the decimal the API wrote
    try:
        at = bisect.bisect_left(points, t_s, key=_seconds)
        if at < len(points) and points[at][0] == t_s:
            value = points[at][1]
            return value if type(value) is str else None
    except (TypeError, IndexError, KeyError):
        return None
    return None


def _seconds(point: Sequence[object]) -> float:
    return point[0]  # type: ignore[return-value]  # a non-number fails the comparison


def sections_of(names: Iterable[str]) -> tuple[str, ...]:
    """The sections whose families are among the metric ``names``, in the table's order."""
    found = {_SECTION_OF_FAMILY[n] for n in names if n in _SECTION_OF_FAMILY}
    return tuple(s.name for s in SECTION_TABLE if s.name in found)


TARGET_LABELS: Final = frozenset({"job"})  # what every Prometheus adds (and instance)
_EXPORTED: Final = "exported_"


def page_labels(labels: dict[str, str], added: Collection[str] = TARGET_LABELS) -> dict[str, str]:
    """A series' labels as the exporter's page had them: ``__name__`` and the target's
    labels ``added`` by Prometheus (``instance`` apart: module rules) left out, the page's
    labels it renamed ``exported_*`` given back their names."""
    out = {k: v for k, v in labels.items() if k != "__name__" and k not in added}
    for key in [k for k in out if k.startswith(_EXPORTED)]:
        out[key.removeprefix(_EXPORTED)] = out.pop(key)
    return out


def family_regex(include: Collection[str]) -> str:
    """A ``__name__`` regex of the families of the sections ``include`` (the host's own,
    ``all_smi_up`` and build info, always), then the exporters' families the readers map to
    those sections (``node_uname_info`` with any of node_exporter's): only what will be
    recorded is asked for."""
    names = sorted(
        f.name for f in FAMILIES if _SECTION_OF_FAMILY.get(f.name, "host") in {*include, "host"}
    )
    exporters = sorted(name for name, section in _EXPORTER_SECTION.items() if section in include)
    if any(name in node.NODE_NAMES for name in exporters):
        exporters.extend(sorted(_NODE_HOST_FAMILIES))
    return "|".join(names + exporters)


def is_dcgm_family(name: str) -> bool:
    """Whether a series' name is one of dcgm-exporter's families the reader maps."""
    return dcgm.family_of(name) is not None


def is_exporter_family(name: str) -> bool:
    """Whether a series' name is one of dcgm-exporter's or node_exporter's families the
    readers map."""
    return is_dcgm_family(name) or name in node.NODE_NAMES


# The readers' state of each exporter host across instants (module rules).
ExporterState = dcgm.DcgmState | node.NodeState


@attrs.frozen
class Carried:
    """The exporter hosts' state at the instant ``at_ms``, a run's last: the next run, which
    begins a step later, goes on from it (module rules)."""

    at_ms: int
    states: dict[str, ExporterState]


# One series of a run: its name, page labels and points (its answer's labels are not kept).
_Series = tuple[str, dict[str, str], Sequence[Sequence[object]]]


class Run:
    """The series of one fetched run of instants, ready to give the frame at any of them:
    each series' page labels worked out once, its value found by bisection, so showing one
    instant costs one instant's conversion (module rules); an exporter host's instants are
    folded in order from ``first_ms − step_ms`` (module rules: counters across instants)."""

    def __init__(
        self,
        series: Sequence[RangeSeries],
        up: Sequence[RangeSeries],
        hosts: Sequence[str],
        include: Collection[str],
        limits: PageLimits,
        added: Collection[str] = TARGET_LABELS,
        *,
        pairs: Mapping[str, str] | None = None,
        first_ms: int | None = None,
        step_ms: int | None = None,
        carried: Carried | None = None,
    ) -> None:
        known = set(hosts)
        self.hosts = tuple(hosts)
        self.include = tuple(include)
        self.limits = limits
        self._series: dict[str, list[_Series]] = {h: [] for h in hosts}
        self._dcgm: dict[str, list[_Series]] = {h: [] for h in hosts}
        self._node: dict[str, list[_Series]] = {h: [] for h in hosts}
        for one in series:
            host = one.host
            if host in known:
                name = one.name
                kept = (name, page_labels(one.labels, added), one.points)
                if is_dcgm_family(name):
                    self._dcgm[host].append(kept)
                elif name in node.NODE_NAMES:
                    self._node[host].append(kept)
                else:
                    self._series[host].append(kept)
        self._up = [(u.host, u.points) for u in up if u.host in known and u.host is not None]
        self._exporters = tuple(h for h in hosts if self._dcgm[h] or self._node[h])
        self._pairs = dict(pairs or {})
        self._wanted = frozenset(_SECTION_KEYS[s] for s in self.include if s in _SECTION_KEYS)
        self._step = step_ms
        self._base_ms = None if first_ms is None or step_ms is None else first_ms - step_ms
        if carried is not None and carried.at_ms != self._base_ms:
            carried = None  # not the instant before this run: start from the lead instant
        self._carried = None if carried is None else copy.deepcopy(carried.states)
        self._states: dict[str, ExporterState] = {}
        self._at: int | None = None  # the last instant folded into _states

    def carried(self) -> Carried | None:
        """The exporter hosts' state at the last instant folded, for the run after this one
        (None when no exporter host was folded)."""
        if self._at is None or not self._exporters:
            return None
        return Carried(self._at, self._states)

    def frame(self, t_ms: int) -> Frame:
        """The frame at the instant ``t_ms``."""
        down = self._down(t_ms)
        exported = self._exported(t_ms, down)
        errors: list[str] = []
        merged: dict[str, list[Any]] = {key: [] for key in _SECTION_KEYS.values()}
        given: dict[tuple[str, str], str] = {}  # (host id, section key) → the target giving it
        processes = "process" in self.include
        for host in self.hosts:
            if host in down:
                errors.append(f"{host}: down in Prometheus (up == 0)")
                continue
            if host in exported:
                found = exported[host]
                if isinstance(found, str):
                    errors.append(found)
                    continue
                own = normalise_host_id(host)
                paired = self._pairs.get(host, own) != own
                for key, given_rows in found.items():
                    merged[key].extend(claim_rows(given, host, paired, key, given_rows))
                continue
            samples: list[Sample] = []
            for name, labels, points in self._series[host]:
                text = value_at(points, t_ms)
                if text is None:
                    continue
                value = sample_value(text)
                if value is not None:
                    samples.append((name, labels, value))
            if not samples:
                continue
            try:
                rows = rows_from_samples(samples, host, self.limits, processes=processes)
            except OverLimit as err:
                errors.append(f"{host}: {err}")
                continue
            for section in SECTION_TABLE:
                found_rows = getattr(rows, section.attr)
                if found_rows:
                    given.setdefault((found_rows[0].host_id, section.key), host)
                merged[section.key].extend(found_rows)
        by_name = {name: merged[key] for name, key in _SECTION_KEYS.items()}
        return build_frame(t_ms, by_name, include=self.include, source="remote", errors=errors)

    # ----------------------------------------------------------------- exporter hosts

    def _down(self, t_ms: int) -> set[str | None]:
        return {host for host, points in self._up if _is_zero(value_at(points, t_ms))}

    def _exported(self, t_ms: int, down: set[str | None]) -> dict[str, dict[str, list[Any]] | str]:
        """The exporter hosts' rows at ``t_ms`` (an error line for a host past a cap), the
        instants before it folded first (module rules)."""
        if not self._exporters:
            return {}
        if self._at is None or t_ms <= self._at:
            self._restart()
        if self._at is not None and self._step:
            for between in range(self._at + self._step, t_ms, self._step):
                self._fold(between, self._down(between))
        return self._fold(t_ms, down)

    def _restart(self) -> None:
        """Back to the state before the run's first instant: the carried one, else the lead
        instant's."""
        if self._carried is not None:
            self._states, self._at = copy.deepcopy(self._carried), self._base_ms
            return
        self._states, self._at = {}, None
        if self._base_ms is not None:
            self._fold(self._base_ms, self._down(self._base_ms))
            self._at = self._base_ms

    def _fold(self, t_ms: int, down: set[str | None]) -> dict[str, dict[str, list[Any]] | str]:
        """Each exporter host's page at ``t_ms`` through its reader, its state updated."""
        out: dict[str, dict[str, list[Any]] | str] = {}
        for host in self._exporters:
            if host in down:
                continue
            try:
                found = self._read(host, t_ms)
            except OverLimit as err:
                out[host] = f"{host}: {err}"
                continue
            if found is not None:
                out[host] = found
        self._at = t_ms
        return out

    def _read(self, host: str, t_ms: int) -> dict[str, list[Any]] | None:
        """One exporter host's rows at ``t_ms`` as the scraper reads its page (None: no
        sample of an exporter's there, its state left as it was). Raises :class:`OverLimit`."""
        instance, hostname = normalise_host_id(host), host_part(host)
        pair = self._pairs.get(host, instance)
        sections: dict[str, list[Any]] = {}
        samples = self._samples(self._dcgm[host], t_ms)
        if samples:
            page = dcgm.fold_dcgm(samples, self.limits)
            state = self._states.get(host)
            if not isinstance(state, dcgm.DcgmState):
                state = self._states[host] = dcgm.DcgmState()
            sections["gpus"] = page.rows(pair, instance, hostname, state, t_ms)
        else:
            samples = self._samples(self._node[host], t_ms)
            if not samples:
                if self._series[host] and any(
                    value_at(points, t_ms) is not None for _, _, points in self._series[host]
                ):
                    self._states.pop(host, None)  # it serves another kind of page now
                return None
            read = node.fold_node(samples, self.limits)
            node_state = self._states.get(host)
            if not isinstance(node_state, node.NodeState):
                node_state = self._states[host] = node.NodeState()
            sections.update(read.rows_of(pair, instance, hostname, node_state))
        return {key: rows for key, rows in sections.items() if key in self._wanted}

    def _samples(
        self, series: list[_Series], t_ms: int
    ) -> list[tuple[str, PageLabels, Number | None]]:
        """The samples at ``t_ms`` as a page's reader gets them: NaN and ±Inf as ``None``, at
        most ``limits.series``."""
        out: list[tuple[str, PageLabels, Number | None]] = []
        for name, labels, points in series:
            text = value_at(points, t_ms)
            if text is None:
                continue
            value = sample_value(text)
            if value is None:
                continue  # no number: left out (module rules)
            if len(out) >= self.limits.series:
                raise OverLimit(f"over {self.limits.series} series")
            out.append((name, labels, value if math.isfinite(value) else None))
        return out


def frames_of(
    series: Sequence[RangeSeries],
    up: Sequence[RangeSeries],
    instants: Iterable[int],
    hosts: Sequence[str],
    include: Collection[str],
    limits: PageLimits,
    added: Collection[str] = TARGET_LABELS,
    *,
    pairs: Mapping[str, str] | None = None,
) -> Iterator[Frame]:
    """The frame at each of ``instants`` (ms) of the window's ``series`` and ``up`` series,
    for ``hosts`` in that order; ``added``: the names of the labels Prometheus gave the
    targets, ``pairs``: the id of each exporter target's rows (module rules). Exporter hosts'
    counters are differences between successive ``instants``."""
    run = Run(series, up, hosts, include, limits, added, pairs=pairs)
    for t_ms in instants:
        yield run.frame(t_ms)


def _is_zero(text: str | None) -> bool:
    return text is not None and sample_value(text) == 0
