"""The fast page reader's shortcuts answer as before: a label block read once is kept (and
the kept blocks stay bounded), and a value is read as ``int()``-else-``float()`` without
raising on every float (docs/architecture.md §3.3)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from allsmi.adapters.prometheus import exposition
from allsmi.adapters.prometheus.exposition import NotPlain, plain_samples


def vendor_rule(text: str) -> int | float | None:
    """The rule as the vendor states it: ``int()`` if it reads, else ``float()``."""
    if "_" in text or text != text.strip():
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return None


@given(st.text(alphabet="0123456789+-.eEinfINFaA_ ٣²x", max_size=12))
def test_a_value_reads_as_int_else_float(text: str) -> None:
    try:
        got: int | float | None = exposition._number(text)
    except NotPlain:
        got = None
    want = vendor_rule(text)
    assert type(got) is type(want)
    assert got == want or (got != got and want != want)  # NaN == NaN here


def test_an_over_long_integer_still_reads_as_a_float() -> None:
    assert exposition._number("9" * 5000) == float("inf")


def test_samples_of_one_label_block_carry_equal_labels_parsed_once() -> None:
    page = "".join(f'm{n}{{gpu="0",UUID="GPU-1",Hostname="h"}} {n}\n' for n in range(25))
    samples = plain_samples(page)
    assert {id(labels) for _, labels, _ in samples} == {id(samples[0][1])}  # kept, shared
    assert samples[0][1] == {"gpu": "0", "UUID": "GPU-1", "Hostname": "h"}


def test_the_kept_label_blocks_stay_bounded() -> None:
    blocks = exposition.LABEL_BLOCKS_KEPT + 100
    page = "".join(f'm{{id="{n}"}} 1\n' for n in range(blocks))
    samples = plain_samples(page)
    assert [labels["id"] for _, labels, _ in samples] == [str(n) for n in range(blocks)]
    assert len(exposition._blocks) <= exposition.LABEL_BLOCKS_KEPT
