"""The experiment framework: claim builders from the paper's registry, the experiment shape, the parameters cell."""

import json

import pandas as pd
import pytest

from resnetlib import paper, reproduce
from resnetlib.experiments import base


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


def test_statement_claim_judges_the_effect():
    c = base.statement_claim("s", "Fig. 1", "plain-56 trains worse", 2.345, margin=1.0, measurable=True, why="")
    assert (c.what, c.ours, c.paper, c.verdict) == ("plain-56 trains worse (percentage points)", 2.35, "yes",
                                                    "reproduced")
    c = base.statement_claim("s", "Fig. 1", "x", 0.5, margin=1.0, measurable=True, why="", ours="A < B", paper=0.3)
    assert (c.ours, c.paper, c.verdict) == ("A < B", 0.3, "not reproduced")
    c = base.statement_claim("s", "Fig. 1", "x", None, margin=1.0, measurable=False, why="too small")
    assert (c.ours, c.verdict, c.reason) == (None, "not measurable at this scale", "too small")


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
    model = reproduce.default_params_model(name)
    namespace = {}
    exec(model.parameters_cell(), namespace)
    assert set(namespace) - {"__builtins__"} == set(model.model_fields)
    assert model.from_namespace(namespace).model_dump() == model().model_dump()
