"""The runner behind ``resnetlib reproduce``: validate every params file, execute the notebooks with
papermill, render them as HTML and write the index page.

Layout (``reports_dir`` defaults to ``<repo>/reports``)::

    params/NAME/PROFILE.yaml            what is injected (``_base.yaml`` merged underneath)
    reports/PROFILE/NAME.ipynb          the executed notebook of the last successful run
    reports/PROFILE/NAME.html           ... rendered, code hidden
    reports/PROFILE/NAME/               its output_dir: results.json, figures
    reports/PROFILE/NAME.failed.ipynb   the executed notebook of the last run, if that run failed
    reports/PROFILE/NAME.failed.html    ... rendered (the red error banner is visible)
    reports/PROFILE/NAME.failed/        ... and what it wrote into its output_dir
    reports/PROFILE/NAME.log            stderr of the kernel process (not of the cells) of the last run
    reports/PROFILE/NAME.training-log.txt  what the cells tagged ``log-output`` printed (kept off the page)
    reports/PROFILE/index.html, .json   one section per experiment, one row per claim of the paper

The stages, one module each: ``profile`` (discovery, params files, ``--set`` from ``overrides``, ``--data``
from ``data_roots``, validation), ``plan`` (``--plan``, and the head of every run's log), ``queue``
(``--jobs``: the experiments' planned runs trained first, ``jobs`` for ``--jobs auto``), ``execute`` (one
notebook: papermill, commit or roll back, render) and ``index`` (the index page); ``cli`` holds the options.
Each experiment module declares itself once (``EXPERIMENT = Experiment(...)``,
``resnetlib.experiments.declaration``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..config import ConfigError
from ..paths import NOTEBOOKS_DIR, PARAMS_DIR, REPO_ROOT, REPORTS_DIR  # noqa: F401 (re-exported)
from . import profile as profiles
from .cli import add_arguments, main
from .execute import Outcome, Run, run_all
from .profile import (
    EVERY_NOTEBOOK_PROFILE,
    KERNEL_NAME,
    LEFT_OUT_OF,
    ON_REQUEST,
    PAPER_ORDER,
    ExperimentFor,
    Profile,
    default_experiment,
    discover_experiments,
    load_profile,
    params_file_for,
    validate_profile,
)

__all__ = [
    "EVERY_NOTEBOOK_PROFILE",
    "KERNEL_NAME",
    "LEFT_OUT_OF",
    "ON_REQUEST",
    "PAPER_ORDER",
    "Outcome",
    "Profile",
    "add_arguments",
    "default_experiment",
    "discover_experiments",
    "load_profile",
    "main",
    "params_file_for",
    "print_plan",
    "run_profile",
    "validate_profile",
]


def _device_type(profile: Profile) -> str:
    """``cuda`` when a selected experiment trains on CUDA here, else ``cpu`` (for ``--jobs auto``)."""
    import torch

    devices = {str(p.device) for p in profile.params.values()}
    cuda = torch.cuda.is_available() and any(d.startswith("cuda") or d == "auto" for d in devices)
    return "cuda" if cuda else "cpu"


def _plan_and_jobs(loaded: Profile, jobs: int | str) -> tuple[str, int]:
    """The plan's text for this profile, and ``--jobs`` resolved (``auto``)."""
    from .jobs import resolve_jobs
    from .plan import make_plan, plan_text

    n, why = resolve_jobs(jobs, _device_type(loaded))
    return plan_text(make_plan(loaded), n, why), n


def print_plan(profile: str, only: Iterable[str] | None = None, *, force: bool = False,
               set_items: Iterable[str] | None = None, data_items: Iterable[str] | None = None,
               jobs: int | str = 1, launcher: Any = None, images_per_second: Any = None, **paths: Any) -> int:
    """``reproduce --plan``: print what the profile would train and its estimate; trains nothing. Data roots
    that do not hold their data set are listed (a real run refuses to start). With a SLURM ``launcher``,
    also the jobs it would submit, with their resources (and hours, given ``images_per_second``); returns 0."""
    loaded = load_profile(profile, only, force=force, set_items=set_items, data_items=data_items, **paths)
    started = time.perf_counter()
    text, _ = _plan_and_jobs(loaded, jobs)
    if launcher is not None and launcher.kind == "slurm":
        text += "\n" + _slurm_plan_text(loaded, launcher, images_per_second)
    print(f"{text}\n(plan made in {time.perf_counter() - started:.1f} s)", flush=True)
    return 0


