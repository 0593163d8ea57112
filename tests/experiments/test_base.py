"""The experiment framework: the experiment shape, the parameters cell (the claim builders: tests/claims)."""

import json

import pandas as pd
import pytest

from resnetlib import paper, reproduce
from resnetlib.claims import number_claim
from resnetlib.experiments import base


def test_run_experiment_writes_tables_and_results_and_hands_them_back(tmp_path):
    from resnetlib.experiments.architectures import Params

    params = Params(output_dir=str(tmp_path))
    table = pd.DataFrame({"a": [1, 2]})

    def measure(p):
        return base.Measured(tables={"numbers": table}, dataset="none", data_source="-", scale="tiny", seeds=[0],
                             extra={"note": "x"})

    def claims(p, m):
        return [number_claim("table1.macs.resnet18", m.tables["numbers"].a.sum() / 1e9 * 6e8,
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


def test_results_record_folders_inside_the_checkout_relative_to_it(tmp_path):
    """A committed results.json carries no machine's absolute paths for folders of the checkout."""
    from resnetlib.experiments.base import portable_paths

    root = tmp_path / "repo"
    (root / "reports" / "x").mkdir(parents=True)
    params = {"output_dir": str(root / "reports" / "x"), "runs_dir": "/elsewhere/runs", "data_root": "",
              "seeds": [0]}
    assert portable_paths(params, root) == {"output_dir": "reports/x", "runs_dir": "/elsewhere/runs",
                                            "data_root": "", "seeds": [0]}
