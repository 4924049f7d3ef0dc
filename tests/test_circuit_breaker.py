"""The circuit breaker's state machine, driven by a fake clock."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.circuit_breaker import CircuitBreaker


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make(clock: FakeClock, k: int = 3, cooldown: float = 10.0) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=k, cooldown_s=cooldown, clock=clock)


def test_starts_closed_and_allows(clock: FakeClock) -> None:
    cb = make(clock)
    assert cb.state == "closed"
    assert cb.allow()
    assert cb.allow()
    assert cb.consecutive_failures == 0


def test_opens_after_exactly_k_consecutive_failures(clock: FakeClock) -> None:
    cb = make(clock, k=3)
    cb.record_failure()
    cb.record_failure()
    assert cb.state == "closed"
    assert cb.allow()
    cb.record_failure()
    assert cb.state == "open"
    assert cb.consecutive_failures == 3
    assert not cb.allow()


def test_success_resets_the_consecutive_count(clock: FakeClock) -> None:
    cb = make(clock, k=3)
    cb.record_failure()
    cb.record_failure()
    cb.record_success()
    cb.record_failure()
    cb.record_failure()
    assert cb.state == "closed"
    assert cb.consecutive_failures == 2


def test_half_open_exactly_at_cooldown_not_before(clock: FakeClock) -> None:
    cb = make(clock, k=1, cooldown=10.0)
    cb.record_failure()
    clock.advance(9.999)
    assert cb.state == "open"
    assert not cb.allow()
    assert cb.snapshot().seconds_until_half_open == pytest.approx(0.001)
    clock.advance(0.001)
    assert cb.state == "half_open"
    assert cb.snapshot().seconds_until_half_open == 0.0


def test_half_open_allows_a_single_trial(clock: FakeClock) -> None:
    cb = make(clock, k=1, cooldown=5.0)
    cb.record_failure()
    clock.advance(5.0)
    assert cb.allow()
    assert not cb.allow()  # second caller waits for the trial's outcome
    assert cb.state == "half_open"


def test_trial_success_closes(clock: FakeClock) -> None:
    cb = make(clock, k=2, cooldown=5.0)
    cb.record_failure()
    cb.record_failure()
    clock.advance(6.0)
    assert cb.allow()
    cb.record_success()
    assert cb.state == "closed"
    assert cb.consecutive_failures == 0
    assert cb.allow()
    assert cb.allow()


def test_trial_failure_reopens_for_a_full_cooldown(clock: FakeClock) -> None:
    cb = make(clock, k=2, cooldown=5.0)
    cb.record_failure()
    cb.record_failure()
    clock.advance(7.0)
    assert cb.allow()
    cb.record_failure()
    assert cb.state == "open"
    assert cb.consecutive_failures == 3
    clock.advance(4.9)
    assert not cb.allow()
    clock.advance(0.1)
    assert cb.allow()


def test_cancel_trial_allows_another_trial(clock: FakeClock) -> None:
    cb = make(clock, k=1, cooldown=1.0)
    cb.record_failure()
    clock.advance(1.0)
    assert cb.allow()
    cb.cancel_trial()
    assert cb.state == "half_open"
    assert cb.allow()


def test_failures_while_open_do_not_extend_the_cooldown(clock: FakeClock) -> None:
    cb = make(clock, k=1, cooldown=10.0)
    cb.record_failure()
    clock.advance(5.0)
    cb.record_failure()  # e.g. a late report from a call started before the breaker opened
    clock.advance(5.0)
    assert cb.state == "half_open"


def test_reset_closes(clock: FakeClock) -> None:
    cb = make(clock, k=1)
    cb.record_failure()
    cb.reset()
    assert cb.state == "closed"
    assert cb.allow()


def test_snapshot_reports_counters(clock: FakeClock) -> None:
    cb = make(clock, k=2, cooldown=30.0)
    cb.record_failure()
    cb.record_failure()
    clock.advance(12.0)
    snap = cb.snapshot()
    assert snap.state == "open"
    assert snap.consecutive_failures == 2
    assert snap.failure_threshold == 2
    assert snap.cooldown_s == 30.0
    assert snap.seconds_until_half_open == pytest.approx(18.0)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3", None])
def test_failure_threshold_validated(bad: object) -> None:
    with pytest.raises(
        ValueError, match=r"'failure_threshold' parameter of CircuitBreaker must be an int >= 1"
    ):
        CircuitBreaker(failure_threshold=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, -2.0, float("nan"), float("inf"), "1", True])
def test_cooldown_validated(bad: object) -> None:
    with pytest.raises(
        ValueError, match=r"'cooldown_s' parameter of CircuitBreaker must be a finite number > 0"
    ):
        CircuitBreaker(cooldown_s=bad)  # type: ignore[arg-type]


# A reference model of the same machine, written independently as a transition table.
def _model_run(ops: list[tuple[str, float]], k: int, cooldown: float) -> list[tuple[str, bool | None]]:
    t = 0.0
    mode, fails, opened_at, trial = "closed", 0, 0.0, False
    out: list[tuple[str, bool | None]] = []
    for op, dt in ops:
        t += dt
        if mode == "open" and t - opened_at >= cooldown:
            mode = "half_open"
        allowed: bool | None = None
        if op == "allow":
            if mode == "closed":
                allowed = True
            elif mode == "half_open" and not trial:
                trial, allowed = True, True
            else:
                allowed = False
        elif op == "ok":
            mode, fails, trial = "closed", 0, False
        else:  # fail
            fails += 1
            if (mode == "closed" and fails >= k) or mode == "half_open":
                mode, opened_at = "open", t
            trial = False
        out.append((mode, allowed))
    return out


@settings(max_examples=200, deadline=None)
@given(
    ops=st.lists(
        st.tuples(st.sampled_from(["allow", "ok", "fail"]), st.sampled_from([0.0, 0.5, 1.0, 3.0, 10.0])),
        max_size=60,
    ),
    k=st.integers(1, 4),
    cooldown=st.sampled_from([1.0, 2.5, 5.0]),
)
def test_matches_reference_model(ops: list[tuple[str, float]], k: int, cooldown: float) -> None:
    clock = FakeClock()
    clock.t = 0.0
    cb = CircuitBreaker(failure_threshold=k, cooldown_s=cooldown, clock=clock)
    expected = _model_run(ops, k, cooldown)
    for (op, dt), (mode, allowed) in zip(ops, expected):
        clock.advance(dt)
        if op == "allow":
            assert cb.allow() == allowed
        elif op == "ok":
            cb.record_success()
        else:
            cb.record_failure()
        assert cb.state == mode
