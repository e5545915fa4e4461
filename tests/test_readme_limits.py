"""The limits the README promises are the ones the code enforces: each figure quoted in the
guarantees is read from the constant that enforces it, so changing one without the other
fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

from allsmi.adapters.network import scrape
from allsmi.adapters.network.server import DEFAULT_LIMITS
from allsmi.adapters.recording import decoding, follow, seektable

README = " ".join((Path(__file__).parent.parent / "README.md").read_text().split())
MIB = 1024 * 1024


def mib(value: int) -> str:
    assert value % MIB == 0
    return f"{value // MIB} MiB"


@pytest.mark.parametrize(
    "quoted",
    [
        f"a body of at most {mib(scrape.MAX_BODY_BYTES)}",
        f"at most {scrape.MAX_SERIES:,} series and {scrape.MAX_PAGE_LINES:,} lines",
        f"at most {scrape.MAX_GPUS} GPUs and {scrape.MAX_PROCESSES:,} processes",
        f"and {scrape.MAX_OTHER_ROWS:,} CPU, core, socket, memory, disk, chassis and fan rows",
        f"one object per {scrape.BYTES_PER_CONTAINER}",
        f"one value per {scrape.BYTES_PER_VALUE} bytes",
        f"at most {mib(scrape.MAX_HOST_ROWS_BYTES)} of rows once recorded",
        f"reads at most {mib(follow.READ_LIMIT)} of the file and decodes at most "
        f"{mib(follow.DECODE_LIMIT)}",
        f"a line over {mib(decoding.MAX_LINE)} is dropped as it grows",
        f"at most 1000 lines or {mib(follow.TAIL_CHUNK_BYTES)}",
        f"at most {seektable.MAX_CHUNK_FRAMES} a chunk",
        f"At most {DEFAULT_LIMITS.max_connections} connections are served at once",
    ],
)
def test_the_readme_quotes_the_enforced_limit(quoted: str) -> None:
    assert " ".join(quoted.split()) in README  # however the paragraph is wrapped
