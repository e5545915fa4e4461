"""Host lists for cluster sources (DESIGN.md §6). Pure.

A hostfile holds one host per line (``host:port`` or a URL); ``#`` comments and blank lines
are ignored. Hosts are normalised (no scheme, no trailing slash) and deduplicated in order.
"""

from __future__ import annotations

from collections.abc import Iterable

from allsmi.domain.errors import UsageError
from allsmi.domain.model import normalise_host_id


def parse_hostfile(text: str, origin: str = "hostfile") -> tuple[str, ...]:
    hosts = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        if any(c.isspace() for c in entry):
            raise UsageError(f"{origin} line {line_no}: {entry!r} is not one host")
        hosts.append(entry)
    return merge_hosts(hosts)


def merge_hosts(hosts: Iterable[str]) -> tuple[str, ...]:
    """Normalised, deduplicated, in first-seen order; an empty entry is a usage error."""
    seen: dict[str, None] = {}
    for host in hosts:
        normal = normalise_host_id(host)
        if not normal:
            raise UsageError(f"empty host name in {host!r}")
        seen.setdefault(normal, None)
    return tuple(seen)
