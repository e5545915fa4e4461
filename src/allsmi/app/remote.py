"""Wiring the remote source for ``record --source remote`` and ``view --hosts``."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

from allsmi.adapters.network.client import HttpOrigin
from allsmi.adapters.network.scrape import RemoteConfig, RemoteSource
from allsmi.domain.errors import UsageError

MAX_TOKEN_BYTES = 4096


def read_token(token_file: str | None) -> str | None:
    """The bearer token: ``--token-file`` wins, else ``ALLSMI_TOKEN``; never a CLI value."""
    if token_file:
        try:
            raw = Path(token_file).read_bytes()[:MAX_TOKEN_BYTES]
        except OSError as err:
            raise UsageError(f"cannot read token file {token_file}: {err.strerror}") from None
        token = raw.decode("utf-8", "replace").strip()
        if not token:
            raise UsageError(f"token file {token_file} is empty")
        return token
    return os.environ.get("ALLSMI_TOKEN", "").strip() or None


def remote_config(
    hosts: tuple[str, ...], include: tuple[str, ...], interval_ms: int, token: str | None
) -> RemoteConfig:
    """Timeouts sized to the interval: a cycle never outlives its slot."""
    interval_s = interval_ms / 1000
    deadline = max(0.5, min(interval_s * 0.9, 10.0))
    return RemoteConfig(
        hosts=hosts,
        include=include,
        request_timeout_s=min(5.0, deadline),
        cycle_deadline_s=deadline,
        max_in_flight=min(128, max(1, len(hosts))),
        token=token,
    )


def build_remote_source(config: RemoteConfig) -> RemoteSource:
    # One TLS context for every host: building one costs ~25 ms of CPU and ~0.7 MB, and a
    # hundred of them inside the first cycle stalled it for seconds.
    tls = (
        ssl.create_default_context()
        if any(h.startswith("https://") for h in config.hosts)
        else None
    )

    def origin(base: str, headers: dict[str, str], max_body_bytes: int) -> HttpOrigin:
        return HttpOrigin(base, headers, max_body_bytes, tls)

    return RemoteSource(config, origin)
