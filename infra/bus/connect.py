"""Open the bus a URL names: ``memory://`` (in-process) or Redis Streams."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from infra.bus.base import Bus
from infra.bus.memory import MemoryBus


def connect_bus(url: str | None = None, *, environ: Mapping[str, str] | None = None, **options: Any) -> Bus:
    """Open the bus named by ``url`` (default: ``EVENTBUS_URL``, else ``memory://``).

    ``memory://`` returns a new :class:`~infra.bus.memory.MemoryBus`; ``redis://``, ``rediss://``
    and ``unix://`` return a :class:`~infra.bus.redis_streams.RedisBus` configured from the
    ``EVENTBUS_*`` variables of ``environ`` (see ``docs/eventbus.md``); keyword ``options``
    override them.

    Raises
    ------
    ValueError
        When the URL has another scheme.
    """
    env = os.environ if environ is None else environ
    target = (url or env.get("EVENTBUS_URL") or "memory://").strip()
    if target == "memory://":
        return MemoryBus(**options)
    if target.startswith(("redis://", "rediss://", "unix://")):
        from infra.bus.redis_streams import RedisBus

        return RedisBus.from_env(target, environ=env, **options)
    raise ValueError(
        "The 'url' argument of connect_bus must be 'memory://' or a Redis URL such as "
        f"'redis://127.0.0.1:6379/0'. Got {target!r} instead."
    )
