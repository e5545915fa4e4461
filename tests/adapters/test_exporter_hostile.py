"""A hostile exporter page costs its host one error, never the recorder, and never memory
without bound: labels no reader can take as numbers (5,000 digits: ``int()`` refuses them)
and label blocks or names of a megabyte (the fast reader keeps only short ones)."""

from __future__ import annotations

import pytest

from allsmi.adapters.network.scrape import HOST_LIMITS, ScrapeFailed, _Page
from allsmi.adapters.prometheus import exposition
from allsmi.adapters.prometheus.exposition import plain_samples
from allsmi.domain.model import SECTION_TABLE

HUGE = "9" * 5000
WANTED = frozenset(s.key for s in SECTION_TABLE)
T0 = 1_800_000_000_000


@pytest.mark.parametrize(
    "page",
    [
        f'DCGM_FI_DEV_GPU_TEMP{{gpu="{HUGE}",UUID="GPU-1"}} 40\n',
        f'DCGM_FI_DEV_GPU_TEMP{{gpu="0",UUID="GPU-1",GPU_I_ID="{HUGE}"}} 40\n',
        f'node_cpu_seconds_total{{cpu="{HUGE}",mode="idle"}} 5\nnode_load1 1\n',
    ],
)
def test_an_index_label_no_number_can_hold_is_at_most_that_hosts_error(page: str) -> None:
    read = _Page("n1:9400", "n1:9400", WANTED, HOST_LIMITS, T0)
    try:
        kind, sections = read.read(page, {}, False)
    except ScrapeFailed as err:  # the host's one error: the others are still recorded
        assert "\n" not in str(err)
        return
    assert kind in ("dcgm", "node")  # or the label is skipped: rows, and no exception
    assert isinstance(sections, dict)


def test_megabyte_label_blocks_and_names_are_not_kept() -> None:
    exposition._blocks.clear()
    exposition._names.clear()
    big = "x" * (1 << 20)
    for n in range(20):
        samples = plain_samples(f'm{{a="{n}{big}"}} 1\nn{n}{big} 2\n')
        assert samples[0][1]["a"].startswith(str(n))
    kept = sum(map(len, exposition._blocks)) + sum(map(len, exposition._names))
    assert kept <= 40 * exposition.KEPT_CHARS  # the short ones at most, never the megabytes
