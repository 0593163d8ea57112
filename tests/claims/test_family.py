"""The Holm adjustment over the statements a run judges."""

import pytest

from resnetlib.claims.family import holm_adjust, holm_verdicts


def test_holm_known_answer():
    # sorted p 0.01, 0.02, 0.03, 0.04 of m = 4: 0.04, 0.06, 0.06 (monotone), 0.06
    assert holm_adjust([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])


def test_decided_statements_that_do_not_survive_read_inconclusive_in_the_holm_column():
    records = [
        {"kind": "statement", "verdict": "reproduced", "p_value": 0.001},
        {"kind": "statement", "verdict": "reproduced", "p_value": 0.03},
        {"kind": "statement", "verdict": "inconclusive", "p_value": 0.4},
        {"kind": "statement", "verdict": "not measurable at this scale", "p_value": None},
        {"kind": "number", "verdict": "not measurable at this scale"},
    ]
    out, size = holm_verdicts(records)
    assert size == 3
    assert [r.get("verdict_holm") for r in out] == ["reproduced", "inconclusive", "inconclusive", None, None]
    assert out[0]["p_holm"] == pytest.approx(0.003) and out[1]["p_holm"] == pytest.approx(0.06)
    assert "p_holm" not in out[4]
