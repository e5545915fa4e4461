"""The fast exposition reader against ``prometheus_client``: on generated pages — the everyday
shape, its near misses and plain garbage — it gives exactly the vendor's samples, or steps
aside (``NotPlain``). It never answers differently."""

from __future__ import annotations

import math

from hypothesis import event, example, given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from allsmi.adapters.prometheus.exposition import NotPlain, Sample, plain_samples

NAMES = st.sampled_from(
    ["all_smi_gpu_utilization", "x", "x_total", "h_bucket", "h_count", "s_sum", "a:b", "_u"]
)
ODD_NAMES = st.sampled_from(["1abc", "a-b", "", "é", "a b"])
LABEL_NAMES = st.sampled_from(["gpu", "instance", "index", "le", "a_1"])
ODD_LABEL_NAMES = st.sampled_from(["__name__", "__x", "1a", "a-b", ""])
VALUE_TEXT = st.text(alphabet='ab {}",=\\n#\t.é', max_size=8)
NUMBERS = st.sampled_from(
    ["1", "-1.5", "2E-2", "8.0E+10", "NaN", "+Inf", "-Inf", "0", "9" * 30, "1e400", "+5"]
)
ODD_NUMBERS = st.sampled_from(["1_000", "abc", "0x10", "", "١٢", "1.2.3", "inf", "Infinity"])
SPACES = st.sampled_from([" "] * 12 + ["  ", "\t", " \t"])


@st.composite
def label_block(draw: st.DrawFn) -> str:
    pairs = []
    for _ in range(draw(st.integers(0, 3))):
        odd = draw(st.integers(0, 7)) == 0
        name = draw(ODD_LABEL_NAMES) if odd else draw(LABEL_NAMES)
        value = draw(VALUE_TEXT)
        if draw(st.booleans()):  # quote the value properly (escapes included)
            value = value.replace("\\", "\\\\").replace('"', '\\"')
        eq = draw(st.sampled_from(["=", "=", " = ", "="]))
        pairs.append(f'{name}{eq}"{value}"')
    sep = draw(st.sampled_from([","] * 4 + [", ", " ,"]))
    trailing = draw(st.sampled_from([""] * 6 + [",", " "]))
    return "{" + sep.join(pairs) + trailing + "}"


@st.composite
def sample_line(draw: st.DrawFn) -> str:
    name = draw(NAMES | ODD_NAMES) if draw(st.integers(0, 9)) == 0 else draw(NAMES)
    block = draw(label_block()) if draw(st.booleans()) else ""
    value = draw(NUMBERS | ODD_NUMBERS) if draw(st.integers(0, 5)) == 0 else draw(NUMBERS)
    line = f"{name}{block}{draw(SPACES)}{value}"
    if draw(st.booleans()):
        line += f"{draw(SPACES)}{draw(st.sampled_from(['1700000000000', '-5', 'x', '1.5']))}"
    return line


@st.composite
def comment_line(draw: st.DrawFn) -> str:
    what = draw(st.sampled_from(["HELP", "TYPE", "TYPE", "note", ""]))
    name = draw(NAMES | ODD_NAMES)
    kind = draw(st.sampled_from(["gauge", "counter", "summary", "histogram", "untyped", "info"]))
    rest = {"HELP": draw(VALUE_TEXT), "TYPE": kind}.get(what, "free text")
    prefix = draw(st.sampled_from(["# "] * 8 + ["#", "#  ", "#\t"]))
    parts = [p for p in (what, name, rest) if p]
    if draw(st.integers(0, 4)) == 0:
        parts = parts[: draw(st.integers(0, len(parts)))]
    return prefix + " ".join(parts)


pages = st.lists(
    st.one_of(sample_line(), sample_line(), comment_line(), st.sampled_from(["", "  ", "\t"])),
    max_size=12,
).map("\n".join)


def vendor_samples(text: str) -> list[Sample]:
    return [
        (str(s.name), dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def comparable(samples: list[Sample]) -> list[tuple[str, dict[str, str], str]]:
    """NaN is never equal to itself; compare values by their exact text form."""
    return [
        (n, labels, "nan" if isinstance(v, float) and math.isnan(v) else repr(v))
        for n, labels, v in samples
    ]


def check(page: str) -> None:
    try:
        fast = plain_samples(page)
    except NotPlain:
        event("not plain")
        return
    event("plain")
    assert comparable(fast) == comparable(vendor_samples(page))


@given(pages)
@example("# HELP foo x\nfoo 1\n# TYPE foo counter\nfoo 2")  # typed after a sample
@example("# TYPE foo counter\nfoo 1\n# TYPE foo gauge\nfoo 2")  # retyped
@example(f"a 1 {'9' * 400}")  # a timestamp no float holds
@example(f"a {'9' * 400}\n# TYPE c counter\nc 1\nc_total 2")
def test_the_fast_reader_gives_the_vendors_samples_or_steps_aside(page: str) -> None:
    check(page)


@given(st.lists(sample_line(), min_size=1, max_size=8).map("\n".join))
def test_pages_of_sample_lines_are_often_plain_and_then_agree(page: str) -> None:
    """The same check on pages without comments, where most draws are plain."""
    check(page)


@given(
    st.lists(sample_line(), min_size=1, max_size=8),
    st.lists(NUMBERS | ODD_NUMBERS, min_size=8, max_size=8),
)
def test_a_page_read_again_with_new_values_agrees_from_its_kept_heads(
    lines: list[str], values: list[str]
) -> None:
    """The kept heads (``name{block}``) answer a page seen before: each line again, its last
    token replaced, reads as the vendor reads it — or steps aside where it does."""
    check("\n".join(lines))  # the heads are kept now
    again = [
        f"{line.rpartition(' ')[0]} {value}" for line, value in zip(lines, values, strict=False)
    ]
    check("\n".join(again))
