"""Session-wide test settings: temporary run and report folders, one compute thread per xdist worker, the
order in which files are handed to the workers, and one tiny training run shared by the tests that need a
finished run (instead of each training the same one).

- ``$RESNETLIB_RUNS_DIR`` and ``$RESNETLIB_REPORTS_DIR`` point at a fresh temporary folder of this pytest
  process (set in ``pytest_configure``, before any test module is imported, so that papermill kernels,
  torchrun and CLI subprocesses inherit them): a test run never writes into the checkout's ``runs/`` or
  ``reports/interactive/`` and never reuses a run trained before the session. Values set outside are
  overridden on purpose (tests are hermetic) and restored at the end.
- Under pytest-xdist (``make test`` runs ``pytest -n 2 --dist loadfile --no-loadscope-reorder``) each
  worker computes with one thread (``torch.set_num_threads(1)``, ``OMP_NUM_THREADS=1`` for its
  subprocesses): two workers with two threads each on a 2-core machine slow each other down far more
  than 2x.
- Test files with more ``slow`` tests come first (the smoke run of every notebook is the longest file,
  about half of the suite): with ``--no-loadscope-reorder`` xdist hands files out in this order, so one
  worker starts the long file at once while the other takes the rest (by default xdist orders files by
  their number of tests, which would start the long file late).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pytest

FOLDER_VARIABLES = ("RESNETLIB_RUNS_DIR", "RESNETLIB_REPORTS_DIR")
_saved: dict[str, str | None] = {}
_session_folder: Path | None = None

#: The tiny training run of ``tiny_run`` (cifar_resnet8 on 256 synthetic images, 24 iterations): the
#: ``TINY`` overrides of tests/train/test_loop.py, whose ``trained`` fixture checks that the two agree.
TINY_TRAINING = (
    "model.name=cifar_resnet8", "data.name=synthetic", "data.train_size=256", "data.test_size=64",
    "optim.batch_size=32", "optim.iterations=24", "optim.milestones=[16]", "eval_every=8",
    "checkpoint_every=4", "eval_batch_size=64", "deterministic=true", "threads=1", "log=none", "device=cpu",
)


def pytest_configure(config: pytest.Config) -> None:
    global _session_folder
    _session_folder = Path(tempfile.mkdtemp(prefix="resnetlib-tests-"))
    for name, sub in zip(FOLDER_VARIABLES, ("runs", "reports")):
        _saved[name] = os.environ.get(name)
        os.environ[name] = str(_session_folder / sub)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


def pytest_unconfigure(config: pytest.Config) -> None:
    for name, value in _saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    if _session_folder is not None:
        shutil.rmtree(_session_folder, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.path])  # stable: the order inside a file is kept


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One finished ``fit`` of the tiny configuration, trained once per pytest process: tests read its
    folder (config, metrics, checkpoint, summary) and compare against its weights; a test that needs to
    change a run folder copies it first (``shutil.copytree(tiny_run.run_dir, tmp_path / "run")``)."""
    from resnetlib.train import fit, load_config

    return fit(load_config(None, list(TINY_TRAINING)), tmp_path_factory.mktemp("tiny") / "run")
