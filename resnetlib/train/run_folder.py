"""The files of one run: config.yaml, environment.json, metrics.csv, summary.json, checkpoints/last.pt.

Only rank 0 writes; metrics and summary are replaced atomically (temporary file, rename), so a reader
never sees a half-written file. A folder that already holds a run is never overwritten.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

import yaml

from ..paths import REPO_ROOT
from .checkpoint import CheckpointError
from .config import TrainConfig

__all__ = ["METRIC_FIELDS", "RunFolder", "RunFolderError", "open_run_folder"]

#: The columns of metrics.csv, one row per evaluation.
METRIC_FIELDS = [
    "iteration", "epoch", "lr", "train_loss", "train_error", "val_error", "test_error",
    "images_per_s", "elapsed_s",
]


class RunFolderError(RuntimeError):
    """The run folder holds a run that would be overwritten."""


class RunFolder:
    """Files of one run; only rank 0 (``writer``) writes."""

    def __init__(self, path: Path, writer: bool) -> None:
        self.path, self.writer = path, writer
        self.checkpoint = path / "checkpoints" / "last.pt"

    def holds_run(self) -> bool:
        return self.checkpoint.exists() or (self.path / "summary.json").exists()

    def write_start(self, config: TrainConfig, environment: dict[str, Any]) -> None:
        if not self.writer:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        resolved = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
        (self.path / "config.yaml").write_text(resolved)
        (self.path / "environment.json").write_text(json.dumps(environment, indent=2))

    def write_metrics(self, rows: list[dict[str, float]]) -> None:
        if not self.writer:
            return
        tmp = self.path / ".metrics.csv.tmp"
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=METRIC_FIELDS)
            w.writeheader()
            w.writerows(rows)
        tmp.replace(self.path / "metrics.csv")

    def write_summary(self, summary: dict[str, Any]) -> None:
        if self.writer:
            tmp = self.path / ".summary.json.tmp"
            tmp.write_text(json.dumps(summary, indent=2))
            tmp.replace(self.path / "summary.json")


def open_run_folder(config: TrainConfig, run_dir: str | Path | None, resume: bool, writer: bool) -> RunFolder:
    """The run's folder (``runs/<model>-<timestamp>`` if None); refuses to resume nothing or to overwrite."""
    run = RunFolder(Path(run_dir) if run_dir else _default_run_dir(config), writer=writer)
    if resume and not run.checkpoint.exists():
        raise CheckpointError(f"--resume: no checkpoint in {run.path}; start the run without --resume")
    if not resume and run.holds_run():
        raise RunFolderError(
            f"{run.path} already holds a run; continue it with --resume, or choose another --run-dir"
        )
    return run


def _default_run_dir(config: TrainConfig) -> Path:
    return REPO_ROOT / "runs" / f"{config.model.name}-{time.strftime('%Y%m%d-%H%M%S')}"
