"""Host lists for cluster sources (DESIGN.md §6). Pure.

A hostfile holds one host per line (``host:port`` or a URL); ``#`` comments and blank lines
are ignored. A host is kept as its *scrape target*: the host id (no scheme, no trailing slash)
with ``https://`` in front when it was given that way — plain HTTP is the default and needs
no scheme. Targets are deduplicated by host id, in first-seen order; rows, tabs and headers
always use the host id (:func:`allsmi.domain.model.normalise_host_id` of the target).
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


def scrape_target(host: str) -> str:
    """``https://n1:443/`` → ``https://n1:443``; ``http://n1:9090`` → ``n1:9090``."""
    ident = normalise_host_id(host)
    return f"https://{ident}" if host.strip().lower().startswith("https://") else ident


def merge_hosts(hosts: Iterable[str]) -> tuple[str, ...]:
    """Scrape targets, one per host id, in first-seen order; an empty entry is a usage error."""
    seen: dict[str, str] = {}
    for host in hosts:
        normal = normalise_host_id(host)
        if not normal:
            raise UsageError(f"empty host name in {host!r}")
        seen.setdefault(normal, scrape_target(host))
    return tuple(seen.values())


def host_ids(targets: Iterable[str]) -> tuple[str, ...]:
    """The host ids of scrape targets (what rows carry in ``host_id``)."""
    return tuple(normalise_host_id(target) for target in targets)
