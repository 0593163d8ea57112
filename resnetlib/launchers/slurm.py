"""The planned runs as SLURM jobs, through ``submitit`` (issue 23): ``--launcher slurm``.

Each planned run (the deduplicated list of ``run_queue.unique_runs``) is one job; where the device check
measured that several small runs share a GPU profitably, ``runs_per_gpu`` packs that many one-GPU runs into
one job (they train side by side in spawned processes, as ``reproduce --jobs N`` does on one host). A run
that needs several GPUs (``imagenet_gpus_per_run`` for class-folder runs) trains through ``torchrun
--standalone`` inside its job (one node).

Shared file system (see ``lease.py``): the launcher submits each run folder once, and each job holds a
cross-host lease on its folder while it trains, so two jobs (a resubmission whose predecessor still runs on
a hung node, or a second ``reproduce``) never write one folder. A killed job (pre-emption, time limit, node
failure) is resubmitted up to ``max_resubmissions`` times, naming each failure; the new job resumes from
``checkpoints/last.pt`` (``cached_fit``). A resubmission never passes ``force``: it would throw the
checkpoint away. On SLURM's time-limit or pre-emption signal submitit also requeues the job itself
(``TrainJob`` is ``Checkpointable``).

Where the launcher runs: a run's folder name hashes the device kind its config resolves to
(``resnetlib.train.runs.run_key``), so ``reproduce --launcher slurm`` must run where torch sees the same
kind of device as the jobs (for the paper profile, ``device: cuda``, a one-GPU allocation); every job checks
that its folder is the planned one and refuses otherwise (``PlanMismatchError``), so a mismatch costs
seconds, not a GPU-day trained into a folder no notebook reads.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from ..config import StrictModel
from ..run_queue import QueuedRun
from .lease import Lease, lease_path

__all__ = [
    "SlurmResources", "SlurmLauncher", "PlannedJob", "PlanMismatchError", "TrainJob", "plan_jobs",
    "format_plan", "group_runs", "job_parameters", "torchrun_command", "submit_and_wait",
    "time_limit_minutes",
]

_TIME = re.compile(r"^(?:(\d+)-)?(\d+):(\d{2})(?::(\d{2}))?$|^(\d+)$")


def time_limit_minutes(text: str) -> int:
    """SLURM's time formats in minutes: ``MM``, ``HH:MM``, ``HH:MM:SS``, ``D-HH:MM`` or ``D-HH:MM:SS``."""
    match = _TIME.match(text.strip())
    if not match:
        raise ValueError(f"time limit {text!r} is not a SLURM time; write HH:MM:SS, D-HH:MM:SS or minutes")
    days, hours, minutes, seconds, only_minutes = match.groups()
    if only_minutes is not None:
        return int(only_minutes)
    total = int(days or 0) * 1440 + int(hours) * 60 + int(minutes) + math.ceil(int(seconds or 0) / 60)
    return total


class SlurmResources(StrictModel):
    """What each job asks the scheduler for (``--slurm-*`` flags or a ``--slurm-config`` YAML file)."""

    partition: str | None = Field(None, description="SLURM partition; None = the cluster's default")
    account: str | None = Field(None, description="SLURM account to charge")
    qos: str | None = Field(None, description="SLURM quality of service")
    gpus_per_run: int = Field(1, ge=0, description="GPUs of a run whose device is not cpu")
    imagenet_gpus_per_run: int | None = Field(
        None, ge=1, description="GPUs of a class-folder (ImageNet-style) run; > 1 trains through torchrun. "
        "None = gpus_per_run")
    cpus_per_task: int = Field(8, ge=1, description="CPU cores of one job (shared by its packed runs)")
    mem_gb: int | None = Field(None, ge=1, description="memory of one job; None = the partition's default")
    time_limit: str = Field("24:00:00", description="wall-clock limit of one job (SLURM format); a longer "
                            "run is resubmitted and resumes from its checkpoint")
    runs_per_gpu: int = Field(1, ge=1, description="one-GPU runs packed into one job, side by side (only "
                              "where the device check measured that packing pays)")
    max_resubmissions: int = Field(3, ge=0, description="resubmissions of a failed or pre-empted run")

    @field_validator("time_limit")
    @classmethod
    def _slurm_time(cls, value: str) -> str:
        time_limit_minutes(value)
        return value


