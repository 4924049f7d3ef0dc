"""Event bus: topic names, the event envelope, and the in-process backend.

Every event is a JSON object with ``event_id`` (unique), ``ts`` (ISO 8601 UTC) and ``schema``
(the topic name it was built for) plus its payload fields. Everything downstream keys trades by
``order_id``. ``connect_bus(url)`` picks the backend from ``EVENTBUS_URL``.

Examples
--------
>>> import datetime as dt
>>> bus = MemoryBus()
>>> ev = new_event("rl.feedback", {"order_id": "o-1"}, ts=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
>>> _ = bus.publish("rl.feedback", ev)
>>> [e["order_id"] for e in bus.events("rl.feedback")]
['o-1']
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections import defaultdict
from collections.abc import Mapping
from typing import Any, Protocol

TOPIC_SIGNAL = "trade.signal.v5"
TOPIC_EXECUTION = "trade.execution.res"
TOPIC_POSITION = "trade.position.update"
TOPIC_FEEDBACK = "rl.feedback"
TOPIC_RETRAIN = "model.retrain.trigger"
TOPICS = (TOPIC_SIGNAL, TOPIC_EXECUTION, TOPIC_POSITION, TOPIC_FEEDBACK, TOPIC_RETRAIN)


def new_event(
    schema: str, payload: Mapping[str, Any], *, ts: dt.datetime, event_id: str | None = None
) -> dict[str, Any]:
    """Wrap ``payload`` in the event envelope (``event_id``, ``ts``, ``schema``).

    ``ts`` is the event time (timezone-aware); it is data, never read from the wall clock here.
    """
    if ts.tzinfo is None:
        raise ValueError(f"The 'ts' of a {schema} event must be timezone-aware UTC. Got {ts!r} instead.")
    reserved = {"event_id", "ts", "schema"} & set(payload)
    if reserved:
        raise ValueError(f"payload of a {schema} event must not set {sorted(reserved)}")
    return {
        "event_id": event_id or uuid.uuid4().hex,
        "ts": ts.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "schema": schema,
        **payload,
    }


class EventPublisher(Protocol):
    """The minimal bus interface a producer needs."""

    def publish(self, topic: str, event: Mapping[str, Any]) -> str: ...


class MemoryBus:
    """In-process bus (``EVENTBUS_URL=memory://``): one ordered list per topic."""

    def __init__(self) -> None:
        self._topics: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._lock = threading.Lock()

    def publish(self, topic: str, event: Mapping[str, Any]) -> str:
        with self._lock:
            stream = self._topics[topic]
            stream.append(dict(event))
            return f"{len(stream)}-0"

    def events(self, topic: str) -> list[dict[str, Any]]:
        """All events published to ``topic`` so far, oldest first (a copy)."""
        with self._lock:
            return list(self._topics.get(topic, []))
