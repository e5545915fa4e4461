"""Host lists for cluster sources (DESIGN.md §6). Pure.

A hostfile holds one host per line (``host:port`` or a URL); ``#`` comments and blank lines
are ignored. A host is kept as its *scrape target*: the host id (no scheme, no trailing slash)
with ``https://`` in front when it was given that way — plain HTTP is the default and needs
no scheme. Targets are deduplicated by host id, in first-seen order; rows, tabs and headers
always use the host id (:func:`allsmi.domain.model.normalise_host_id` of the target).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from allsmi.domain.errors import UsageError
from allsmi.domain.model import normalise_host_id


def parse_hostfile(text: str, origin: str = "hostfile") -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        try:
            if any(c.isspace() for c in entry):
                raise UsageError(f"{entry!r} is not one host")
            _add(seen, entry)
        except UsageError as err:
            raise UsageError(f"{origin} line {line_no}: {err}") from None
    return tuple(seen.values())


def scrape_target(host: str) -> str:
    """``https://n1:443/`` → ``https://n1:443``; ``http://n1:9090`` → ``n1:9090``. A host
    that is no usable address is a usage error naming it."""
    ident = normalise_host_id(host)
    secure = host.strip().lower().startswith("https://")
    _check_address(ident, host)
    return f"https://{ident}" if secure else ident


def _check_address(ident: str, given: str) -> None:
    if "://" in ident:
        raise UsageError(f"host {given!r}: only http:// and https:// can be scraped")
    if not ident.isascii() or not ident.isprintable() or " " in ident:
        raise UsageError(f"host {given!r}: not an address (ASCII, no spaces)")
    try:
        parts = urlsplit(f"http://{ident}")
        port = parts.port
    except ValueError as err:
        raise UsageError(f"host {given!r}: not an address ({err})") from None
    if not parts.hostname:
        raise UsageError(f"host {given!r}: no host name")
    if port is None and parts.netloc.endswith(":"):
        raise UsageError(f"host {given!r}: empty port")


def merge_hosts(hosts: Iterable[str]) -> tuple[str, ...]:
    """Scrape targets, one per host id, in first-seen order; an empty entry is a usage error."""
    seen: dict[str, str] = {}
    for host in hosts:
        _add(seen, host)
    return tuple(seen.values())


def _add(seen: dict[str, str], host: str) -> None:
    """``host``'s target under its id, unless an earlier one has that id."""
    normal = normalise_host_id(host)
    if not normal:
        raise UsageError(f"empty host name in {host!r}")
    if normal not in seen:
        seen[normal] = scrape_target(host)


def host_ids(targets: Iterable[str]) -> tuple[str, ...]:
    """The host ids of scrape targets (what rows carry in ``host_id``)."""
    return tuple(normalise_host_id(target) for target in targets)
