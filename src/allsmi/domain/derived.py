"""Readings derived from other readings when no better source exists (docs/architecture.md §3.4).

A derived reading never replaces a measured one, and is ``None`` (not available) when what
it derives from is not available either: never an invented 0.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from allsmi.domain.model import Chassis, Gpu


def with_gpu_power(chassis: Chassis, gpus: Iterable[Gpu]) -> Chassis:
    """Chassis power = the sum of its GPUs' power when the chassis reports none."""
    if chassis.total_power_watts is not None:
        return chassis
    readings = [g.power_consumption for g in gpus if g.power_consumption is not None]
    if not readings:
        return chassis
    return attrs.evolve(chassis, total_power_watts=round(sum(readings), 3))
