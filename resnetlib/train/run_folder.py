"""The files of one run: config.yaml, environment.json, metrics.csv, summary.json, checkpoints/last.pt
(and previous-last.pt, the one before).

Only rank 0 writes, under the folder's lock (``lock.RunLock``); every file is replaced atomically (unique
temporary name, fsync, rename, fsync of the folder), so a reader never sees a half-written file and a
killed writer's temporaries are removed at the next start. A folder that already holds a run is never
overwritten, and a resumed run keeps the settings in its config.yaml unless a change is explicitly allowed.
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

import yaml

from ..paths import REPO_ROOT
from .checkpoint import TEMP_GLOB, CheckpointError, replace_atomic
from ..config import ConfigError
from .config import PRESENTATION_ONLY, TrainConfig

__all__ = [
    "METRIC_FIELDS", "RunFolder", "RunFolderError", "ConfigMismatchError", "open_run_folder",
    "run_folder_path", "config_diff",
]

#: The columns of metrics.csv, one row per evaluation.
METRIC_FIELDS = [
    "iteration", "epoch", "lr", "train_loss", "train_error", "val_error", "test_error",
    "images_per_s", "elapsed_s",
]


#: Configuration changes accepted on resume (``allow_config_change``), one line each.
CHANGES_LOG = "config_changes.log"


class RunFolderError(RuntimeError):
    """The run folder cannot be used: it holds a run that would be overwritten, or it is a file."""


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
        self.write_config(config)
        self._write_text("environment.json", json.dumps(environment, indent=2))

    def write_config(self, config: TrainConfig) -> None:
        """``config.yaml``: the resolved configuration, the truth when the run is resumed."""
        if self.writer:
            self._write_text("config.yaml", yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))

    def write_metrics(self, rows: list[dict[str, float]]) -> None:
        if not self.writer:
            return
        text = io.StringIO()
        w = csv.DictWriter(text, fieldnames=METRIC_FIELDS, lineterminator="\r\n")
        w.writeheader()
        w.writerows(rows)
        self._write_text("metrics.csv", text.getvalue())

    def write_summary(self, summary: dict[str, Any]) -> None:
        if self.writer:
            self._write_text("summary.json", json.dumps(summary, indent=2))

    def _write_text(self, name: str, text: str) -> None:
        """Replace ``name`` atomically under a unique temporary name (two writers never share one)."""
        replace_atomic(self.path / name, lambda f: f.write(text.encode()))

    def clean_temporaries(self) -> list[Path]:
        """Remove what killed writers left (``.<name>.tmp-<pid>-<random>``); called under the run lock."""
        stale = [p for folder in (self.path, self.checkpoint.parent) for p in folder.glob(TEMP_GLOB)]
        for p in stale:
            p.unlink(missing_ok=True)
        return stale

    def saved_config(self) -> dict[str, Any] | None:
        """The resolved configuration the run was started with (``config.yaml``), None if absent."""
        path = self.path / "config.yaml"
        return yaml.safe_load(path.read_text()) if path.is_file() else None

    def record_config_change(self, diff: list[str]) -> None:
        """Append an accepted configuration change to ``config_changes.log`` (why the run's numbers moved)."""
        if self.writer:
            with open(self.path / CHANGES_LOG, "a") as f:
                f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} resumed with: {'; '.join(diff)}\n")


def run_folder_path(config: TrainConfig, run_dir: str | Path | None) -> Path:
    """``run_dir`` (``runs/<model>-<timestamp>`` if None); refuses a path that names a file."""
    path = Path(run_dir) if run_dir else _default_run_dir(config)
    if path.exists() and not path.is_dir():
        raise RunFolderError(f"--run-dir {path} is a file, not a folder; name a folder (created if missing)")
    return path


def open_run_folder(
    config: TrainConfig, path: Path, resume: bool, writer: bool, allow_config_change: bool = False
) -> RunFolder:
    """The run's folder, checked under its lock: refuses to resume nothing, to overwrite a run, or to
    resume with other result-changing settings than ``config.yaml`` holds (unless ``allow_config_change``,
    which rewrites config.yaml and records the change in ``config_changes.log``)."""
    run = RunFolder(path, writer=writer)
    if writer:
        run.clean_temporaries()
    if resume and not run.checkpoint.exists():
        raise CheckpointError(f"--resume: no checkpoint in {run.path}; start the run without --resume")
    if not resume and run.holds_run():
        raise RunFolderError(
            f"{run.path} already holds a run; continue it with --resume, or choose another --run-dir"
        )
    if resume:
        _check_resume_config(run, config, allow_config_change)
    return run


class ConfigMismatchError(ConfigError):
    """``--resume`` with settings that change results differing from the run folder's ``config.yaml``."""


def _check_resume_config(run: RunFolder, config: TrainConfig, allow_change: bool) -> None:
    """config.yaml is the truth on resume: a silent lr change would make the run's numbers unexplainable."""
    saved = run.saved_config()
    diff = [] if saved is None else config_diff(saved, config.model_dump(mode="json"))
    if diff and not allow_change:
        raise ConfigMismatchError(
            f"--resume: the configuration differs from {run.path / 'config.yaml'} in {'; '.join(diff)}. "
            "Resume without --params to continue as started, or add --allow-config-change (recorded in "
            f"{CHANGES_LOG})"
        )
    if diff:
        run.record_config_change(diff)
        run.write_config(config)


def config_diff(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    """``field: saved -> now`` for every result-changing setting that differs (``PRESENTATION_ONLY`` not)."""
    diff = []
    for key in sorted(set(saved) | set(current)):
        if not prefix and key in PRESENTATION_ONLY:
            continue
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            diff += config_diff(a, b, f"{prefix}{key}.")
        elif a != b:
            diff.append(f"{prefix}{key}: {a!r} saved, {b!r} now")
    return diff


def _default_run_dir(config: TrainConfig) -> Path:
    return REPO_ROOT / "runs" / f"{config.model.name}-{time.strftime('%Y%m%d-%H%M%S')}"
