"""Statements judged from per-seed effects: intervals, the seed minimum and the training gates."""

import math

import pytest

from resnetlib.report import verdicts as v


def judge(effects, margin=1.0, **kw):
    return v.judge_effects(effects, statement="deeper is better", margin=margin, **kw)


@pytest.mark.parametrize(
    "effects, expected",
    [
        ((5, 6, 7), v.REPRODUCED),
        ((-0.5, 0.4, 0.1), v.INCONCLUSIVE),
        ((-5, -6, -7), v.CONTRADICTED),
        ((0.3, 0.5, 0.4), v.INCONCLUSIVE),  # real, but below the practical margin
        ((2.0, 3.0), v.INCONCLUSIVE),  # fewer than 3 seeds
    ],
)
def test_known_answers(effects, expected):
    assert judge(effects).verdict == expected


def test_student_t_interval_over_three_seeds():
    ci = v.effect_interval((5, 6, 7))
    # mean 6, sd 1, t(0.975, 2) = 4.303: half-width 4.303 / sqrt(3) = 2.484
    assert ci.mean == pytest.approx(6.0)
    assert ci.high - ci.mean == pytest.approx(4.3027 / math.sqrt(3), rel=1e-3)
    assert ci.n == 3 and "Student t" in ci.method


@pytest.mark.parametrize("effect", [50.0, -50.0, 0.2])
def test_one_seed_is_at_most_inconclusive(effect):
    j = judge((effect,), sampling_se=0.5)
    assert j.verdict == v.INCONCLUSIVE
    expected = "between zero and the margin" if effect == 0.2 else "1 seed(s) < 3 required"
    assert expected in j.reason


def test_one_seed_without_an_error_estimate_says_so():
    """A single seed with no sampling error (e.g. an mAP) is not 'between zero and the margin' when it is not."""
    j = judge((4.0,))
    assert j.verdict == v.INCONCLUSIVE
    assert "1 seed and no error estimate: at least 3 seeds are needed" in j.reason


def test_one_seed_interval_comes_from_binomial_sampling_error():
    se = v.difference_se((20.0, 2000), (25.0, 2000))
    assert se == pytest.approx(100 * math.hypot(math.sqrt(0.2 * 0.8 / 2000), math.sqrt(0.25 * 0.75 / 2000)))
    ci = v.effect_interval((5.0,), sampling_se=se)
    assert ci.high - ci.mean == pytest.approx(1.95996 * se, rel=1e-4)


def test_a_net_at_88_percent_training_error_is_not_measurable():
    gate = v.trained_gate("plain-34", 88.0, num_classes=10)
    j = judge((5, 6, 7), gates=[gate])
    assert j.verdict == v.NOT_MEASURABLE
    assert "plain-34" in j.reason and "88.0%" in j.reason


def test_training_gate_threshold_is_half_of_chance():
    assert v.trained_gate("n", 45.0, 10).ok
    assert not v.trained_gate("n", 45.1, 10).ok
    assert not v.trained_gate("n", 10.0, 10, diverged=True).ok
    assert not v.trained_gate("n", float("nan"), 10).ok


def test_flattened_gate_looks_at_the_second_half_of_the_last_phase():
    its = [10, 20, 30, 40, 50, 60, 70, 80]
    flat = [50, 40, 30, 20, 15, 14.5, 14.2, 14.0]
    still_falling = [50, 40, 30, 20, 15, 12, 9, 6]
    assert v.flattened_gate("r", its, flat, last_milestone=60).ok
    moving = v.flattened_gate("r", its, still_falling, last_milestone=60)
    assert not moving.ok and "still learning" in moving.reason


def test_flattened_gate_allows_the_sampling_noise_of_small_evaluations():
    """Two evaluations of 3,328 images at ~30% error: one's se is 0.79 points, so a 1.5-point wobble is noise
    (allowed 2 * sqrt(2) * 0.79 = 2.2 points) while a 4-point fall is learning."""
    its = [260, 286, 312]
    assert not v.flattened_gate("r", its, [31, 31.5, 30], last_milestone=234).ok  # 1.5 > 1 point
    assert v.flattened_gate("r", its, [31, 31.5, 30], last_milestone=234, images_per_evaluation=3328).ok
    falling = v.flattened_gate("r", its, [34, 34, 30], last_milestone=234, images_per_evaluation=3328)
    assert not falling.ok and "flat means <= 2.3" in falling.reason  # mean 32.7%: se 0.81


def test_inconclusive_reason_says_how_many_seeds_would_resolve_it():
    j = judge((2.0, 6.0, -1.0))
    assert j.verdict == v.INCONCLUSIVE
    assert "seeds would resolve" in j.reason
    assert "[" in j.reason  # the interval is stated
