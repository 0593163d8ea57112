"""The notebooks as stored in notebooks/: clean, runnable by papermill, and generated from their typed Params.

A notebook's ``parameters`` cell is rendered from its experiment's ``Params`` in one place
(``ExperimentParams.parameters_cell``); these tests check every notebook against it, and every params
file of every profile the way ``resnetlib reproduce`` does before it runs anything.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import papermill
import pytest

from resnetlib import reproduce
from resnetlib.experiments.base import ExperimentParams

NOTEBOOKS = sorted(reproduce.NOTEBOOKS_DIR.glob("*.ipynb"))
EXPERIMENTS = reproduce.discover_experiments()
PROFILES = ("smoke", "cpu", "paper")


def _params_model(name: str):
    return reproduce.default_experiment(name).params


def test_there_are_notebooks():
    assert (reproduce.NOTEBOOKS_DIR / "architectures.ipynb").is_file(), "no notebooks/architectures.ipynb"
    assert EXPERIMENTS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_clean(path: Path):
    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    assert nb.nbformat == 4
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", "kernelspec.name must be python3"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert not cell.get("outputs"), f"cell {i} has stored outputs (strip them before committing)"
            assert cell.get("execution_count") is None, f"cell {i} has a stored execution count"
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"expected exactly one cell tagged 'parameters', found cells {tagged}"
    first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    assert tagged[0] == first_code, "the 'parameters' cell must be the first code cell"


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_params_files_and_module_exist(name: str):
    for profile in PROFILES:
        path = reproduce.params_file_for(name, profile)
        assert path.is_file(), f"missing {path.relative_to(reproduce.REPO_ROOT)}"
    model = _params_model(name)
    assert issubclass(model, ExperimentParams), f"{name}.Params: not an ExperimentParams"


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_parameters_cell_is_rendered_from_params(name: str):
    model = _params_model(name)
    nb = nbformat.read(reproduce.NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", []))
    assert cell.source == model.parameters_cell(), (
        f"notebooks/{name}.ipynb: its parameters cell is not Params.parameters_cell(); regenerate it with "
        f"resnetlib.experiments.base.write_parameters_cell('notebooks/{name}.ipynb', {name}.Params)"
    )
    assert set(papermill.inspect_notebook(str(reproduce.NOTEBOOKS_DIR / f"{name}.ipynb"))) == set(model.model_fields)


@pytest.mark.parametrize("name", [n for n in EXPERIMENTS if n != "detection"])
def test_the_training_cell_is_tagged_log_output(name: str):
    """The cell that trains prints the training log: the report hides its output (the log stays in the run)."""
    nb = nbformat.read(reproduce.NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
    tagged = [c.source for c in nb.cells if "log-output" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and "experiment.run(params)" in tagged[0], tagged


@pytest.mark.parametrize("profile", [*PROFILES, "cpu-long"])
def test_every_params_file_validates(profile: str):
    """Every profile runs every notebook, except the on-request ones (the budget study) outside smoke,
    which validate when named."""
    if not EXPERIMENTS:
        pytest.skip("no notebooks yet")
    validated = reproduce.validate_profile(profile)
    left_out = reproduce.ON_REQUEST | set(reproduce.LEFT_OUT_OF.get(profile, {}))
    assert list(validated) == [e for e in EXPERIMENTS if profile == "smoke" or e not in left_out]
    on_request = [e for e in EXPERIMENTS if e in left_out and profile in PROFILES]
    if on_request:
        assert list(reproduce.validate_profile(profile, only=on_request)) == on_request
