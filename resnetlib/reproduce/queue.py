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

__all__ = ["planned_runs", "pretrain", "runs_by_folder"]


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


def runs_by_folder(profile: Profile, errors: dict[str, str] | None = None) -> dict[Path, list[Any]]:
    """The planned runs' configurations grouped by run cache (experiments may name different ones); with
    ``errors``, as :func:`planned_runs`."""
    by_folder: dict[Path, list[Any]] = {}
    for runs in planned_runs(profile, errors).values():
        for runs_dir, config in runs:
            by_folder.setdefault(runs_dir, []).append(config)
    return by_folder


def pretrain(run: Run, profile: Profile, launcher: Any) -> Run:
    """Train the union of the notebooks' planned runs before any notebook runs, with ``launcher``
    (``resnetlib.launchers``: this host's pool of ``--jobs`` processes, or one SLURM job per run); returns
    the run with those experiments marked as pretrained."""
    from ..launchers import launch

    for runs_dir, configs in runs_by_folder(profile).items():
        launch(configs, runs_dir, launcher, force=run.force, say=run.say)
    return dataclasses.replace(run, pretrained=frozenset(planned_runs(profile)))
