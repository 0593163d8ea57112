"""The experiment framework: claim builders from the paper's registry, the experiment shape, the parameters cell."""

import json

import pandas as pd
import pytest

from resnetlib import paper, reproduce
from resnetlib.experiments import base
from resnetlib.report import verdicts


def test_number_claim_takes_ref_value_and_text_from_the_registry():
    c = base.number_claim("table8.coco_map.resnet101", 3.14159, at_paper_scale=False, tolerance=1.0,
                          lower_is_better=False)
    assert (c.id, c.ref, c.what, c.ours, c.paper) == (
        "table8_coco_map_resnet101", "Table 8", "COCO val mAP@[.5,.95], ResNet-101 (%)", 3.14, 27.2)
    assert c.verdict == "not measurable at this scale"
    c = base.number_claim("table6.params.resnet20", 272_474 / 1e6, at_paper_scale=True, tolerance=0.005,
                          lower_is_better=None, id="p20", what="ResNet-20 parameters (M)", digits=3, per=1e6)
    assert (c.id, c.ref, c.ours, c.paper, c.verdict) == ("p20", "Table 6", 0.272, 0.27, "reproduced")
    with pytest.raises(KeyError, match="no reported number"):
        base.number_claim("table9.nothing", 1.0, at_paper_scale=True, tolerance=0.0)


def test_statement_claim_judges_the_per_seed_effects():
    c = base.statement_claim("s", "Fig. 1", "plain-56 trains worse", [5.0, 6.0, 7.0], margin=1.0)
    assert (c.what, c.ours, c.paper, c.verdict, c.kind) == ("plain-56 trains worse (percentage points)", 6.0, "yes",
                                                            "reproduced", "statement")
    assert (c.n_seeds, c.effect, c.margin) == (3, 6.0, 1.0)
    assert c.ci_low == pytest.approx(6 - 2.484, abs=1e-3) and c.ci_high == pytest.approx(6 + 2.484, abs=1e-3)
    c = base.statement_claim("s", "Fig. 1", "x", [-5.0, -6.0, -7.0], margin=1.0, ours="A < B", paper=0.3)
    assert (c.ours, c.paper, c.verdict) == ("A < B", 0.3, "contradicted")


def test_statement_claim_of_one_seed_is_at_most_inconclusive_and_uses_the_sampling_error():
    c = base.statement_claim("s", "Fig. 1", "x", 20.0, margin=1.0, sampling_se=1.0)
    assert (c.verdict, c.n_seeds) == ("inconclusive", 1)
    assert c.ci_low == pytest.approx(20 - 1.96, abs=1e-2) and "seed(s) < 3" in c.reason
    c = base.statement_claim("s", "Fig. 1", "x", 20.0, margin=1.0)  # no error estimate: unbounded, null in JSON
    assert (c.verdict, c.ci_low, c.ci_high) == ("inconclusive", None, None)
    json.dumps(c.model_dump())


def test_statement_claim_gates_make_it_not_measurable():
    c = base.statement_claim("s", "Fig. 1", "x", None, margin=1.0, measurable=False, why="too small")
    assert (c.ours, c.verdict, c.reason, c.effect) == (None, "not measurable at this scale", "too small", None)
    gate = verdicts.trained_gate("plain-34", 88.0, 10)
    c = base.statement_claim("s", "Fig. 1", "x", [5.0, 6.0, 7.0], margin=1.0, gates=[gate])
    assert c.verdict == "not measurable at this scale" and "plain-34" in c.reason and "88.0%" in c.reason
    assert c.effect == 6.0 and c.ci_low is None


def test_number_and_architecture_claims_carry_their_kind():
    assert base.number_claim("table6.error.resnet20", 9.0, at_paper_scale=True, tolerance=0.5).kind == "number"
    c = base.architecture_claim("a", "Sec. 3.3", "option A adds no parameters", True, ours=0, reason="0 extra")
    assert (c.kind, c.verdict, c.n_seeds, c.effect) == ("architecture", "reproduced", None, None)


def test_run_experiment_writes_tables_and_results_and_hands_them_back(tmp_path):
    from resnetlib.experiments.architectures import Params

    params = Params(output_dir=str(tmp_path))
    table = pd.DataFrame({"a": [1, 2]})

    def measure(p):
        return base.Measured(tables={"numbers": table}, dataset="none", data_source="-", scale="tiny", seeds=[0],
                             extra={"note": "x"})

    def claims(p, m):
        return [base.number_claim("table1.macs.resnet18", m.tables["numbers"].a.sum() / 1e9 * 6e8,
                                  at_paper_scale=True, tolerance=0.1, per=1e9)]

    outcome = base.run_experiment(params, measure, claims)
    assert pd.read_csv(tmp_path / "numbers.csv").equals(table) and outcome.numbers is table
    written = json.loads((tmp_path / "results.json").read_text())
    assert written == json.loads(json.dumps(outcome.results)) and outcome["note"] == "x"
    assert outcome["claims"][0]["paper"] == paper.value("table1.macs.resnet18") / 1e9
    with pytest.raises(AttributeError, match="numbers"):
        outcome.curves


@pytest.mark.parametrize("name", reproduce.discover_experiments())
def test_the_parameters_cell_runs_to_the_params_defaults(name):
    model = reproduce.default_experiment(name).params
    namespace = {}
    exec(model.parameters_cell(), namespace)
    assert set(namespace) - {"__builtins__"} == set(model.model_fields)
    assert model.from_namespace(namespace).model_dump() == model().model_dump()
