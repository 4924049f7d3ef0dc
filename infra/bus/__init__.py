"""The event bus: topics, messages, the ``Bus`` interface, its two backends and the consumer loop.

=========================  =====================================================================
``infra.bus.topics``       topic names, ``dead_letter_topic``
``infra.bus.message``      ``Message``, ``OncePublish``, ``DeadLetter``, ``GroupInfo``,
                           ``new_event``, errors
``infra.bus.base``         the ``Bus`` interface and ``Commit``
``infra.bus.memory``       ``MemoryBus`` (``memory://``)
``infra.bus.redis_streams`` ``RedisBus`` (``redis://``), imported on first use
``infra.bus.consumer``     the one consumer loop (``Consumer``, ``each_message``)
``infra.bus.connect``      ``connect_bus(url)``
=========================  =====================================================================

The event types themselves live in :mod:`infra.contracts.events`. See ``docs/eventbus.md``.
"""

from __future__ import annotations

from infra.bus.base import Bus, Commit
from infra.bus.connect import connect_bus
from infra.bus.consumer import Consumer, ConsumeStats, each_message, stop_on_signals
from infra.bus.memory import MemoryBus
from infra.bus.message import (
    BusError,
    BusUnavailableError,
    DeadLetter,
    EventPublisher,
    GroupInfo,
    Message,
    OncePublish,
    new_event,
    utc_iso,
)
from infra.bus.topics import (
    DEFAULT_MAXLEN,
    TOPIC_EXECUTION,
    TOPIC_FEEDBACK,
    TOPIC_POSITION,
    TOPIC_RETRAIN,
    TOPIC_SIGNAL,
    TOPICS,
    dead_letter_topic,
)

__all__ = [
    "DEFAULT_MAXLEN",
    "TOPICS",
    "TOPIC_EXECUTION",
    "TOPIC_FEEDBACK",
    "TOPIC_POSITION",
    "TOPIC_RETRAIN",
    "TOPIC_SIGNAL",
    "Bus",
    "BusError",
    "BusUnavailableError",
    "Commit",
    "ConsumeStats",
    "Consumer",
    "DeadLetter",
    "EventPublisher",
    "GroupInfo",
    "MemoryBus",
    "Message",
    "OncePublish",
    "connect_bus",
    "dead_letter_topic",
    "each_message",
    "new_event",
    "stop_on_signals",
    "utc_iso",
]
