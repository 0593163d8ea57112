"""Every notebook, executed through the runner with its smoke.yaml, writes the results it promises."""

import json

import pytest

from resnetlib import reproduce


@pytest.fixture(scope="module")
def smoke_reports(tmp_path_factory):
    reports = tmp_path_factory.mktemp("reports")
    outcomes = reproduce.run_profile("smoke", reports_dir=reports, progress=False)
    return reports / "smoke", outcomes


@pytest.mark.slow
def test_every_notebook_runs_ok(smoke_reports):
    _, outcomes = smoke_reports
    failed = {o.name: f"{o.ename}: {o.evalue}" for o in outcomes if o.status != "ok"}
    assert not failed
    assert [o.name for o in outcomes] == reproduce.discover_experiments()


@pytest.mark.slow
@pytest.mark.parametrize("name", reproduce.discover_experiments())
def test_results_files(smoke_reports, name):
    folder, _ = smoke_reports
    results = json.loads((folder / name / "results.json").read_text())
    assert results["experiment"] == name and results["profile"] == "smoke"
    assert results["claims"], "every experiment states at least one claim"
    for claim in results["claims"]:
        assert claim["verdict"] in {"reproduced", "not reproduced", "not measurable at this scale"}
        assert claim["reason"]
    assert results["dataset"] and results["scale"]
    html = (folder / f"{name}.html").read_text()
    assert "experiment.Params.from_namespace" not in html  # code hidden in the rendered report


@pytest.mark.slow
def test_index_lists_every_experiment(smoke_reports):
    folder, _ = smoke_reports
    index = json.loads((folder / "index.json").read_text())
    html = (folder / "index.html").read_text()
    for name in reproduce.discover_experiments():
        assert f"{name}.html" in html
    assert sum(index["counts"].values()) >= len(reproduce.discover_experiments())
