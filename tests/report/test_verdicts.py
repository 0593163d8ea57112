"""The verdict rules of resnetlib.report.verdicts: the only place a verdict is decided."""

import pytest

from resnetlib.report.verdicts import (
    NOT_MEASURABLE,
    NOT_REPRODUCED,
    REPRODUCED,
    compare_number,
    judge_statement,
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


# ------------------------------------------------------------------------------------ judge_statement
STATEMENT = "the 56-layer plain net has higher training error than the 20-layer one"


def test_statement_effect_above_margin_is_reproduced():
    verdict, reason = judge_statement(2.5, margin=1.0, measurable=True, statement=STATEMENT)
    assert verdict == REPRODUCED
    assert STATEMENT in reason and "+2.50" in reason


@pytest.mark.parametrize("effect", [1.0, 0.5, 0.0, -3.0])
def test_statement_effect_at_or_below_margin_is_not_reproduced(effect):
    verdict, reason = judge_statement(effect, margin=1.0, measurable=True, statement=STATEMENT)
    assert verdict == NOT_REPRODUCED
    assert "does not exceed" in reason


def test_statement_not_measurable_flag_wins_over_any_effect():
    verdict, reason = judge_statement(50.0, margin=1.0, measurable=False, statement=STATEMENT)
    assert verdict == NOT_MEASURABLE
    assert STATEMENT in reason


def test_statement_not_measurable_uses_the_given_explanation():
    verdict, reason = judge_statement(
        None, margin=1.0, measurable=True, statement=STATEMENT, why_not_measurable="too few iterations"
    )
    assert verdict == NOT_MEASURABLE
    assert reason == "too few iterations"


def test_statement_without_effect_is_not_measurable():
    assert judge_statement(None, margin=0.1, measurable=True, statement=STATEMENT)[0] == NOT_MEASURABLE


def test_verdict_names_are_the_three_documented_ones():
    assert {REPRODUCED, NOT_REPRODUCED, NOT_MEASURABLE} == {
        "reproduced",
        "not reproduced",
        "not measurable at this scale",
    }
