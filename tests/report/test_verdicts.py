"""The verdict rules of resnetlib.report.verdicts: the only place a verdict is decided."""

import typing

import pytest

from resnetlib.report.verdicts import (
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
        (7.0, REPRODUCED),  # better than the paper
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
    "ours, expected",
    [(76.4, REPRODUCED), (80.0, REPRODUCED), (76.0, REPRODUCED), (75.0, NOT_REPRODUCED)],
)
def test_higher_is_better_metric(ours, expected):
    """mAP: higher is better, so a higher number than the paper's is reproduced, lower beyond tol. is not."""
    verdict, _ = compare_number(ours, 76.4, at_paper_scale=True, tolerance=1.0, lower_is_better=False)
    assert verdict == expected


# ------------------------------------------------------------------------------------ the seeds' spread
def test_spread_of_several_seeds_widens_the_tolerance():
    """Tolerance 0.5, seeds' sd 0.4: the tolerance becomes 2 * 0.4 = 0.8, so 1.5 points worse still fails
    and 0.7 points worse passes."""
    assert compare_number(9.45, 8.75, at_paper_scale=True, tolerance=0.5, spread=0.4)[0] == REPRODUCED
    assert compare_number(9.45, 8.75, at_paper_scale=True, tolerance=0.5)[0] == NOT_REPRODUCED
    assert compare_number(10.25, 8.75, at_paper_scale=True, tolerance=0.5, spread=0.4)[0] == NOT_REPRODUCED


def test_a_small_spread_does_not_narrow_the_tolerance():
    assert compare_number(9.2, 8.75, at_paper_scale=True, tolerance=0.5, spread=0.01)[0] == REPRODUCED


def test_verdict_names_are_the_documented_ones():
    assert set(STATEMENT_VERDICTS) == {"reproduced", "contradicted", "inconclusive", "not measurable at this scale"}
    assert set(NUMBER_VERDICTS) == {"reproduced", "not reproduced", "not measurable at this scale"}
    assert set(typing.get_args(Verdict)) == set(STATEMENT_VERDICTS) | set(NUMBER_VERDICTS)
