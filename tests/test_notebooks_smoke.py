"""Every notebook, executed through the runner with its smoke.yaml, writes the results it promises; the
same run is the notebooks' "Run All" check.

nbval (``pytest --nbval-lax notebooks``, the "Run All" check of JupyterLab) runs after these tests in
``make test``, on the nets this smoke run trained: ``make test`` names a fresh folder in
``$RESNETLIB_SMOKE_RUNS_DIR``, this module trains into it (instead of the session's run cache) and the nbval
pass reads it as its ``$RESNETLIB_RUNS_DIR``. That is sound because the smoke profile *is* the
parameters-cell defaults nbval runs (``test_smoke_profile_is_the_parameters_cell_defaults``;
tests/test_notebooks_stored.py checks that the cell is rendered from ``Params``' defaults). Here:

- the runner executes every notebook with a temporary working directory (neither the repository nor
  notebooks/), which must stay empty, so no notebook depends on or writes to its cwd;
- the default folders of an interactive run (``output_dir=""``, ``runs_dir=""``): one notebook is executed
  exactly as nbval and JupyterLab do (no injected cell, cwd notebooks/), writes into
  ``$RESNETLIB_REPORTS_DIR/interactive/`` and reuses every net of the smoke run.

Everything is written under the temporary folders of tests/conftest.py (the run cache: ``make test``'s
folder where it names one), never into the checkout.
"""

import json
import os
import time

import papermill
import pytest

from resnetlib import reproduce
from resnetlib.paths import (
    NOTEBOOKS_DIR, REPO_ROOT, REPORTS_DIR, RUNS_DIR, default_interactive_dir, default_runs_dir,
)

#: Injected by the runner on every run (never the default), or left out of the run-cache key (threads).
NOT_COMPARED = {"profile", "output_dir", "threads"}
#: The notebook executed with its stored defaults, as nbval did: it trains (so its runs must come from
#: the smoke run's cache) and writes into the default folders.
RUN_ALL_NOTEBOOK = "cifar_degradation"
#: Experiments whose rows are other experiments' claims at several settings (they add none to the index).
STUDIES = {"budget_study"}


#: Set by ``make test``: the run cache this module trains into, for the nbval pass that follows the tests.
SHARED_RUNS_VARIABLE = "RESNETLIB_SMOKE_RUNS_DIR"


@pytest.fixture(scope="module", autouse=True)
def _shared_run_cache():
    """While this module runs, ``$RESNETLIB_RUNS_DIR`` is ``$RESNETLIB_SMOKE_RUNS_DIR`` where that is set."""
    shared = os.environ.get(SHARED_RUNS_VARIABLE)
    with pytest.MonkeyPatch.context() as patch:
        if shared:
            patch.setenv("RESNETLIB_RUNS_DIR", shared)
        yield


def _flat(value, prefix=""):
    if isinstance(value, dict):
        return {k: v for key, sub in value.items() for k, v in _flat(sub, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): value}


def _written_since(folder, start: float) -> list[str]:
    if not folder.exists():
        return []
    return sorted(str(p) for p in folder.rglob("*") if p.stat().st_mtime >= start)


@pytest.fixture(scope="module")
def smoke_reports(tmp_path_factory):
    start = time.time()
    reports = tmp_path_factory.mktemp("reports")
    cwd = tmp_path_factory.mktemp("cwd")
    outcomes = reproduce.run_profile("smoke", reports_dir=reports, progress=False, cwd=cwd)
    return reports / "smoke", outcomes, cwd, start


