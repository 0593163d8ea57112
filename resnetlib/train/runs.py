"""Trained runs cached by their resolved configuration.

A second ``reproduce``, or a notebook that needs another notebook's trained nets (Fig. 7 reuses the
nets of Fig. 6), finds them under ``runs/<model>-s<seed>-<key>`` where ``key`` hashes every setting
that can change the result. A run that crashed half-way is resumed from its last checkpoint; a
finished one is reused; ``force`` trains again after moving the old folder aside (never deleting it).
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from pathlib import Path

from .. import __version__
from .config import TrainConfig
from .loop import RunResult, fit

#: Settings that change how a run is shown or saved, never what it computes.
_PRESENTATION_ONLY = {"log", "threads", "checkpoint_every"}


def run_key(config: TrainConfig) -> str:
    """Hash of every result-changing setting and of resnetlib's version (so new code retrains)."""
    settings = config.model_dump(mode="json", exclude=_PRESENTATION_ONLY)
    settings["resnetlib"] = __version__
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def run_dir_for(config: TrainConfig, runs_dir: str | Path) -> Path:
    return Path(runs_dir) / f"{config.model.name}-s{config.seed}-{run_key(config)}"


def load_run(run_dir: str | Path, config: TrainConfig) -> RunResult:
    run_dir = Path(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    with open(run_dir / "metrics.csv", newline="") as f:
        metrics = [
            {k: int(v) if k == "iteration" else float(v) for k, v in row.items()} for row in csv.DictReader(f)
        ]
    return RunResult(run_dir, config, summary, metrics)


def cached_fit(config: TrainConfig, runs_dir: str | Path, force: bool = False, **fit_options) -> RunResult:
    """``fit`` unless a finished run with this exact configuration exists; resume a crashed one."""
    run_dir = run_dir_for(config, runs_dir)
    if force and run_dir.exists():
        run_dir.rename(run_dir.with_name(f"{run_dir.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}"))
    if (run_dir / "summary.json").exists():
        return load_run(run_dir, config)
    resume = (run_dir / "checkpoints" / "last.pt").exists()
    return fit(config, run_dir, resume=resume, **fit_options)
