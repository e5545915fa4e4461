"""Readings derived from others: chassis power from the GPUs' when the chassis has none."""

from __future__ import annotations

from allsmi.domain.derived import with_gpu_power
from allsmi.domain.model import Chassis, Gpu


def _gpu(power: float | None) -> Gpu:
    return Gpu("u", "H200", "GPU", "h", "h", "h", power_consumption=power)


CHASSIS = Chassis(host_id="h", hostname="h", instance="h")


def test_chassis_power_is_the_sum_of_the_gpus_power_rounded_to_milliwatts() -> None:
    gpus = (_gpu(100.1234), _gpu(None), _gpu(200.0004))
    assert with_gpu_power(CHASSIS, gpus).total_power_watts == 300.124


def test_a_measured_chassis_power_is_never_replaced() -> None:
    measured = Chassis(host_id="h", hostname="h", instance="h", total_power_watts=950.0)
    assert with_gpu_power(measured, (_gpu(300.0),)) is measured


def test_no_gpu_power_reading_leaves_chassis_power_not_available() -> None:
    assert with_gpu_power(CHASSIS, (_gpu(None),)).total_power_watts is None
    assert with_gpu_power(CHASSIS, ()).total_power_watts is None