class SlurmLauncher(StrictModel):
    """``--launcher slurm``: resources, where submitit keeps its job files, and how often to poll."""

    kind: Literal["slurm"] = "slurm"
    resources: SlurmResources = Field(default_factory=SlurmResources)
    folder: str | None = Field(None, description="submitit's job files (logs, pickles); None = "
                               "<runs_dir>/../slurm-jobs")
    cluster: Literal["slurm", "local"] = Field(
        "slurm", description="'local' runs the jobs as local processes (submitit's LocalExecutor: tests)")
    poll_seconds: float = Field(30.0, gt=0, description="seconds between two looks at the jobs' states")
    lease_stale_after: float = Field(300.0, gt=0, description="seconds without heartbeat after which a run "
                                     "folder's lease is considered abandoned")
    lease_beat: float = Field(30.0, gt=0, description="seconds between two heartbeats of a lease")


class PlanMismatchError(RuntimeError):
    """A job computed another run folder than the launcher planned (another device kind or code)."""


# --------------------------------------------------------------------------------------------- planning
def gpus_for(config: Any, resources: SlurmResources) -> int:
    """GPUs one run needs: none for a CPU run, ``imagenet_gpus_per_run`` for class folders, else
    ``gpus_per_run`` (``device: auto`` asks for a GPU)."""
    if str(config.device) == "cpu":
        return 0
    if config.data.name == "imagefolder" and resources.imagenet_gpus_per_run is not None:
        return resources.imagenet_gpus_per_run
    return resources.gpus_per_run


def group_runs(runs: Sequence[tuple[Path, Any]], resources: SlurmResources) -> list[list[tuple[Path, Any]]]:
    """Jobs as groups of runs: one-GPU runs ``runs_per_gpu`` at a time, every other run alone."""
    groups: list[list[tuple[Path, Any]]] = []
    packable: list[tuple[Path, Any]] = []
    for run in runs:
        if gpus_for(run[1], resources) == 1 and resources.runs_per_gpu > 1:
            packable.append(run)
        else:
            groups.append([run])
    size = resources.runs_per_gpu
    groups.extend(packable[i:i + size] for i in range(0, len(packable), size))
    return groups


def job_name(group: Sequence[tuple[Path, Any]]) -> str:
    """The job's name in ``squeue``: its run folder's name, ``+N`` for N more packed runs."""
    return Path(group[0][0]).name + (f"+{len(group) - 1}" if len(group) > 1 else "")


def job_parameters(group: Sequence[tuple[Path, Any]], resources: SlurmResources) -> dict[str, Any]:
    """submitit's parameters of one job (generic ones, and ``slurm_*`` where only SLURM has them)."""
    params: dict[str, Any] = {
        "name": job_name(group),
        "timeout_min": time_limit_minutes(resources.time_limit),
        "gpus_per_node": max(gpus_for(config, resources) for _, config in group),
        "cpus_per_task": resources.cpus_per_task,
        "tasks_per_node": 1,
        "nodes": 1,
        "mem_gb": resources.mem_gb,
        "slurm_partition": resources.partition,
        "slurm_account": resources.account,
        "slurm_qos": resources.qos,
    }
    return {k: v for k, v in params.items() if v is not None}


@dataclass(frozen=True)
class PlannedJob:
    """One job the launcher would submit (``--plan``)."""

    name: str
    runs: tuple[str, ...]
    gpus: int
    cpus: int
    mem_gb: int | None
    time_limit: str
    partition: str | None
    torchrun: bool
    hours: float | None  # estimated training hours, when an images/s estimate was given
    segments: int | None  # jobs of ``time_limit`` it takes (1 + resubmissions that resume)


def _images_per_second(config: Any, estimate: float | dict[str, float] | None) -> float | None:
    """The throughput estimate for ``config``'s net: one number for all, or per model name."""
    if isinstance(estimate, dict):
        return estimate.get(config.model.name, estimate.get("*"))
    return estimate


def estimated_hours(config: Any, images_per_second: float | None) -> float | None:
    """Training hours of one run: iterations x batch / images per second (evaluations not counted)."""
    if not images_per_second:
        return None
    return config.optim.iterations * config.optim.batch_size / images_per_second / 3600


