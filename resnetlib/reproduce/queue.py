"""The run-queue stage of ``reproduce --jobs N``: train every selected experiment's planned runs first.

An experiment that knows what it will train declares ``planned_runs`` (``Experiment.planned_runs``); the
deduplicated union of those runs is trained ``jobs`` at a time in separate processes
(``resnetlib.run_queue``) before any notebook runs, and the notebooks then find them in the run cache.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from .execute import Run
from .profile import Profile

__all__ = ["planned_runs", "pretrain"]


def planned_runs(profile: Profile, errors: dict[str, str] | None = None) -> dict[str, list[tuple[Path, Any]]]:
    """``{experiment: [(runs folder, TrainConfig), ...]}`` for the experiments that declare what they will
    train; the others train inside their notebooks. With ``errors`` (``--plan``), an experiment whose runs
    cannot be listed (its data is missing) is recorded there instead of raising."""
    out = {}
    for name, params in profile.params.items():
        plan = profile.experiments[name].planned_runs
        try:
            configs = plan(params) if plan is not None else []
        except Exception as exc:
            if errors is None:
                raise
            errors[name] = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
            continue
        if configs:
            out[name] = [(params.runs_path(), config) for config in configs]
    return out


def pretrain(run: Run, profile: Profile, jobs: int) -> Run:
    """Train the union of the notebooks' planned runs, ``jobs`` at a time, before any notebook runs
    (``resnetlib.run_queue``); returns the run with those experiments marked as pretrained."""
    from ..run_queue import train_queue

    planned = planned_runs(profile)
    by_folder: dict[Path, list[Any]] = {}
    for runs in planned.values():
        for runs_dir, config in runs:
            by_folder.setdefault(runs_dir, []).append(config)
    for runs_dir, configs in by_folder.items():
        train_queue(configs, runs_dir, jobs, force=run.force, say=run.say)
    return dataclasses.replace(run, pretrained=frozenset(planned))