def _slurm_plan_text(loaded: Profile, launcher: Any, images_per_second: Any) -> str:
    """The SLURM jobs ``--launcher slurm`` would submit for the planned runs (``launchers.plan``)."""
    from ..launchers import format_plan, plan
    from .queue import runs_by_folder

    errors: dict[str, str] = {}
    jobs = [job for runs_dir, configs in runs_by_folder(loaded, errors).items()
            for job in plan(configs, runs_dir, launcher, images_per_second)]
    unlisted = "".join(f"\n  {name}: runs not listed: {error}" for name, error in errors.items())
    return "slurm jobs (one per planned run; experiments that train inside their notebook run there):\n" + \
        format_plan(jobs, launcher.resources.max_resubmissions) + unlisted


def run_profile(
    profile: str,
    only: Iterable[str] | None = None,
    force: bool = False,
    reports_dir: str | Path | None = None,
    progress: bool = True,
    *,
    notebooks_dir: str | Path | None = None,
    params_dir: str | Path | None = None,
    experiment_for: ExperimentFor | None = None,
    cwd: str | Path | None = None,
    kernel_name: str = KERNEL_NAME,
    execution_timeout: int | None = None,
    environment: dict[str, Any] | None = None,
    jobs: int | str = 1,
    set_items: Iterable[str] | None = None,
    data_items: Iterable[str] | None = None,
    environ: Mapping[str, str] | None = None,
    launcher: Any = None,
) -> list[Outcome]:
    """Validate all selected experiments (params files, ``--set``, ``--data``), print the plan, then execute,
    render and index them; returns this run's outcomes.

    ``jobs`` > 1 (or ``auto``) first trains the experiments' planned runs that many at a time in separate
    processes (``queue.pretrain``); a SLURM ``launcher`` (``resnetlib.launchers``) submits them as jobs
    instead; the notebooks then find them in the run cache. A data root that does not
    hold its data set stops the run before anything trains (ConfigError).

    A failing notebook does not stop the others. The index (``reports_dir/PROFILE/index.html``) lists
    this run's notebooks and, after an ``--only`` run, the other notebooks' last outcomes (marked as
    from an earlier run).
    """
    from .index import write_index
    from .queue import pretrain

    only = list(only) if only else None
    loaded = load_profile(profile, only, force=force, set_items=set_items, data_items=data_items,
                          environ=environ, notebooks_dir=notebooks_dir, params_dir=params_dir,
                          experiment_for=experiment_for)
    if loaded.data_problems:
        raise ConfigError("data roots (nothing was run): " + "; ".join(loaded.data_problems))
    run = Run(
        profile=profile,
        profile_dir=(Path(reports_dir) if reports_dir is not None else REPORTS_DIR).absolute() / profile,
        notebooks_dir=Path(notebooks_dir) if notebooks_dir is not None else profiles.NOTEBOOKS_DIR,
        params_dir=Path(params_dir) if params_dir is not None else None,
        force=force, cwd=Path(cwd) if cwd is not None else profiles.REPO_ROOT, kernel_name=kernel_name,
        timeout=execution_timeout, progress=progress, overrides=loaded.overrides,
    )
    text, jobs = _plan_and_jobs(loaded, jobs)
    run.say(text)
    run.profile_dir.mkdir(parents=True, exist_ok=True)
    queue_seconds = 0.0
    if jobs > 1 or (launcher is not None and launcher.kind == "slurm"):
        from ..launchers import LocalLauncher

        start = time.perf_counter()
        run = pretrain(run, loaded, launcher if launcher is not None and launcher.kind == "slurm"
                       else LocalLauncher(jobs=jobs))
        queue_seconds = time.perf_counter() - start
    outcomes = run_all(run, loaded.inject)
    write_index(run, outcomes, only, environment=environment, queue_seconds=queue_seconds,
                overrides=loaded.applied())
    return outcomes
