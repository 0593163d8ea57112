"""Statements judged from per-seed effects: intervals, the seed minimum and the training gates."""

import math

import pytest

from resnetlib.claims import verdicts as v


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
    expected = "within the margin of zero" if effect == 0.2 else "1 seed(s) < 3 required"
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


def test_contradicted_needs_the_margin_as_reproduced_does():
    """An interval below zero with a mean inside the margin is a real effect too small to count either way."""
    j = judge((-0.4, -0.5, -0.6))
    assert j.interval.high < 0 and j.verdict == v.INCONCLUSIVE
    assert "within the practical margin 1" in j.reason
    assert judge((-1.4, -1.5, -1.6)).verdict == v.CONTRADICTED


def test_three_identical_effects_do_not_give_a_zero_width_interval():
    """The spread guard: seeds that agree exactly give no interval (no sampling error known) ..."""
    j = judge((2.0, 2.0, 2.0))
    assert j.verdict == v.INCONCLUSIVE and "agree exactly" in j.reason
    assert j.interval.low == -math.inf
    # ... or, with one seed's sampling error known, the interval that error gives: sd 0.5, t(2) 4.303
    ci = v.effect_interval((2.0, 2.0, 2.0), sampling_se=0.5)
    assert ci.high - ci.mean == pytest.approx(4.3027 * 0.5 / math.sqrt(3), rel=1e-3) and "identical" in ci.method
    assert v.effect_interval((1.9, 2.0, 2.1), sampling_se=0.5).sd == pytest.approx(0.1)  # a spread is kept
    assert judge((1.2, 1.2, 1.2), sampling_se=0.5).verdict == v.INCONCLUSIVE  # low = 1.2 - 1.24 < 0
    assert judge((2.0, 2.0, 2.0), sampling_se=0.5).verdict == v.REPRODUCED  # low = 2.0 - 1.24 > 0


@pytest.mark.parametrize(("mean", "sd", "seeds"), [
    (1.0, 1.0, 7),   # t(5) 2.571 / sqrt(6) = 1.050 >= 1; t(6) 2.447 / sqrt(7) = 0.925 < 1 (z said 5)
    (3.0, 2.0, 5),   # t(3) 3.182 * 2 / 2 = 3.18 >= 3; t(4) 2.776 * 2 / sqrt(5) = 2.48 < 3 (z said 3)
    (10.0, 1.0, 2),  # t(1) 12.71 / sqrt(2) = 8.99 < 10: not floored at 3
])
def test_seeds_to_resolve_searches_n_with_t_of_n_minus_1_df(mean, sd, seeds):
    assert v.seeds_to_resolve(mean, sd, margin=0.5) == seeds


def test_seeds_to_resolve_is_none_within_the_margin_or_without_spread():
    assert v.seeds_to_resolve(0.5, 1.0, margin=1.0) is None
    assert v.seeds_to_resolve(-0.5, 1.0, margin=1.0) is None
    assert v.seeds_to_resolve(3.0, 0.0, margin=1.0) is None


def test_a_three_seed_inconclusive_claim_is_not_told_three_seeds_resolve_it():
    j = judge((2.0, 6.0, -1.0))  # mean 2.33, sd 3.51: t says 12 seeds (z said 10)
    assert "about 12 seeds would resolve it" in j.reason


def test_the_p_value_is_the_two_sided_t_test_of_the_interval():
    ci = v.effect_interval((5, 6, 7))
    from scipy import stats

    assert ci.p_value() == pytest.approx(stats.ttest_1samp([5, 6, 7], 0).pvalue)


def test_detector_gate_needs_map50_and_a_classifier_that_is_not_constant():
    low = v.detector_gate("context", 3.4, 1.0)
    assert not low.ok and "mAP@.5 3.4 < 10" in low.reason
    constant = v.detector_gate("context", 30.0, v.class_fraction({1: 40.0, 2: 0.0, 3: 0.0, 4: float("nan")}))
    assert not constant.ok and "33% of the classes" in constant.reason
    assert v.detector_gate("baseline", 19.5, v.class_fraction({1: 40.0, 2: 10.0, 3: 0.0})).ok


def test_inconclusive_reason_says_how_many_seeds_would_resolve_it():
    j = judge((2.0, 6.0, -1.0))
    assert j.verdict == v.INCONCLUSIVE
    assert "seeds would resolve" in j.reason
    assert "[" in j.reason  # the interval is stated
