"""Energy per GPU and per host (issue #20; all-smi's energy display). Pure.

Rules this module obeys:
- A GPU is keyed by ``(host_id, uuid)``; a host's energy is the sum of its GPUs' figures
  (None when none of its GPUs has one). Figures are joules.
- Live (:class:`EnergyMeter`, fed every frame the view shows): between two consecutive
  readings of one GPU, the device's own counter (``Gpu.health.energy_j``, docs/recording-
  format.md §5.3.3) is preferred: the step adds its difference, across any gap (the device
  measured it). A counter that went down (a driver reload reset it) or is missing on either
  side falls back to power for that step. Power is integrated by the **trapezoid rule**,
  ``(p0 + p1) / 2 × dt``, only where both readings are known and ``dt`` is at most
  :data:`GAP_INTERVALS` intervals: a longer gap (the host was lost, the collector stalled)
  adds nothing. The interval is the one given (the collection interval), else the shortest
  spacing seen so far. :meth:`EnergyMeter.reset` (the view's ``R``) zeroes the session: the
  next step counts from the last frame shown, so the session starts there.
- Replay (:func:`map_energy`): from the start of the recording to the frame on screen, from
  the map (docs/architecture.md §6: :mod:`allsmi.domain.summary`), whose power is kept per
  bucket as the count and the sum of readings, each rounded to a whole watt. Approximation:
  **each reading stands for one interval** (rectangle rule), so a GPU's energy is
  ``Σ readings (W) × interval (s)`` over the buckets before the frame's, plus the frame's
  own bucket up to the frame (the map's partial bucket). Gaps add nothing (no readings).
  The interval is the map's, else its estimate. Where the first frame of the recording and
  the frame on screen both carry the device counter for a GPU, and it did not go down, the
  counter's difference is used instead (:func:`replay_energy`).
- The exporter serves the device's own counter (``all_smi_energy_consumed_joules_total``, a
  true counter): nothing the view does resets it. A GPU without a counter has no energy
  line there — an integral of the exporter's would be a different reading under the
  counter's name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

import attrs

from allsmi.domain.history import MapView
from allsmi.domain.model import Frame, Gpu
from allsmi.domain.summary import Summary, bucket_of

GAP_INTERVALS: Final = 2  # a step longer than this many intervals is not integrated
J_PER_KWH: Final = 3_600_000.0

Key = tuple[str, str]  # (host_id, uuid)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) and value >= 0 else None


def _counter(gpu: Gpu) -> float | None:
    return _finite(gpu.health.energy_j) if gpu.health is not None else None


@attrs.frozen
class Energy:
    """The energy figures the screen shows, and what they count from."""

    gpus: Mapping[Key, float]
    since: str  # "view start" / "recording start", for the key help and tests

    def gpu(self, host: str, uuid: str) -> float | None:
        return self.gpus.get((host, uuid))

    def host(self, host: str) -> float | None:
        found = [joules for (h, _), joules in self.gpus.items() if h == host]
        return sum(found) if found else None


def format_energy(joules: float | None) -> str:
    """``850Wh``, ``12.34kWh``, ``1.23MWh`` (all-smi counts kWh); None is ``N/A``."""
    if joules is None or not math.isfinite(joules):
        return "N/A"
    wh = joules / 3600.0
    if wh < 1000:
        return f"{wh:.0f}Wh"
    if wh < 1_000_000:
        return f"{wh / 1000:.2f}kWh"
    return f"{wh / 1_000_000:.2f}MWh"


@attrs.define
class _Last:
    t_ms: int
    power: float | None
    counter: float | None


@attrs.define
class EnergyMeter:
    """Running energy per GPU over the frames fed (module header: live)."""

    interval_ms: int | None = None
    totals: dict[Key, float] = attrs.Factory(dict)
    last: dict[Key, _Last] = attrs.Factory(dict)
    shortest_ms: int | None = None

    def _interval(self) -> int | None:
        return self.interval_ms if self.interval_ms is not None else self.shortest_ms

    def feed(self, frame: Frame) -> None:
        for gpu in frame.gpus or ():
            key = (gpu.host_id, gpu.uuid)
            now = _Last(frame.t_ms, _finite(gpu.power_consumption), _counter(gpu))
            before = self.last.get(key)
            self.last[key] = now
            self.totals.setdefault(key, 0.0)
            if before is None or now.t_ms <= before.t_ms:
                continue
            dt = now.t_ms - before.t_ms
            if self.shortest_ms is None or dt < self.shortest_ms:
                self.shortest_ms = dt
            self.totals[key] += self._step(before, now, dt)

    def _step(self, before: _Last, now: _Last, dt: int) -> float:
        if before.counter is not None and now.counter is not None and now.counter >= before.counter:
            return now.counter - before.counter
        interval = self._interval()
        if interval is not None and dt > GAP_INTERVALS * interval:
            return 0.0
        if before.power is None or now.power is None:
            return 0.0
        return (before.power + now.power) / 2 * dt / 1000.0

    def reset(self) -> None:
        """The view's ``R``: the session starts again at the last frame shown."""
        self.totals = dict.fromkeys(self.totals, 0.0)

    def energy(self, since: str = "view start") -> Energy:
        return Energy(dict(self.totals), since)