def plan_jobs(runs: Sequence[tuple[Path, Any]], resources: SlurmResources,
              images_per_second: float | dict[str, float] | None = None) -> list[PlannedJob]:
    """The jobs ``submit_and_wait`` would submit for ``runs`` (``(run folder, config)`` pairs), with their
    resources and, given images/s per run (one number, or ``{model name: images/s, "*": default}``), the
    estimated hours (a packed job lasts as long as its longest run) and how many time-limit segments that
    is."""
    planned = []
    limit_hours = time_limit_minutes(resources.time_limit) / 60
    for group in group_runs(runs, resources):
        params = job_parameters(group, resources)
        hours = [estimated_hours(c, _images_per_second(c, images_per_second)) for _, c in group]
        longest = None if None in hours else max(hours)
        planned.append(PlannedJob(
            name=params["name"], runs=tuple(Path(d).name for d, _ in group), gpus=params["gpus_per_node"],
            cpus=resources.cpus_per_task, mem_gb=resources.mem_gb, time_limit=resources.time_limit,
            partition=resources.partition, torchrun=params["gpus_per_node"] > 1,
            hours=None if longest is None else round(longest, 2),
            segments=None if longest is None else max(1, math.ceil(longest / limit_hours)),
        ))
    return planned


def format_plan(jobs: Sequence[PlannedJob], max_resubmissions: int | None = None) -> str:
    """The plan as lines a person reads: one per job, then the totals (jobs, GPUs, GPU-hours)."""
    lines = []
    for job in jobs:
        hours = "" if job.hours is None else f"  ~{job.hours:.1f} h"
        if job.segments and job.segments > 1:
            hours += f" ({job.segments} segments of {job.time_limit})"
        lines.append(f"{job.name}  gpus={job.gpus} cpus={job.cpus}"
                     + (f" mem={job.mem_gb}G" if job.mem_gb else "") + f" time={job.time_limit}"
                     + (f" partition={job.partition}" if job.partition else "")
                     + ("  torchrun" if job.torchrun else "") + hours)
    total = f"{len(jobs)} job(s), {sum(j.gpus for j in jobs)} GPU(s) in all"
    if jobs and all(j.hours is not None for j in jobs):
        total += (f", ~{sum(j.hours for j in jobs):.1f} job-hours, "
                  f"~{sum(j.hours * j.gpus for j in jobs):.1f} GPU-hours")
    lines.append(total)
    too_long = [j.name for j in jobs if j.segments and max_resubmissions is not None
                and j.segments - 1 > max_resubmissions]
    if too_long:
        lines.append(f"warning: {len(too_long)} job(s) need more segments than max_resubmissions allows "
                     f"(first: {too_long[0]}); raise the time limit or --slurm-max-resubmissions")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- in the job
def torchrun_command(params_file: str | Path, run_dir: str | Path, gpus: int, resume: bool) -> list[str]:
    """``torchrun --standalone --nproc_per_node=G -m resnetlib train ...`` for one multi-GPU run on one node.
    (Built and unit-tested here; no multi-GPU node was available to run it.)"""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}",
               "-m", "resnetlib", "train", "--params", str(params_file), "--run-dir", str(run_dir)]
    return command + (["--resume"] if resume else [])


