"""A GPU's health signals on the ``/metrics`` page (docs/recording-format.md §5.3.3): the
names, types, units and label sets the families table gives them, what is written for a
reading that was not taken (nothing), what "read, none" looks like (``[]`` and ``{}``), how
all-smi's own energy family is read, and that promtool finds the page clean.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Final

import attrs
import pytest

from allsmi.adapters.prometheus.families import FAMILIES, Health, HealthParts
from allsmi.adapters.prometheus.parser import parse_metrics
from allsmi.adapters.prometheus.writer import render_metrics
from allsmi.domain.model import CLOCK_EVENT_BITS, Frame, Gpu, GpuHealth

from .prometheus_frames import SAMPLE_HEALTH, SAMPLE_TARGET, sample_frame

VERSION: Final = "9.9.9"
HOST: Final = "node-a"
HEALTH_FAMILIES: Final = frozenset(
    f.name for f in FAMILIES if isinstance(f.read, Health | HealthParts)
)
# The base labels of our one GPU, as the writer writes them.
BASE: Final = 'gpu="H100",instance="node-a",gpu_uuid="GPU-0",gpu_index="0"'


def gpu_frame(health: GpuHealth | None) -> Frame:
    gpu = Gpu(
        uuid="GPU-0",
        name="H100",
        device_type="GPU",
        host_id=SAMPLE_TARGET,
        hostname=HOST,
        instance=HOST,
        utilization=50.0,
        detail={"index": "0"},
        health=health,
    )
    return Frame(t_ms=1_700_000_000_000, gpus=(gpu,))


def page_of(health: GpuHealth | None) -> str:
    return render_metrics(gpu_frame(health), version=VERSION)


def lines_of(page: str, name: str) -> list[str]:
    return [line for line in page.splitlines() if line.startswith(name + "{")]


def health_back(page: str) -> GpuHealth | None:
    rows = parse_metrics(page, SAMPLE_TARGET)
    assert rows.skipped_lines == 0
    (gpu,) = rows.gpus
    return gpu.health


# --- what is written ---------------------------------------------------------------------


def test_a_gpu_without_health_has_no_health_family_on_the_page() -> None:
    page = page_of(None)
    assert not [line for line in page.splitlines() if line.split("{")[0] in HEALTH_FAMILIES]
    assert "all_smi_gpu_utilization{" in page  # the GPU itself is there
    assert health_back(page) is None


def test_only_the_readings_taken_are_written() -> None:
    page = page_of(GpuHealth(sm_clock_mhz=1755))
    written = {line.split("{")[0] for line in page.splitlines() if not line.startswith("#")}
    assert written & HEALTH_FAMILIES == {"all_smi_gpu_clock_sm_mhz"}
    assert lines_of(page, "all_smi_gpu_clock_sm_mhz") == [
        f"all_smi_gpu_clock_sm_mhz{{{BASE}}} 1755"
    ]
    assert health_back(page) == GpuHealth(sm_clock_mhz=1755)


def test_clock_event_reasons_are_one_sample_per_reason_one_when_active() -> None:
    page = page_of(GpuHealth(clock_events=("sw_power_cap", "hw_slowdown")))
    active = {"sw_power_cap", "hw_slowdown"}
    assert lines_of(page, "all_smi_gpu_clock_event_reason") == [
        f'all_smi_gpu_clock_event_reason{{{BASE},reason="{name}"}} {int(name in active)}'
        for _, name in CLOCK_EVENT_BITS
    ]
    assert health_back(page) == GpuHealth(clock_events=("sw_power_cap", "hw_slowdown"))


def test_no_clock_event_reason_active_is_not_reasons_not_read() -> None:
    none_active = page_of(GpuHealth(clock_events=(), sm_clock_mhz=1))
    not_read = page_of(GpuHealth(clock_events=None, sm_clock_mhz=1))
    zeros = lines_of(none_active, "all_smi_gpu_clock_event_reason")
    assert len(zeros) == len(CLOCK_EVENT_BITS) and all(line.endswith(" 0") for line in zeros)
    assert lines_of(not_read, "all_smi_gpu_clock_event_reason") == []
    assert health_back(none_active) == GpuHealth(clock_events=(), sm_clock_mhz=1)
    assert health_back(not_read) == GpuHealth(clock_events=None, sm_clock_mhz=1)


def test_a_reason_no_nvml_bit_names_is_written_once_after_the_known_ones() -> None:
    page = page_of(GpuHealth(clock_events=("later_reason", "hw_thermal", "later_reason")))
    lines = lines_of(page, "all_smi_gpu_clock_event_reason")
    assert lines[-1] == f'all_smi_gpu_clock_event_reason{{{BASE},reason="later_reason"}} 1'
    assert len(lines) == len(CLOCK_EVENT_BITS) + 1
    back = health_back(page)
    assert back is not None and back.clock_events == ("hw_thermal", "later_reason")


def test_xid_counts_are_a_counter_per_code_in_code_order() -> None:
    page = page_of(GpuHealth(xid_counts={"79": 1, "119": 40, "13": 2}))
    assert "# TYPE all_smi_gpu_xid_errors_total counter\n" in page
    assert lines_of(page, "all_smi_gpu_xid_errors_total") == [
        f'all_smi_gpu_xid_errors_total{{{BASE},code="13"}} 2',
        f'all_smi_gpu_xid_errors_total{{{BASE},code="79"}} 1',
        f'all_smi_gpu_xid_errors_total{{{BASE},code="119"}} 40',
    ]
    assert lines_of(page, "all_smi_gpu_xid_watched") == [f"all_smi_gpu_xid_watched{{{BASE}}} 1"]
    back = health_back(page)
    assert back is not None and back.xid_counts == {"13": 2, "79": 1, "119": 40}


def test_xids_watched_and_none_seen_is_not_xids_not_watched() -> None:
    none_seen = page_of(GpuHealth(xid_counts={}, sm_clock_mhz=1))
    not_watched = page_of(GpuHealth(xid_counts=None, sm_clock_mhz=1))
    assert lines_of(none_seen, "all_smi_gpu_xid_errors_total") == []
    assert lines_of(none_seen, "all_smi_gpu_xid_watched") == [
        f"all_smi_gpu_xid_watched{{{BASE}}} 1"
    ]
    assert lines_of(not_watched, "all_smi_gpu_xid_watched") == []
    assert health_back(none_seen) == GpuHealth(xid_counts={}, sm_clock_mhz=1)
    assert health_back(not_watched) == GpuHealth(sm_clock_mhz=1)


def test_times_are_in_seconds_and_flags_are_zero_or_one() -> None:
    health = GpuHealth(
        power_violation_us=1_500_000,
        thermal_violation_us=1,
        last_xid=79,
        last_xid_ms=1_700_000_123_456,
        remap_pending=True,
        remap_failure=False,
    )
    page = page_of(health)
    expected = {
        "all_smi_gpu_power_violation_seconds_total": "1.5",
        "all_smi_gpu_thermal_violation_seconds_total": "0.000001",
        "all_smi_gpu_last_xid_code": "79",
        "all_smi_gpu_last_xid_timestamp_seconds": "1700000123.456",
        "all_smi_gpu_row_remap_pending": "1",
        "all_smi_gpu_row_remap_failure": "0",
    }
    for name, text in expected.items():
        assert lines_of(page, name) == [f"{name}{{{BASE}}} {text}"]
    assert health_back(page) == health


def test_a_violation_time_past_2_to_the_51_us_reads_back_to_float_precision() -> None:
    """The stated rounding: µs go through a float of seconds, exact below 2**51 µs."""
    exact, past = 2**51 - 1, 2**62 + 12_345
    assert health_back(page_of(GpuHealth(power_violation_us=exact))) == GpuHealth(
        power_violation_us=exact
    )
    back = health_back(page_of(GpuHealth(power_violation_us=past)))
    assert back is not None and back.power_violation_us is not None
    assert abs(back.power_violation_us - past) <= past * 2**-52


def test_energy_is_all_smis_counter_with_its_host_and_scope_labels() -> None:
    page = page_of(GpuHealth(energy_j=1234.5))
    assert "# TYPE all_smi_energy_consumed_joules_total counter\n" in page
    assert lines_of(page, "all_smi_energy_consumed_joules_total") == [
        f'all_smi_energy_consumed_joules_total{{{BASE},host="node-a",scope="gpu"}} 1234.5'
    ]


# --- what is read ------------------------------------------------------------------------


def test_all_smis_energy_sample_goes_to_the_gpu_its_host_label_names() -> None:
    """all-smi labels it host, scope, gpu_index, gpu_uuid (no instance): it is the same GPU
    as the one its other families name; a CPU or chassis scope is no GPU."""
    page = (
        f"all_smi_gpu_utilization{{{BASE}}} 50.0\n"
        'all_smi_energy_consumed_joules_total{host="node-a",scope="gpu",gpu_index="0",'
        'gpu_uuid="GPU-0"} 98765.432\n'
        'all_smi_energy_consumed_joules_total{host="node-a",scope="cpu"} 5.0\n'
    )
    rows = parse_metrics(page, SAMPLE_TARGET)
    (gpu,) = rows.gpus
    assert gpu.utilization == 50.0
    assert gpu.health == GpuHealth(energy_j=98765.432)


def test_health_families_of_no_number_give_no_health() -> None:
    page = (
        f"all_smi_gpu_clock_sm_mhz{{{BASE}}} NaN\n"
        f'all_smi_gpu_xid_errors_total{{{BASE},code="13"}} NaN\n'
        f"all_smi_gpu_xid_watched{{{BASE}}} 0\n"
        f"all_smi_gpu_clock_event_reason{{{BASE}}} 1\n"  # no reason label: says nothing
    )
    assert health_back(page) == GpuHealth(xid_counts={})  # the code's counter was there


def test_health_families_of_another_gpu_stay_with_it() -> None:
    frame = sample_frame()
    rows = parse_metrics(render_metrics(frame, version=VERSION), SAMPLE_TARGET)
    assert [gpu.health for gpu in rows.gpus] == list(SAMPLE_HEALTH)


# --- promtool ----------------------------------------------------------------------------

# promtool's one complaint we accept: the `_count` suffix on all-smi's legacy gauge names
# (docs/architecture.md §3.3), as tests/e2e/test_exporter.py accepts it.
LEGACY_COUNT: Final = re.compile(
    r"^all_smi_cpu_(core|socket|thread)_count non-histogram and non-summary metrics should "
    r'not have "_count" suffix$'
)


def test_promtool_finds_a_page_with_every_health_family_clean() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (scripts/setup-system installs it)")
    frame = sample_frame()
    page = render_metrics(frame, version=VERSION)
    written = {line.split("{")[0] for line in page.splitlines() if not line.startswith("#")}
    assert written >= HEALTH_FAMILIES
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=page,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode in (0, 3), complaints  # 1 would be a broken exposition
    assert [line for line in complaints if not LEGACY_COUNT.match(line)] == []


def test_the_sample_frame_has_every_health_field_read() -> None:
    """So the table's round trip (test_prometheus_families.py) covers every field."""
    full = SAMPLE_HEALTH[0]
    assert all(value is not None for value in attrs.asdict(full, recurse=False).values())
    assert {f.read.name for f in FAMILIES if isinstance(f.read, Health | HealthParts)} == set(
        attrs.fields_dict(GpuHealth)
    )
