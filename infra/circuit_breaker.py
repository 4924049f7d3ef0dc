"""A circuit breaker: a small state machine that stops calling a remote service that keeps failing.

States and transitions (Nygard, *Release It!*, 2nd ed., ch. 5 "Circuit Breaker"):

- ``closed``: calls go through. Each failure increments a counter of *consecutive* failures; a
  success resets it. When the counter reaches ``failure_threshold`` the breaker opens.
- ``open``: calls are refused (:meth:`CircuitBreaker.allow` returns ``False``) until
  ``cooldown_s`` seconds have passed since it opened; then it is ``half_open``.
- ``half_open``: exactly one trial call is allowed. Its success closes the breaker; its failure
  opens it again for another full cooldown.

The breaker does no I/O and never reads the wall clock: time comes from the injected ``clock``
(default :func:`time.monotonic`), so tests drive it with a fake clock. It is not thread-safe on
its own; the caller serialises access (the Firestore mirror holds a lock around it).

Examples
--------
>>> now = [0.0]
>>> cb = CircuitBreaker(failure_threshold=2, cooldown_s=10.0, clock=lambda: now[0])
>>> cb.record_failure(); cb.record_failure(); cb.state
'open'
>>> cb.allow()
False
>>> now[0] = 10.0
>>> cb.state, cb.allow(), cb.allow()
('half_open', True, False)
>>> cb.record_success(); cb.state
'closed'
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]


@dataclass(frozen=True)
class BreakerSnapshot:
    """A read-only view of a breaker at one instant (for status files and logs)."""

    state: BreakerState
    consecutive_failures: int
    failure_threshold: int
    cooldown_s: float
    seconds_until_half_open: float
    """0.0 unless the breaker is ``open``."""


class CircuitBreaker:
    """Closed / open / half-open circuit breaker with an injectable clock.

    Parameters
    ----------
    failure_threshold
        Consecutive failures that open a closed breaker (int >= 1).
    cooldown_s
        Seconds an open breaker waits before allowing one trial call (finite, > 0).
    clock
        Monotonic seconds; default :func:`time.monotonic`.
    """

    def __init__(
        self,
        *,
        failure_threshold: int = 3,
        cooldown_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if (
            isinstance(failure_threshold, bool)
            or not isinstance(failure_threshold, int)
            or failure_threshold < 1
        ):
            raise ValueError(
                "The 'failure_threshold' parameter of CircuitBreaker must be an int >= 1. "
                f"Got {failure_threshold!r} instead."
            )
        if (
            isinstance(cooldown_s, bool)
            or not isinstance(cooldown_s, (int, float))
            or not math.isfinite(cooldown_s)
            or cooldown_s <= 0
        ):
            raise ValueError(
                "The 'cooldown_s' parameter of CircuitBreaker must be a finite number > 0. "
                f"Got {cooldown_s!r} instead."
            )
        self.failure_threshold = failure_threshold
        self.cooldown_s = float(cooldown_s)
        self.clock = clock
        self._open = False
        self._opened_at = 0.0
        self._failures = 0
        self._trial_in_flight = False

    # ------------------------------------------------------------------ queries
    @property
    def state(self) -> BreakerState:
        """``closed``, ``open`` or ``half_open`` (an open breaker whose cooldown has passed)."""
        if not self._open:
            return "closed"
        if self.clock() - self._opened_at >= self.cooldown_s:
            return "half_open"
        return "open"

    @property
    def consecutive_failures(self) -> int:
        """Failures since the last success."""
        return self._failures

    def snapshot(self) -> BreakerSnapshot:
        """The current state with its counters."""
        state = self.state
        remaining = 0.0
        if state == "open":
            remaining = max(0.0, self.cooldown_s - (self.clock() - self._opened_at))
        return BreakerSnapshot(
            state=state,
            consecutive_failures=self._failures,
            failure_threshold=self.failure_threshold,
            cooldown_s=self.cooldown_s,
            seconds_until_half_open=remaining,
        )

    # ------------------------------------------------------------------ transitions
    def allow(self) -> bool:
        """May a call be made now?

        ``closed``: always. ``open``: never. ``half_open``: once; further calls are refused until
        the trial's outcome is recorded with :meth:`record_success` or :meth:`record_failure`.
        """
        state = self.state
        if state == "closed":
            return True
        if state == "open" or self._trial_in_flight:
            return False
        self._trial_in_flight = True
        return True

    def record_success(self) -> None:
        """A call succeeded: reset the failure count and close the breaker."""
        self._failures = 0
        self._open = False
        self._trial_in_flight = False

    def record_failure(self) -> None:
        """A call failed: count it; open (or re-open, restarting the cooldown) when due."""
        self._failures += 1
        was_trial = self._open and self._trial_in_flight
        self._trial_in_flight = False
        if was_trial or (not self._open and self._failures >= self.failure_threshold):
            self._open = True
            self._opened_at = self.clock()
        elif self._open and self.clock() - self._opened_at >= self.cooldown_s:
            # a failure reported while half-open without a granted trial still restarts the cooldown
            self._opened_at = self.clock()

    def cancel_trial(self) -> None:
        """The call granted by :meth:`allow` in ``half_open`` was not made after all; allow another."""
        self._trial_in_flight = False

    def reset(self) -> None:
        """Force the breaker closed with no recorded failures."""
        self.record_success()
