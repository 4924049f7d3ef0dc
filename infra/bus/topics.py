"""Topic names of the event bus and the name of each topic's dead-letter stream."""

from __future__ import annotations

TOPIC_SIGNAL = "trade.signal.v5"
TOPIC_EXECUTION = "trade.execution.res"
TOPIC_POSITION = "trade.position.update"
TOPIC_FEEDBACK = "rl.feedback"
TOPIC_RETRAIN = "model.retrain.trigger"
TOPICS = (TOPIC_SIGNAL, TOPIC_EXECUTION, TOPIC_POSITION, TOPIC_FEEDBACK, TOPIC_RETRAIN)

DEAD_LETTER_SUFFIX = ".dlq"
DEFAULT_MAXLEN = 100_000
"""Default bound of every stream (entries)."""


def dead_letter_topic(topic: str) -> str:
    """Name (and Redis key) of the dead-letter stream of ``topic``: ``<topic>.dlq``.

    >>> dead_letter_topic("rl.feedback")
    'rl.feedback.dlq'
    """
    return topic + DEAD_LETTER_SUFFIX
