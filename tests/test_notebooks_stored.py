"""The notebooks as stored in notebooks/: clean, runnable by papermill, and in step with their typed Params.

A notebook's ``parameters`` cell and its experiment's ``Params`` model are two spellings of one list;
these tests keep them from drifting, and check every params file of every profile the way
``resnetlib reproduce`` does before it runs anything.
"""

from __future__ import annotations

import ast
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
    return reproduce.default_params_model(name)


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
def test_parameters_cell_matches_params_model(name: str):
    model = _params_model(name)
    nb_params = papermill.inspect_notebook(str(reproduce.NOTEBOOKS_DIR / f"{name}.ipynb"))
    in_notebook, in_model = set(nb_params), set(model.model_fields)
    assert in_notebook == in_model, (
        f"notebook only: {sorted(in_notebook - in_model)}; Params only: {sorted(in_model - in_notebook)}"
    )
    # The stored defaults (what nbval and an interactive session run) are Params' smoke-scale defaults.
    literal = {}
    for key, info in nb_params.items():
        try:
            literal[key] = ast.literal_eval(info["default"])
        except (ValueError, SyntaxError):
            continue  # an expression; checked when the notebook runs
    from_notebook = model.model_validate(literal).model_dump()
    defaults = model.model_validate({}).model_dump()
    differ = {k: (from_notebook[k], defaults[k]) for k in literal if from_notebook[k] != defaults[k]}
    assert not differ, f"parameters cell default != Params default (notebook, Params): {differ}"


@pytest.mark.parametrize("profile", PROFILES)
def test_every_params_file_validates(profile: str):
    if not EXPERIMENTS:
        pytest.skip("no notebooks yet")
    validated = reproduce.validate_profile(profile)
    assert list(validated) == EXPERIMENTS
