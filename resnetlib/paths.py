"""Where the project's folders are, defined once.

``REPO_ROOT`` is the checkout holding ``resnetlib/``; the default folders of runs, reports, params,
notebooks and data hang below it. Every default can be overridden by the caller (``runs_dir``,
``output_dir``, ``$RESNETLIB_DATA``).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
PARAMS_DIR = REPO_ROOT / "params"
REPORTS_DIR = REPO_ROOT / "reports"
RUNS_DIR = REPO_ROOT / "runs"
DATA_DIR = REPO_ROOT / "data"


def default_runs_dir() -> Path:
    """The run cache: ``$RESNETLIB_RUNS_DIR`` if set (tests point it at a temporary folder), else ``runs/``."""
    env = os.environ.get("RESNETLIB_RUNS_DIR")
    return Path(env).expanduser() if env else RUNS_DIR


def default_interactive_dir() -> Path:
    """Where a notebook run outside the runner writes: ``$RESNETLIB_REPORTS_DIR`` or ``reports/``, then
    ``interactive/``."""
    env = os.environ.get("RESNETLIB_REPORTS_DIR")
    return (Path(env).expanduser() if env else REPORTS_DIR) / "interactive"
