"""Which inputs of a merged replay overlap no other in time: the sorted sweep of
``merged._overlaps`` against the pairwise definition, on random spans."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from allsmi.adapters.recording.merged import _overlaps
from allsmi.domain.model import Frame, Header


class Span:
    """An input of two frames: its span, and the hosts its header lists."""

    def __init__(self, first: int, last: int, hosts: tuple[str, ...] = ()) -> None:
        self.times = (first, last)
        self.header = Header(source="remote", interval_ms=1000, hosts=hosts)
        self.frame_count = 2
        self.generation = 0
        self.skipped_lines = 0
        self.warnings: list[str] = []

    def key_at(self, index: int) -> int:
        return self.times[index]

    time_at = key_at

    def index_at_or_before(self, key_ms: int) -> int:
        return 1 if key_ms >= self.times[1] else 0

    def frame(self, index: int) -> Frame:
        return Frame(t_ms=self.times[index])

    def close(self) -> None:
        pass


spans = st.lists(
    st.tuples(st.integers(0, 50), st.integers(0, 20)).map(lambda s: (s[0], s[0] + s[1])),
    min_size=1,
    max_size=8,
)


@given(spans)
def test_an_input_is_alone_exactly_when_no_other_span_meets_it(
    given_spans: list[tuple[int, int]],
) -> None:
    inputs = [Span(a, b) for a, b in given_spans]
    names = [f"r{n}" for n in range(len(inputs))]
    lines, _ = _overlaps(inputs, names)
    alone = {
        n
        for n, (a, b) in enumerate(given_spans)
        if len(given_spans) > 1
        and not any(m != n and c <= b and a <= d for m, (c, d) in enumerate(given_spans))
    }
    assert [line.split(" ")[0] for line in lines] == [names[n] for n in sorted(alone)]


def test_a_host_in_two_inputs_at_once_is_told_once_and_not_when_apart() -> None:
    inputs = [
        Span(0, 10, ("h1", "h2")),
        Span(5, 15, ("h2",)),
        Span(8, 9, ("h2",)),
        Span(20, 30, ("h1",)),
    ]
    lines, told = _overlaps(inputs, ["a", "b", "c", "d"])
    assert told == {"h2"}  # h1 is in a and d, which never overlap
    assert [line for line in lines if "host" in line] == [
        "host h2 is in a and b at once: the newer row is shown"
    ]
    assert lines[0].startswith("d (")  # d overlaps nobody