@pytest.mark.parametrize("name", reproduce.discover_experiments())
def test_smoke_profile_is_the_parameters_cell_defaults(name):
    """params/NAME/smoke.yaml resolves to NAME's defaults, so the smoke run is the "Run All" run."""
    model = reproduce.default_experiment(name).params
    injected = reproduce.validate_profile("smoke", only=[name])[name]
    smoke = _flat(model.model_validate(injected).model_dump(mode="json"))
    defaults = _flat(model.model_validate({}).model_dump(mode="json"))
    differ = {k: (smoke.get(k), defaults.get(k)) for k in smoke.keys() | defaults.keys()
              if k.rsplit(".", 1)[-1] not in NOT_COMPARED and smoke.get(k) != defaults.get(k)}
    assert not differ, f"smoke.yaml differs from the parameters-cell defaults (smoke, default): {differ}"


@pytest.mark.slow
def test_every_notebook_runs_ok(smoke_reports):
    _, outcomes, _, _ = smoke_reports
    failed = {o.name: f"{o.ename}: {o.evalue}" for o in outcomes if o.status != "ok"}
    assert not failed
    assert [o.name for o in outcomes] == reproduce.discover_experiments()


@pytest.mark.slow
@pytest.mark.parametrize("name", reproduce.discover_experiments())
def test_results_files(smoke_reports, name):
    folder, _, _, _ = smoke_reports
    results = json.loads((folder / name / "results.json").read_text())
    assert results["experiment"] == name and results["profile"] == "smoke"
    if name in STUDIES:  # judges the other notebooks' claims at several budgets; states none of its own
        effects = (folder / name / "effects.csv").read_text().splitlines()
        assert not results["claims"] and len(effects) > 1 and "verdict" in effects[0]
    else:
        assert results["claims"], "every experiment states at least one claim"
    for claim in results["claims"]:
        assert claim["verdict"] in {"reproduced", "not reproduced", "not measurable at this scale"}
        assert claim["reason"]
    assert results["dataset"] and results["scale"]
    html = (folder / f"{name}.html").read_text()
    assert "experiment.Params.from_namespace" not in html  # code hidden in the rendered report


@pytest.mark.slow
def test_index_lists_every_experiment(smoke_reports):
    folder, _, _, _ = smoke_reports
    index = json.loads((folder / "index.json").read_text())
    html = (folder / "index.html").read_text()
    for name in reproduce.discover_experiments():
        assert f"{name}.html" in html
    assert sum(index["counts"].values()) >= len(reproduce.discover_experiments())


@pytest.mark.slow
def test_defaults_run_in_the_notebook_folder_into_the_default_folders(smoke_reports, tmp_path):
    """nbval's run of one notebook: no injected parameters, cwd notebooks/; it writes its results into
    ``$RESNETLIB_REPORTS_DIR/interactive/NAME`` and trains nothing (its defaults are the smoke run's)."""
    folder, _, _, _ = smoke_reports
    runs_before = sorted(p.name for p in default_runs_dir().iterdir())
    papermill.execute_notebook(
        str(NOTEBOOKS_DIR / f"{RUN_ALL_NOTEBOOK}.ipynb"), str(tmp_path / "out.ipynb"),
        cwd=str(NOTEBOOKS_DIR), kernel_name=reproduce.KERNEL_NAME, progress_bar=False,
    )
    assert sorted(p.name for p in default_runs_dir().iterdir()) == runs_before
    results = json.loads((default_interactive_dir() / RUN_ALL_NOTEBOOK / "results.json").read_text())
    smoke = json.loads((folder / RUN_ALL_NOTEBOOK / "results.json").read_text())
    assert results["claims"] == smoke["claims"]


@pytest.mark.slow
def test_nothing_is_written_into_the_checkout_or_the_working_directory(smoke_reports):
    _, _, cwd, start = smoke_reports
    assert any(default_runs_dir().iterdir()), "the smoke run trained into $RESNETLIB_RUNS_DIR"
    assert not default_runs_dir().is_relative_to(REPO_ROOT)
    assert not any(cwd.iterdir()), f"a notebook wrote into its working directory: {sorted(cwd.iterdir())}"
    assert _written_since(RUNS_DIR, start) == []
    assert _written_since(REPORTS_DIR / "interactive", start) == []
