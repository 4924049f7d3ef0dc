"""The stress run's verdict on one step, from hand-made samples (no services)."""

from __future__ import annotations

from bench.soak import STRESS_MAX_LAG, Sample, step_verdict

T = "rl.feedback/ppo-trainer"
B = "trade.position.update/feedback-bridge"


def test_a_group_whose_lag_grows_through_the_second_half_is_behind() -> None:
    samples = [
        Sample(t=float(t), lag={T: lag, B: 5})
        for t, lag in zip(range(2, 22, 2), [10, 40, 80, 150, 200, 260, 330, 400, 480, 560], strict=True)
    ]
    v = step_verdict(samples, step_s=20.0)
    # middle sample (index 5 of 10, t = 12): 260; last in the step (t = 20): 560 > max(100, 390)
    assert v["growing"] == {T: True, B: False} and v["behind"] == [T]
    assert v["peak_lag"] == {B: 5, T: 560} and v["samples_in_step"] == 10


def test_steady_lag_under_the_bound_is_sustainable_and_a_drained_peak_after_the_step_is_ignored() -> None:
    samples = [Sample(t=float(t), lag={T: 300, B: 20}) for t in range(2, 24, 2)]  # 2 .. 22 s
    samples.append(Sample(t=40.0, lag={T: 50_000, B: 0}))  # the second sample after the step: ignored
    v = step_verdict(samples, step_s=20.0)
    assert v["behind"] == [] and v["peak_lag"] == {B: 20, T: 300}


def test_a_saturated_machine_that_sampled_once_is_still_caught_by_the_bound() -> None:
    # one sample inside the step (no growth can be seen) and one just after it, far over the bound
    samples = [Sample(t=2.0, lag={T: 900, B: 10}), Sample(t=23.0, lag={T: 26_093, B: STRESS_MAX_LAG})]
    v = step_verdict(samples, step_s=20.0)
    assert v["growing"] == {} and v["samples_in_step"] == 1
    assert v["behind"] == [T, B]  # largest peak first; B sits exactly at the bound


def test_a_late_first_sample_after_the_step_still_counts() -> None:
    # the 3,200 trades/s step on 2 cores: the sampler starved from 2 s to 30 s
    samples = [
        Sample(t=2.1, lag={B: 575}),
        Sample(t=29.8, lag={B: 54_955}),
        Sample(t=32.6, lag={B: 12_233}),
    ]
    v = step_verdict(samples, step_s=20.0)
    assert v["behind"] == [B] and v["peak_lag"] == {B: 54_955}
