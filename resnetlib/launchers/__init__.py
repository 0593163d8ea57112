"""Where the run queue's runs train: this host's process pool, or a SLURM cluster (issue 23).

The runner (``resnetlib reproduce``) calls one function in place of ``run_queue.train_queue``::

    launch(configs, runs_dir, launcher, force=..., say=...) -> list[QueuedRun]

with ``launcher`` a validated ``LocalLauncher`` (today's ``--jobs N`` pool, ``run_queue.train_queue``) or
``SlurmLauncher`` (one job per planned run through submitit, ``launchers.slurm``), built from the command
line by ``launcher_from_args(args)`` after ``add_launcher_arguments(parser)``. ``plan(configs, runs_dir,
launcher)`` lists the jobs a SLURM launch would submit without submitting anything (``--plan``).

Both return the same ``QueuedRun`` list, and both leave every run in the one run cache, where the
notebooks then find it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from ..config import ConfigError, StrictModel, load_yaml, validate
from ..run_queue import QueuedRun
from .slurm import PlannedJob, SlurmLauncher, SlurmResources, format_plan, plan_jobs

__all__ = [
    "LocalLauncher", "SlurmLauncher", "SlurmResources", "Launcher", "launch", "plan",
    "planned_runs", "add_launcher_arguments", "launcher_from_args", "format_plan", "PlannedJob",
]


class LocalLauncher(StrictModel):
    """``--launcher local`` (the default): ``jobs`` processes on this host (``run_queue.train_queue``)."""

    kind: Literal["local"] = "local"
    jobs: int = Field(1, ge=1, description="runs trained at once, each in its own process")


#: What ``launch`` takes: this host's pool or a SLURM cluster.
Launcher = LocalLauncher | SlurmLauncher


def planned_runs(configs: Iterable[Any], runs_dir: str | Path) -> list[tuple[Path, Any]]:
    """``run_queue.unique_runs``, with the one-line error of a planner that cannot see the runs' device."""
    from ..run_queue import unique_runs

    try:
        return unique_runs(configs, runs_dir)
    except RuntimeError as exc:  # resolve_device: device: cuda where torch sees none
        raise ConfigError(f"cannot name the run folders here ({str(exc).splitlines()[0]}); run the launcher "
                          "where torch sees the jobs' device kind (for --launcher slurm: inside a one-GPU "
                          "allocation, e.g. srun --gres=gpu:1)") from None


def launch(configs: Iterable[Any], runs_dir: str | Path, launcher: Launcher, *, force: bool = False,
           say: Callable[[str], None] = print) -> list[QueuedRun]:
    """Train every distinct configuration of ``configs`` into the run cache ``runs_dir`` with ``launcher``;
    a failed run is reported (``QueuedRun.error``), not raised: its notebook trains it again and fails
    visibly there. ``force`` retrains (moving the old folder aside) once; resubmissions never force."""
    if isinstance(launcher, LocalLauncher):
        from ..run_queue import train_queue

        return train_queue(configs, runs_dir, launcher.jobs, force=force, say=say)
    from .slurm import submit_and_wait

    runs = planned_runs(configs, runs_dir)
    return submit_and_wait(runs, runs_dir, launcher, force=force, say=say) if runs else []


def plan(configs: Iterable[Any], runs_dir: str | Path, launcher: SlurmLauncher,
         images_per_second: float | dict[str, float] | None = None) -> list[PlannedJob]:
    """The jobs ``launch`` would submit (nothing is submitted); print them with ``format_plan``. Works on a
    login node without the runs' device too: the runs are then deduplicated by configuration and named
    ``<model>-s<seed>-unresolved-<hash>`` (the folder key needs the device kind: ``train.runs.run_key``)."""
    configs = list(configs)
    try:
        runs = planned_runs(configs, runs_dir)
    except ConfigError:
        runs = _unresolved_runs(configs, runs_dir)
    return plan_jobs(runs, launcher.resources, images_per_second)


