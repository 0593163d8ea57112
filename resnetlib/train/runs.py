"""The one cache of trained runs, for classifiers and detectors alike.

A second ``reproduce``, or a notebook that needs another notebook's trained nets (Fig. 7 reuses the
nets of Fig. 6; Sec. 4.3's detectors are reused between runs of the detection notebook), finds them
under ``runs/<model>-s<seed>-<key>``. A run that crashed half-way is resumed from its last checkpoint;
a finished one is reused; ``force`` trains again after moving the old folder aside (never deleting it).

The key (``run_key``) is a sha256 of four things:

1. the whole resolved configuration, ``config.model_dump()``, minus the top-level fields in
   ``PRESENTATION_ONLY`` (how a run is shown or saved: ``log``, ``threads``, ``checkpoint_every``). It
   is an exclude list, never an allow-list: a new setting is hashed from the moment it exists. What a
   run records is hashed too (``eval_every``, a detector's ``log_every``): a reused run must hold the
   curves that were asked for.
2. the kind of device the config resolves to here (``cpu``, ``cuda``, ``mps``): ``device: auto`` trains
   other numbers on a GPU than on a CPU, so a GPU run is not reused on a CPU (or the reverse); and, for
   ``amp: auto``, the precision it resolves to on this machine (bf16 where the CPU has bf16 instructions).
3. resnetlib's version.
4. a fingerprint of the code that trains (``code_fingerprint``): the bytes of every ``*.py`` file under
   ``CLASSIFIER_CODE`` (``models/``, ``data/``, ``train/``, ``devices.py``) and, for detectors,
   ``detection/`` too (``DETECTOR_CODE``). Any edit there, a comment included, retrains: simple and never
   stale. Code outside them (experiments, reports, the runner) does not change what a run computes,
   only how it is configured (hashed in 1.) or shown.
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from .. import __version__
from ..devices import resolve_amp, resolve_device
from .config import PRESENTATION_ONLY, TrainConfig
from .lock import RunLock
from .loop import RunResult, fit

__all__ = [
    "CLASSIFIER_CODE",
    "DETECTOR_CODE",
    "PRESENTATION_ONLY",
    "cached_fit",
    "cached_run",
    "code_fingerprint",
    "load_run",
    "run_dir_for",
    "run_key",
]

T = TypeVar("T")

#: The parts of resnetlib (folders or files, relative to the package) whose code trains a classifier ...
CLASSIFIER_CODE: tuple[str, ...] = ("models", "data", "train", "devices.py")
#: ... and a detector (Sec. 4.3).
DETECTOR_CODE: tuple[str, ...] = (*CLASSIFIER_CODE, "detection")

PACKAGE_DIR = Path(__file__).resolve().parents[1]


def _source_files(parts: Sequence[str], root: Path) -> list[Path]:
    files: set[Path] = set()
    for part in parts:
        path = root / part
        files.update(path.rglob("*.py") if path.is_dir() else [path] if path.is_file() else [])
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def code_fingerprint(parts: Sequence[str] = CLASSIFIER_CODE, root: str | Path = PACKAGE_DIR) -> str:
    """sha256 of the relative path and the bytes of every ``*.py`` file under ``parts`` of ``root``."""
    root = Path(root)
    digest = hashlib.sha256()
    for path in _source_files(parts, root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def run_key(config: BaseModel, code: Sequence[str] = CLASSIFIER_CODE) -> str:
    """Hash of every result-changing setting, resnetlib's version and the training code (see above)."""
    device_type = resolve_device(config.device).type
    settings: dict[str, Any] = {
        "config": config.model_dump(mode="json", exclude=set(PRESENTATION_ONLY)),
        "device_type": device_type,
        "resnetlib": __version__,
        "code": code_fingerprint(code),
    }
    if getattr(config, "amp", None) == "auto":
        settings["amp_resolved"] = resolve_amp("auto", device_type)
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def run_dir_for(config: Any, runs_dir: str | Path, code: Sequence[str] = CLASSIFIER_CODE) -> Path:
    """``runs_dir/<model>-s<seed>-<key>`` for any config with ``model.name`` and ``seed``."""
    return Path(runs_dir) / f"{config.model.name}-s{config.seed}-{run_key(config, code)}"


def cached_run(
    run_dir: str | Path,
    *,
    train: Callable[[Path, bool], T],
    load: Callable[[Path], T],
    force: bool = False,
) -> T:
    """The one reuse rule: ``load`` a finished run (``summary.json``), resume a crashed one
    (``checkpoints/last.pt``: ``train(run_dir, True)``), else ``train(run_dir, False)``.

    Decided and done under the folder's ``RunLock`` (waiting for another process that holds it), so two
    jobs that need the same run train it once. ``force`` first moves an existing folder aside to
    ``<name>.replaced-<time>``, holding its lock; a folder another process is training is refused
    (``RunLockedError``), never moved from under it.
    """
    run_dir = Path(run_dir)
    if force and run_dir.exists():
        with RunLock(run_dir):
            run_dir.rename(run_dir.with_name(f"{run_dir.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}"))
    with RunLock(run_dir, wait=True):  # a second job needing this run waits, then loads it
        if (run_dir / "summary.json").exists():
            return load(run_dir)
        return train(run_dir, (run_dir / "checkpoints" / "last.pt").exists())


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
    return cached_run(
        run_dir_for(config, runs_dir),
        train=lambda run_dir, resume: fit(config, run_dir, resume=resume, **fit_options),
        load=lambda run_dir: load_run(run_dir, config),
        force=force,
    )
