"""The claim builders: numbers from the paper's registry, statements from per-seed effects, readings of one
comparison, architecture facts; each claim with its scope."""

import json

import pytest

from resnetlib import claims
from resnetlib.claims import verdicts


def test_number_claim_takes_ref_value_and_text_from_the_registry():
    c = claims.number_claim("table8.coco_map.resnet101", 3.14159, at_paper_scale=False, tolerance=1.0,
                          lower_is_better=False)
    assert (c.id, c.ref, c.what, c.ours, c.paper) == (
        "table8_coco_map_resnet101", "Table 8", "COCO val mAP@[.5,.95], ResNet-101 (%)", 3.14, 27.2)
    assert c.verdict == "not measurable at this scale"
    c = claims.number_claim("table6.params.resnet20", 272_474 / 1e6, at_paper_scale=True, tolerance=0.005,
                          lower_is_better=None, id="p20", what="ResNet-20 parameters (M)", digits=3, per=1e6)
    assert (c.id, c.ref, c.ours, c.paper, c.verdict) == ("p20", "Table 6", 0.272, 0.27, "reproduced")
    with pytest.raises(KeyError, match="no reported number"):
        claims.number_claim("table9.nothing", 1.0, at_paper_scale=True, tolerance=0.0)


def test_statement_claim_judges_the_per_seed_effects():
    c = claims.statement_claim("s", "Fig. 1", "plain-56 trains worse", [5.0, 6.0, 7.0], margin=1.0)
    assert (c.what, c.ours, c.paper, c.verdict, c.kind) == ("plain-56 trains worse (percentage points)", 6.0, "yes",
                                                            "reproduced", "statement")
    assert (c.n_seeds, c.effect, c.margin) == (3, 6.0, 1.0)
    assert c.ci_low == pytest.approx(6 - 2.484, abs=1e-3) and c.ci_high == pytest.approx(6 + 2.484, abs=1e-3)
    c = claims.statement_claim("s", "Fig. 1", "x", [-5.0, -6.0, -7.0], margin=1.0, ours="A < B", paper=0.3)
    assert (c.ours, c.paper, c.verdict) == ("A < B", 0.3, "contradicted")


def test_statement_claim_of_one_seed_is_at_most_inconclusive_and_uses_the_sampling_error():
    c = claims.statement_claim("s", "Fig. 1", "x", 20.0, margin=1.0, sampling_se=1.0)
    assert (c.verdict, c.n_seeds) == ("inconclusive", 1)
    assert c.ci_low == pytest.approx(20 - 1.96, abs=1e-2) and "seed(s) < 3" in c.reason
    c = claims.statement_claim("s", "Fig. 1", "x", 20.0, margin=1.0)  # no error estimate: unbounded, null in JSON
    assert (c.verdict, c.ci_low, c.ci_high) == ("inconclusive", None, None)
    json.dumps(c.model_dump())


def test_statement_claim_gates_make_it_not_measurable():
    c = claims.statement_claim("s", "Fig. 1", "x", None, margin=1.0, measurable=False, why="too small")
    assert (c.ours, c.verdict, c.reason, c.effect) == (None, "not measurable at this scale", "too small", None)
    gate = verdicts.trained_gate("plain-34", 88.0, 10)
    c = claims.statement_claim("s", "Fig. 1", "x", [5.0, 6.0, 7.0], margin=1.0, gates=[gate])
    assert c.verdict == "not measurable at this scale" and "plain-34" in c.reason and "88.0%" in c.reason
    assert c.effect == 6.0 and c.ci_low is None


def test_number_and_architecture_claims_carry_their_kind():
    assert claims.number_claim("table6.error.resnet20", 9.0, at_paper_scale=True, tolerance=0.5).kind == "number"
    c = claims.architecture_claim("a", "Sec. 3.3", "option A adds no parameters", True, ours=0, reason="0 extra")
    assert (c.kind, c.verdict, c.n_seeds, c.effect) == ("architecture", "reproduced", None, None)


def test_every_claim_carries_its_scope():
    assert claims.statement_claim("s", "Fig. 1", "x", [5.0, 6.0, 7.0], margin=1.0).scope == "at this budget"
    assert claims.statement_claim("s", "Fig. 1", "x", [5.0, 6.0, 7.0], margin=1.0,
                                  at_paper_scale=True).scope == "at the paper's scale"
    assert claims.number_claim("table6.error.resnet20", 9.0, at_paper_scale=False, tolerance=0.5).scope == \
        "at this budget"
    assert claims.architecture_claim("a", "Sec. 3.3", "x", True, ours=0, reason="").scope == "exact, at every scale"


def _reading(effects):
    return claims.statement_claim("r", "Fig. 7", "smaller", effects, margin=5.0)


def test_two_readings_of_one_comparison_are_one_claim_that_needs_both_to_agree():
    agree = claims.readings_claim("fig7", "x", [("whole", _reading([8, 9, 10])), ("per_channel", _reading([7, 8, 9]))])
    assert agree.verdict == "reproduced" and [r.name for r in agree.readings] == ["whole", "per_channel"]
    assert agree.p_value == max(r.p_value for _, r in [("", _reading([8, 9, 10])), ("", _reading([7, 8, 9]))])
    disagree = claims.readings_claim("fig7", "x", [("whole", _reading([8, 9, 10])),
                                                   ("per_channel", _reading([-5, 4, 12]))])
    assert disagree.verdict == "inconclusive" and "the readings disagree (inconclusive, reproduced)" in disagree.reason
    assert disagree.effect == 9.0  # the first reading's effect is shown
