"""Open the bus a URL names: ``memory://`` (in-process) or Redis Streams."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infra.bus.base import Bus
from infra.bus.memory import MemoryBus
from infra.settings import Settings, load_settings


def connect_bus(
    url: str | None = None,
    *,
    settings: Settings | None = None,
    environ: Mapping[str, str] | None = None,
    **options: Any,
) -> Bus:
    """Open the bus named by ``url`` (default: ``settings.eventbus_url``, i.e. ``EVENTBUS_URL``).

    ``memory://`` returns a new :class:`~infra.bus.memory.MemoryBus`; ``redis://``, ``rediss://``
    and ``unix://`` return a :class:`~infra.bus.redis_streams.RedisBus` configured from the
    ``eventbus_*`` fields of ``settings`` (the ``EVENTBUS_*`` variables, see ``docs/eventbus.md``);
    keyword ``options`` override them. Without ``settings`` they are loaded from ``environ``
    (default: this process's environment).

    Raises
    ------
    ValueError
        When the URL has another scheme.
    """
    s = load_settings(environ) if settings is None else settings
    target = (url or s.eventbus_url).strip()
    if target == "memory://":
        return MemoryBus(**options)
    if target.startswith(("redis://", "rediss://", "unix://")):
        from infra.bus.redis_streams import RedisBus

        return RedisBus.from_settings(target, s, **options)
    raise ValueError(
        "The 'url' argument of connect_bus must be 'memory://' or a Redis URL such as "
        f"'redis://127.0.0.1:6379/0'. Got {target!r} instead."
    )
