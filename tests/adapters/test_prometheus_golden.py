"""The writer's bytes for ``golden_frame()`` — every family, every label rule, every value
form — are the bytes the writer wrote before its families became one table.

tests/fixtures/prometheus-golden.prom was written by the per-section writer of commit 258d6d0
(``allsmi.adapters.prometheus_text``) from ``prometheus_frames.golden_frame()``; see
tests/fixtures/README.md for the command. A change to these bytes is a change to what every
dashboard and scraper of the exporter sees: make it on purpose, and regenerate the fixture
in the same commit.
"""

from __future__ import annotations

import re
from pathlib import Path

from allsmi.adapters.prometheus.writer import render_metrics

from .prometheus_frames import GOLDEN_VERSION, golden_frame

GOLDEN = Path(__file__).parent.parent / "fixtures" / "prometheus-golden.prom"
# all_smi_build_info names the exporting machine's OS and architecture: the one part of the
# page that depends on where it is written.
BUILD_PLATFORM = re.compile(rb',os="[^"]*",arch="[^"]*"\}')


def machine_neutral(page: bytes) -> bytes:
    neutral, count = BUILD_PLATFORM.subn(b',os="OS",arch="ARCH"}', page)
    assert count == 2, "one all_smi_build_info sample per host of the golden frame"
    return neutral


def test_the_page_is_byte_for_byte_the_golden_page() -> None:
    page = render_metrics(golden_frame(), ready=True, version=GOLDEN_VERSION).encode("utf-8")
    assert machine_neutral(page) == machine_neutral(GOLDEN.read_bytes())
