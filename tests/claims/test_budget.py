"""The ends-better rule: a claim about which net ends better is contradicted below the paper's scale only
where a budget >= 3x larger replicates the contradiction without moving toward the paper's direction."""

import pandas as pd
import pytest

from resnetlib.claims import Budget, statement_claim
from resnetlib.claims.budget import Point, contradiction_stands, with_replication_rule

#: Fig. 6 middle in the committed budget study (16 px, batch 128): -14.0 (300 it, no interval: under one
#: epoch), -6.5 [-8.4, -4.6] (1000 it), -3.0 [-3.4, -2.7] (3000 it).
STUDY = pd.DataFrame([
    {"id": "fig6", "iterations": 300, "batch_size": 128, "image_size": 16, "effect": -14.0, "ci_low": None,
     "ci_high": None, "margin": 1.0},
    {"id": "fig6", "iterations": 1000, "batch_size": 128, "image_size": 16, "effect": -6.5, "ci_low": -8.4,
     "ci_high": -4.6, "margin": 1.0},
    {"id": "fig6", "iterations": 3000, "batch_size": 128, "image_size": 16, "effect": -3.0, "ci_low": -3.4,
     "ci_high": -2.7, "margin": 1.0},
])


def _claim(effects, iterations=1000, image_size=16, dataset="fashion_mnist", ends_better=True, **kw):
    return statement_claim("fig6", "Fig. 6 middle", "ResNet-56 ends lower", effects, margin=1.0,
                           ends_better=ends_better, budget=Budget(dataset=dataset, iterations=iterations,
                                                                  batch_size=128, image_size=image_size), **kw)


def _judge(claim, table=STUDY):
    return with_replication_rule([claim], table, study_dataset="fashion_mnist", native_size=28)[0]


def test_an_effect_still_moving_toward_the_paper_is_not_measurable_still_converging():
    """-6.5 [-8.4, -4.6] at 1000 iterations; at 3000 the effect is -3.0: it moved +3.5 > the half-width 2.0."""
    raw = _claim([-7.3, -6.5, -5.7])  # half-width t(2) 4.303 x 0.8 / sqrt(3) = 1.99
    assert raw.verdict == "contradicted"
    judged = _judge(raw)
    assert judged.verdict == "not measurable at this scale"
    assert judged.reason.startswith("not measurable at this budget: still converging: effect -14.0 -> -6.5 -> -3.0 "
                                    "over 300 -> 3000 iterations")


def test_a_contradiction_replicated_at_3x_the_budget_stands():
    table = STUDY.assign(effect=[-14.0, -6.5, -6.0], ci_low=[None, -8.4, -7.0], ci_high=[None, -4.6, -5.0])
    judged = _judge(_claim([-8.0, -6.5, -5.0]), table)
    assert judged.verdict == "contradicted" and "replicated at a budget >= 3x larger" in judged.reason


def test_no_larger_budget_no_contradiction():
    judged = _judge(_claim([-4.0, -3.0, -2.0], iterations=3000))
    assert judged.verdict == "not measurable at this scale" and "no budget >= 3x" in judged.reason
    other_side = _judge(_claim([-8.0, -6.5, -5.0], image_size=None))  # 28 px: the study has no 28 px rows here
    assert other_side.verdict == "not measurable at this scale"
    other_data = _judge(_claim([-8.0, -6.5, -5.0], dataset="imagefolder"))
    assert other_data.verdict == "not measurable at this scale"


def test_only_contradicted_ends_better_claims_below_the_paper_scale_are_touched():
    assert _judge(_claim([5.0, 6.0, 7.0])).verdict == "reproduced"
    assert _judge(_claim([-8.0, -6.5, -5.0], ends_better=False)).verdict == "contradicted"
    assert _judge(_claim([-8.0, -6.5, -5.0], at_paper_scale=True)).verdict == "contradicted"


@pytest.mark.parametrize(("larger", "stands"), [
    (Point(3000, 3000, -6.0, -7.0, -5.0, 1.0), True),
    (Point(3000, 3000, -3.0, -3.4, -2.7, 1.0), False),   # moved 3.0 > half-width 2.0
    (Point(3000, 3000, -6.0, -9.0, 1.0, 1.0), False),    # not replicated: its interval crosses zero
    (Point(2999, 2999, -3.0, -3.4, -2.7, 1.0), False),   # under 3x: no evidence at all
])
def test_contradiction_stands_known_answers(larger, stands):
    here = Point(1000, 1000, -6.0, -8.0, -4.0, 1.0)
    assert contradiction_stands(here, [larger])[0] is stands


def test_the_study_s_own_contradictions_are_rejudged_by_the_same_rule():
    """Fig. 6 middle in the committed study: contradicted at 1000 and 3000 iterations (16 px); by the rule,
    1000 is still converging and 3000 has no larger budget: the note cannot say it is decided there."""
    from resnetlib.claims.budget import rejudge_study

    table = STUDY.assign(verdict=["not measurable at this scale", "contradicted", "contradicted"], reason="")
    rejudged = rejudge_study(table, ["fig6"], native_size=28)
    assert list(rejudged.verdict) == ["not measurable at this scale"] * 3
    assert "still converging" in rejudged.reason.iloc[1] and "no budget >= 3x" in rejudged.reason.iloc[2]
    assert list(rejudge_study(table, [], native_size=28).verdict) == list(table.verdict)  # other claims kept