@attrs.define
class MapEnergy:
    """The replay's energy from the map (module header: replay), summed incrementally: the
    sums up to the frame's bucket are kept, and a frame in a later bucket of the same map
    adds only the buckets between. Playing a week-long recording therefore costs a bucket's
    column a bucket crossed, not the whole map a frame. A map that changed (its frames
    counted anew: the background pass merged more in) or a frame further back is summed
    from the start again."""

    _map: Summary | None = None  # the map summed (held: an id could be reused)
    _frames: int = 0  # ...and its frames then
    _stop: int = 0  # the bucket positions summed: those before it
    _sums: dict[Key, int] = attrs.Factory(dict)

    def joules(self, view: MapView) -> dict[Key, float]:
        """Joules per GPU from the recording's start to the frame."""
        summary = view.summary
        interval = summary.interval_ms or summary.interval_estimate()
        if interval is None:
            return {}
        last = bucket_of(view.t_ms, summary.width_ms)
        # the frame's own bucket from the partial (up to the frame), when there is one
        stop = summary.position_of(last if view.partial is not None else last + 1)
        sums = dict(self._before(summary, stop))
        if view.partial is not None:
            partial = view.partial
            for key, total in partial.power_sums(0, partial.position_of(last + 1)).items():
                sums[key] = sums.get(key, 0) + total
        return {key: total * interval / 1000.0 for key, total in sums.items()}

    def _before(self, summary: Summary, stop: int) -> dict[Key, int]:
        frames = summary.frames
        if summary is not self._map or frames != self._frames or stop < self._stop:
            self._map, self._frames, self._stop, self._sums = summary, frames, 0, {}
        if stop > self._stop:
            for key, total in summary.power_sums(self._stop, stop).items():
                self._sums[key] = self._sums.get(key, 0) + total
            self._stop = stop
        return self._sums


def map_energy(view: MapView) -> dict[Key, float]:
    """Joules per GPU from the recording's start to the frame (module header: replay)."""
    return MapEnergy().joules(view)


def replay_energy(
    view: MapView, first: Frame | None, frame: Frame | None, sums: MapEnergy | None = None
) -> Energy:
    """The replay's figures: the map's (``sums``, kept by the caller between frames, else
    summed afresh), the device counter's difference from the recording's first frame where
    both frames carry it and it did not go down."""
    gpus = (sums or MapEnergy()).joules(view)
    if first is not None and frame is not None:
        start = {(g.host_id, g.uuid): _counter(g) for g in first.gpus or ()}
        for gpu in frame.gpus or ():
            key = (gpu.host_id, gpu.uuid)
            was, now = start.get(key), _counter(gpu)
            if was is not None and now is not None and now >= was:
                gpus[key] = now - was
    return Energy(gpus, "recording start")
