"""Issue 11, defect 5: a misspelt notebook parameter fails in the notebook's first cells, naming it and the
closest field, through papermill's CLI and API alike (papermill itself only warns)."""

import subprocess
import sys
from pathlib import Path

import papermill
import pytest
from papermill.exceptions import PapermillExecutionError

from resnetlib import reproduce
from resnetlib.config import ConfigError
from resnetlib.experiments import cifar_degradation

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "cifar_degradation.ipynb"


def test_papermill_cli_with_a_misspelt_parameter_fails_naming_it(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "papermill", str(NOTEBOOK), str(tmp_path / "out.ipynb"), "-p", "depthz", "20",
         "-k", reproduce.KERNEL_NAME, "--cwd", str(NOTEBOOK.parent)],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 1
    assert "unknown parameter 'depthz'; did you mean 'depths'" in out.stdout + out.stderr


def test_papermill_api_with_a_misspelt_parameter_fails_naming_it(tmp_path):
    with pytest.raises(PapermillExecutionError) as err:
        papermill.execute_notebook(
            str(NOTEBOOK), str(tmp_path / "out.ipynb"), parameters={"depthz": 20},
            kernel_name=reproduce.KERNEL_NAME, cwd=str(NOTEBOOK.parent), progress_bar=False,
        )
    assert err.value.ename == "ConfigError"
    assert "'depthz'" in err.value.evalue and "'depths'" in err.value.evalue
    assert err.value.cell_index <= 4  # the Params cell, before any training


def test_only_parameter_cells_count_in_a_kernel_and_plain_namespaces_ignore_modules_and_functions():
    history = ["", "# Parameters\nprofile = 'smoke'\n", "# Parameters\ndepthz = [20]\n", "outcome = 1\n"]
    with pytest.raises(ConfigError, match="depthz.*did you mean 'depths'"):
        cifar_degradation.Params.from_namespace({"In": history, "depthz": [20], "outcome": 1})
    later_cells = {"In": history[:2] + history[3:], "outcome": 1, "Out": {}, "_": None}
    assert cifar_degradation.Params.from_namespace(later_cells).depths == [20, 32]
    plain = {"sys": sys, "run": print, "Path": Path, "_hidden": 1, "get_ipython": None}
    assert cifar_degradation.Params.from_namespace(plain).depths == [20, 32]
    with pytest.raises(ConfigError, match="depthz"):
        cifar_degradation.Params.from_namespace({**plain, "depthz": [20]})