def _torchrun(config: Any, run_dir: Path, gpus: int, force: bool, threads: int) -> QueuedRun:
    """Train one run with DDP through torchrun: the cache's rule (reuse, force moves aside, resume) applied
    here, not through ``cached_fit``, because rank 0's ``fit`` takes the folder's flock itself and a parent
    holding it would refuse its own child."""
    import yaml

    started = time.time()
    if (run_dir / "summary.json").exists() and not force:
        return QueuedRun(str(run_dir), 0.0, pid=os.getpid(), started=started, ended=time.time())
    if force and run_dir.exists():
        run_dir.rename(run_dir.with_name(f"{run_dir.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}"))
    with tempfile.TemporaryDirectory(prefix="resnetlib-torchrun-") as tmp:
        params = Path(tmp) / "config.yaml"
        params.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
        resume = (run_dir / "checkpoints" / "last.pt").exists()
        env = {**os.environ, "OMP_NUM_THREADS": str(max(1, threads // gpus))}
        done = subprocess.run(torchrun_command(params, run_dir, gpus, resume), env=env)
    if done.returncode != 0:
        raise RuntimeError(f"torchrun exited with status {done.returncode}; see the job's log")
    ended = time.time()
    return QueuedRun(str(run_dir), round(ended - started, 1), pid=os.getpid(), started=started, ended=ended)


def _one_line(exc: BaseException) -> str:
    """``Type: first line`` of an exception, as the run queue reports its failures."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def train_planned(spec: dict[str, Any], force: bool, lease: dict[str, float]) -> QueuedRun:
    """Train one planned run inside a job: check its folder is the planned one, hold its lease, train (in
    this process, or through torchrun for several GPUs). Errors come back as ``QueuedRun.error``."""
    from ..run_queue import _train_one, threads_per_job
    from ..train import TrainConfig
    from ..train.runs import run_dir_for

    try:
        config = TrainConfig.model_validate(spec["config"])
        run_dir = run_dir_for(config, spec["runs_dir"])
        if run_dir.name != Path(spec["run_dir"]).name:
            raise PlanMismatchError(
                f"this job's run folder is {run_dir.name}, the launcher planned {Path(spec['run_dir']).name}"
                ": "
                "the job resolves another device kind or runs other code; run reproduce where torch sees the "
                "jobs' device kind, from the same checkout")
        threads = threads_per_job(spec["packed"], str(config.device), cores=spec["cpus"])
        with Lease(lease_path(run_dir), stale_after=lease["stale_after"], beat=lease["beat"]):
            if spec["gpus"] > 1:
                return _torchrun(config, run_dir, spec["gpus"], force, threads)
            job = config.model_copy(update={"threads": threads}).model_dump(mode="json")
            return _train_one(job, spec["runs_dir"], force)
    except Exception as exc:  # reported per run; the launcher decides whether to resubmit
        return QueuedRun(spec["run_dir"], 0.0, _one_line(exc), pid=os.getpid())


try:  # a job requeued by SLURM on its time-limit / pre-emption signal calls TrainJob.checkpoint
    from submitit.helpers import Checkpointable, DelayedSubmission
except ImportError:  # pragma: no cover - submitit is a dependency; the planner works without it
    Checkpointable, DelayedSubmission = object, None


class TrainJob(Checkpointable):
    """The callable of one job: train its runs (side by side when packed) and return their ``QueuedRun``."""

    def __call__(self, specs: list[dict[str, Any]], force: bool, lease: dict[str, float]) -> list[QueuedRun]:
        if len(specs) == 1:
            return [train_planned(specs[0], force, lease)]
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=len(specs), mp_context=context) as pool:
            futures = [pool.submit(train_planned, spec, force, lease) for spec in specs]
            return [f.result() for f in futures]

    def checkpoint(self, specs: list[dict[str, Any]], force: bool, lease: dict[str, float]):
        """Requeue with the same runs, never with ``force``: the requeued job resumes from the checkpoints."""
        return DelayedSubmission(self, specs, False, lease)


# --------------------------------------------------------------------------------------------- submitting
#: Errors a resubmission would only repeat (deterministic): reported at once, not resubmitted.
NOT_RETRIED = ("PlanMismatchError", "ConfigError", "NonFiniteLossError", "CheckpointError", "RunFolderError")
#: SLURM states of a job that has a node.
RUNNING_STATES = ("RUNNING", "COMPLETING")


def _specs(group: Sequence[tuple[Path, Any]], runs_dir: Path,
           resources: SlurmResources) -> list[dict[str, Any]]:
    """What the job needs to know of each of its runs (plain data: it is pickled to the job; absolute paths:
    the job may start in another folder)."""
    return [{"run_dir": str(run_dir.resolve()), "config": config.model_dump(mode="json"),
             "runs_dir": str(runs_dir.resolve()),
             "gpus": gpus_for(config, resources), "cpus": resources.cpus_per_task, "packed": len(group)}
            for run_dir, config in group]


def _failure(job: Any, exc: BaseException) -> str:
    """One line naming a failed job: its id, its scheduler state and the error's last meaningful line."""
    text = str(exc)
    blocks = text.split("----------------------")
    body = blocks[1] if len(blocks) >= 3 else text  # FailedJobError: the traceback between the rules
    lines = [line.strip() for line in body.strip().splitlines() if line.strip()]
    reason = (lines[-1] if len(blocks) >= 3 else lines[0]) if lines else type(exc).__name__
    try:
        state = job.state
    except Exception:  # the scheduler could not be asked; the reason still names the failure
        state = "UNKNOWN"
    return f"job {job.job_id} {state}: {reason[:300]}"


def _executor(launcher: SlurmLauncher, runs_dir: Path):
    """submitit's AutoExecutor for ``launcher.cluster``, keeping its files under ``launcher.folder``."""
    import submitit

    folder = Path(launcher.folder) if launcher.folder else runs_dir.resolve().parent / "slurm-jobs"
    return submitit.AutoExecutor(folder=folder / "%j", cluster=launcher.cluster)


@dataclass
class _Tracker:
    """Where every run stands: its attempts, its final outcome, the live jobs and the last progress line."""

    total: int
    outcomes: dict[str, QueuedRun]
    attempts: dict[str, int]
    active: dict[Any, list[tuple[Path, Any]]]
    last_line: str = ""

    def line(self) -> str:
        failed = sum(1 for o in self.outcomes.values() if o.error)
        running = sum(len(g) for job, g in self.active.items() if _state(job) in RUNNING_STATES)
        queued = sum(len(g) for g in self.active.values()) - running
        return (f"slurm: {len(self.outcomes) - failed}/{self.total} done, {running} running, "
                f"{failed} failed, {queued} queued")


def _state(job: Any) -> str:
    """The job's scheduler state, ``UNKNOWN`` where it cannot be read right now."""
    try:
        return str(job.state)
    except Exception:
        return "UNKNOWN"


def submit_and_wait(runs: Sequence[tuple[Path, Any]], runs_dir: str | Path, launcher: SlurmLauncher, *,
                    force: bool = False, say: Callable[[str], None] = print,
                    on_poll: Callable[[dict], None] | None = None) -> list[QueuedRun]:
    """Submit one job per group of ``runs``, wait for all with a progress line per change, resubmit failed
    or pre-empted runs (without ``force``) up to ``max_resubmissions`` naming each failure, and return one
    ``QueuedRun`` per run in the order of ``runs``. ``on_poll`` (tests) sees the live jobs at every look."""
    runs_dir, resources = Path(runs_dir), launcher.resources
    executor = _executor(launcher, runs_dir)
    lease = {"stale_after": launcher.lease_stale_after, "beat": launcher.lease_beat}
    track = _Tracker(len(runs), {}, {str(d): 0 for d, _ in runs}, {})

    def submit(group: list[tuple[Path, Any]], first: bool) -> None:
        executor.update_parameters(**job_parameters(group, resources))
        job = executor.submit(TrainJob(), _specs(group, runs_dir, resources), force and first, lease)
        track.active[job] = group

    say(f"slurm: submitting {len(runs)} run(s) -> {runs_dir} (job files: {executor.folder.parent})")
    for group in group_runs(runs, resources):
        submit(group, first=True)
    while track.active:
        if on_poll is not None:
            on_poll(dict(track.active))
        for job in [j for j in track.active if j.done()]:
            for run_dir, config, outcome in _collect(job, track.active.pop(job)):
                _settle(track, run_dir, config, outcome, resources, say, lambda g: submit(g, first=False))
        line = track.line()
        if line != track.last_line:
            say(line)
            track.last_line = line
        if track.active:
            time.sleep(launcher.poll_seconds)
    return [track.outcomes[str(d)] for d, _ in runs]


def _collect(job: Any, group: list[tuple[Path, Any]]) -> list[tuple[Path, Any, QueuedRun]]:
    """Each run of a finished job with its outcome; a job that died takes its failure to all its runs."""
    exc = job.exception()
    if exc is not None:
        reason = _failure(job, exc)
        return [(d, c, QueuedRun(str(d), 0.0, reason)) for d, c in group]
    results = {Path(r.run_dir).name: r for r in job.result()}
    return [(d, c, results[Path(d).name]) for d, c in group]


def _settle(track: _Tracker, run_dir: Path, config: Any, outcome: QueuedRun, resources: SlurmResources,
            say: Callable[[str], None], resubmit: Callable[[list], None]) -> None:
    """Record a run's outcome, or resubmit it alone when it failed for a reason a new job may not repeat."""
    key = str(run_dir)
    if outcome.error is None:
        track.outcomes[key] = outcome
        return
    retriable = not outcome.error.split(":")[0].endswith(NOT_RETRIED)
    if retriable and track.attempts[key] < resources.max_resubmissions:
        track.attempts[key] += 1
        say(f"slurm: {run_dir.name} failed ({outcome.error}); resubmitting "
            f"({track.attempts[key]}/{resources.max_resubmissions}), it resumes from its last checkpoint")
        resubmit([(run_dir, config)])
        return
    why = "not resubmitted: a new job would fail the same way" if not retriable else \
        f"after {track.attempts[key]} resubmission(s)"
    say(f"slurm: {run_dir.name} FAILED ({why}): {outcome.error}")
    track.outcomes[key] = QueuedRun(key, outcome.seconds, outcome.error, pid=outcome.pid)
