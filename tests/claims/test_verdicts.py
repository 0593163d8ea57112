"""The verdict rules of resnetlib.claims.verdicts: the only place a verdict is decided."""

import typing

import pytest

from resnetlib.claims.verdicts import (
    NOT_MEASURABLE,
    NOT_REPRODUCED,
    NUMBER_VERDICTS,
    REPRODUCED,
    STATEMENT_VERDICTS,
    Verdict,
    compare_number,
)


# ------------------------------------------------------------------------------------ compare_number
@pytest.mark.parametrize("ours", [0.0, 8.75, 50.0, 99.0])
def test_reduced_scale_is_not_measurable_whatever_the_number(ours):
    verdict, reason = compare_number(ours, 8.75, at_paper_scale=False, tolerance=0.5)
    assert verdict == NOT_MEASURABLE
    assert "reduced scale" in reason and "8.75" in reason


def test_no_measurement_is_not_measurable():
    assert compare_number(None, 8.75, at_paper_scale=True, tolerance=0.5)[0] == NOT_MEASURABLE
    assert compare_number(None, 8.75, at_paper_scale=False, tolerance=0.5)[0] == NOT_MEASURABLE


@pytest.mark.parametrize(
    "ours, expected",
    [
        (8.75, REPRODUCED),  # equal
        (9.0, REPRODUCED),  # worse, within tolerance
        (9.25, REPRODUCED),  # worse by exactly the tolerance
        (8.25, REPRODUCED),  # better, within tolerance
        (7.0, NOT_REPRODUCED),  # much better than the paper: two-sided, a bug that lowers the error fails too
        (9.3, NOT_REPRODUCED),  # worse beyond tolerance
        (20.0, NOT_REPRODUCED),
    ],
)
def test_paper_scale_error_rate(ours, expected):
    verdict, reason = compare_number(ours, 8.75, at_paper_scale=True, tolerance=0.5)
    assert verdict == expected
    assert "8.75" in reason


def test_worse_beyond_tolerance_reports_the_gap():
    verdict, reason = compare_number(10.0, 8.75, at_paper_scale=True, tolerance=0.5)
    assert verdict == NOT_REPRODUCED
    assert "worse by 1.25" in reason


@pytest.mark.parametrize(
    "ours, expected",
    [(1.8e9, REPRODUCED), (1.85e9, REPRODUCED), (1.75e9, REPRODUCED), (2.0e9, NOT_REPRODUCED),
     (1.5e9, NOT_REPRODUCED)],
)
def test_two_sided_count(ours, expected):
    """lower_is_better=None (FLOP or parameter counts): off by more than tolerance either way fails."""
    verdict, _ = compare_number(ours, 1.8e9, at_paper_scale=True, tolerance=0.1e9, lower_is_better=None)
    assert verdict == expected


@pytest.mark.parametrize(
    "ours, expected, word",
    [(76.4, REPRODUCED, ""), (77.0, REPRODUCED, ""), (80.0, NOT_REPRODUCED, "better by 3.6"),
     (75.0, NOT_REPRODUCED, "worse by 1.4")],
)
def test_higher_is_better_metric_is_judged_two_sided(ours, expected, word):
    """mAP: higher is better, but 3.6 points above the paper's is no reproduction of it either."""
    verdict, reason = compare_number(ours, 76.4, at_paper_scale=True, tolerance=1.0, lower_is_better=False)
    assert verdict == expected and word in reason


# ------------------------------------------------------------------------------------ the seeds' spread
def test_the_standard_error_of_the_mean_widens_the_tolerance():
    """Tolerance 0.5, 4 seeds of sd 0.4: the mean is uncertain by sd / sqrt(4) = 0.2, so the tolerance is 0.7
    (not 2 x sd = 0.8): 0.65 points worse passes, 0.75 fails."""
    assert compare_number(9.40, 8.75, at_paper_scale=True, tolerance=0.5, sem=0.2)[0] == REPRODUCED
    assert compare_number(9.40, 8.75, at_paper_scale=True, tolerance=0.5)[0] == NOT_REPRODUCED
    verdict, reason = compare_number(9.50, 8.75, at_paper_scale=True, tolerance=0.5, sem=0.2)
    assert verdict == NOT_REPRODUCED and "tolerance 0.7" in reason


def test_a_number_claim_takes_the_standard_error_from_the_seeds_spread():
    from resnetlib.claims import number_claim

    # paper 6.43 (ResNet-110, Table 6); 4 seeds of sd 0.4: tolerance 0.5 + 0.2
    assert number_claim("table6.error.resnet110", 7.10, at_paper_scale=True, tolerance=0.5, spread=0.4,
                        n_seeds=4).verdict == REPRODUCED
    assert number_claim("table6.error.resnet110", 7.20, at_paper_scale=True, tolerance=0.5, spread=0.4,
                        n_seeds=4).verdict == NOT_REPRODUCED


def test_verdict_names_are_the_documented_ones():
    assert set(STATEMENT_VERDICTS) == {"reproduced", "contradicted", "inconclusive", "not measurable at this scale"}
    assert set(NUMBER_VERDICTS) == {"reproduced", "not reproduced", "not measurable at this scale"}
    assert set(typing.get_args(Verdict)) == set(STATEMENT_VERDICTS) | set(NUMBER_VERDICTS)