def _unresolved_runs(configs: Iterable[Any], runs_dir: str | Path) -> list[tuple[Path, Any]]:
    """``unique_runs`` where the device cannot be resolved: one entry per distinct result-changing config."""
    import hashlib
    import json

    from ..train.runs import PRESENTATION_ONLY

    seen: dict[str, tuple[Path, Any]] = {}
    for config in configs:
        text = json.dumps(config.model_dump(mode="json", exclude=set(PRESENTATION_ONLY)), sort_keys=True)
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        name = f"{config.model.name}-s{config.seed}-unresolved-{digest}"
        seen.setdefault(digest, (Path(runs_dir) / name, config))
    return list(seen.values())


# --------------------------------------------------------------------------------------------- CLI
#: ``--slurm-X`` flag -> ``SlurmResources`` field (flags override a ``--slurm-config`` file).
_RESOURCE_FLAGS = {
    "partition": str, "account": str, "qos": str, "gpus_per_run": int, "imagenet_gpus_per_run": int,
    "cpus_per_task": int, "mem_gb": int, "time_limit": str, "runs_per_gpu": int, "max_resubmissions": int,
}


def add_launcher_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``--launcher local|slurm`` and the ``--slurm-*`` options (resources, config file, job files folder)."""
    group = parser.add_argument_group("launcher", "where the planned runs train (default: this host)")
    group.add_argument("--launcher", choices=("local", "slurm"), default="local",
                       help="local: --jobs processes on this host; slurm: one SLURM job per run (submitit)")
    group.add_argument("--slurm-config", type=Path, metavar="YAML",
                       help="the resources as a YAML mapping (partition, gpus_per_run, time_limit, ...); "
                       "--slurm-* flags override it")
    for field, kind in _RESOURCE_FLAGS.items():
        info = SlurmResources.model_fields[field]
        flag = "--slurm-time" if field == "time_limit" else f"--slurm-{field.replace('_', '-')}"
        group.add_argument(flag, dest=f"slurm_{field}", type=kind, default=None,
                           help=f"{info.description or field} (default: {info.default})")
    group.add_argument("--slurm-folder", default=None, help="submitit's job files and logs "
                       "(default: <runs dir>/../slurm-jobs)")
    group.add_argument("--slurm-images-per-second", action="append", default=[], metavar="[MODEL=]N",
                       help="throughput of one run for the plan's hour estimates (repeatable per model)")
    return parser


def launcher_from_args(args: argparse.Namespace) -> Launcher:
    """The validated launcher the options ask for; one-line ``ConfigError`` naming a bad value or flag."""
    flags = {f: getattr(args, f"slurm_{f}", None) for f in _RESOURCE_FLAGS}
    given = {f: v for f, v in flags.items() if v is not None}
    if getattr(args, "launcher", "local") == "local":
        if given or getattr(args, "slurm_config", None) or getattr(args, "slurm_folder", None):
            raise ConfigError("--slurm-* options need --launcher slurm; add it, or drop them")
        return validate(LocalLauncher, {"jobs": getattr(args, "jobs", 1) or 1}, source="--launcher local")
    resources = load_yaml(args.slurm_config) if getattr(args, "slurm_config", None) else {}
    if not isinstance(resources, dict):
        raise ConfigError(f"{args.slurm_config}: expected a mapping of SLURM resources (partition: ..., "
                          "gpus_per_run: ...)")
    spec = {"resources": {**resources, **given}, "folder": getattr(args, "slurm_folder", None)}
    return validate(SlurmLauncher, spec, source="--launcher slurm")


def images_per_second_from_args(args: argparse.Namespace) -> float | dict[str, float] | None:
    """``--slurm-images-per-second`` as ``plan`` takes it: a number, or ``{model: images/s, "*": other}``."""
    values = getattr(args, "slurm_images_per_second", None) or []
    estimate: dict[str, float] = {}
    for value in values:
        model, _, number = value.rpartition("=")
        try:
            estimate[model or "*"] = float(number)
        except ValueError:
            raise ConfigError(f"--slurm-images-per-second {value!r}: write N or MODEL=N, e.g. "
                              "cifar_resnet110=2500") from None
    if list(estimate) == ["*"]:
        return estimate["*"]
    return estimate or None
