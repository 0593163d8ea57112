"""Train several runs at once, each in its own process (``resnetlib reproduce --jobs N``).

A CIFAR-style net uses a small share of a modern GPU and scales poorly across CPU threads (Sec. 4.2's
nets are 0.27M-1.7M parameters), so the paper profile's 5 depths x plain/residual x seeds train faster
side by side than one after another. The queue trains the deduplicated union of the experiments'
``planned_runs`` in a pool of ``jobs`` processes before the notebooks run; the notebooks then find every
run in the one run cache (``resnetlib.train.runs``).

Consistency: the parent deduplicates by run folder, so no two of its workers train one configuration;
``cached_fit`` takes the run folder's lock (issue 11: ``RunLock(run_dir, wait=True)``), so a run that another
process (a second ``reproduce``) is training is waited for and then loaded, never trained twice.

Threads: on a CPU each worker gets ``cores // jobs`` threads (at least one); on CUDA the workers share
the card and each keeps one thread for its Python loop (``threads`` is presentation-only, so it does
not change the run's key). Workers are started with ``spawn``: a CUDA context does not survive ``fork``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["QueuedRun", "train_queue", "unique_runs", "threads_per_job"]


@dataclass(frozen=True)
class QueuedRun:
    """What happened to one queued configuration (its folder, seconds in the worker, error if any)."""

    run_dir: str
    seconds: float
    error: str | None = None
    pid: int | None = None  # the worker process (tests check that two runs trained at once)
    started: float | None = None  # time.time() in the worker
    ended: float | None = None


def threads_per_job(jobs: int, device: str, cores: int | None = None) -> int:
    """Compute threads each of ``jobs`` workers gets: ``cores // jobs`` on a CPU, 1 on a GPU."""
    from .devices import resolve_device

    kind = device.split(":")[0]
    if (resolve_device(device).type if kind == "auto" else kind) != "cpu":
        return 1
    cores = cores or _cores()
    return max(1, cores // max(1, jobs))


def _cores() -> int:
    """The cores this process may run on (its affinity where the OS reports one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def unique_runs(configs: Iterable[Any], runs_dir: str | Path) -> list[tuple[Path, Any]]:
    """``(run folder, config)`` once per run folder, in first-seen order: one worker per configuration."""
    from .train.runs import run_dir_for

    seen: dict[Path, Any] = {}
    for config in configs:
        seen.setdefault(run_dir_for(config, runs_dir), config)
    return list(seen.items())


def _train_one(config_json: dict[str, Any], runs_dir: str, force: bool) -> QueuedRun:
    """Worker: ``cached_fit`` one configuration (waits on the run's lock when another process holds it)."""
    from .train import TrainConfig, cached_fit
    from .train.runs import run_dir_for

    config = TrainConfig.model_validate(config_json)
    cached = (run_dir_for(config, runs_dir) / "summary.json").exists()
    started, cpu_before = time.time(), _cpu_seconds()
    result = cached_fit(config, runs_dir, force=force)
    ended = time.time()
    if force or not cached:  # trained (or resumed) here, not loaded from the cache
        add_cost(Path(result.run_dir), wall_s=ended - started, cpu_s=_cpu_seconds() - cpu_before,
                 threads=config.threads)
    return QueuedRun(str(result.run_dir), round(ended - started, 1), pid=os.getpid(), started=started, ended=ended)


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process so far, all its threads together."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


#: Beside a run's summary.json: what training it cost in the run queue, summed over resumed sessions.
COST_FILE = "cost.json"


def add_cost(run_dir: Path, *, wall_s: float, cpu_s: float, threads: int | None) -> None:
    """Add one worker session's wall and CPU seconds to ``run_dir/cost.json``. CPU seconds are what the run
    cost on a shared machine (wall seconds x threads overstates it when other work competes for the cores)."""
    path = run_dir / COST_FILE
    cost = json.loads(path.read_text()) if path.is_file() else {"wall_seconds": 0.0, "cpu_seconds": 0.0, "sessions": 0}
    cost = {"wall_seconds": round(cost["wall_seconds"] + wall_s, 1), "cpu_seconds": round(cost["cpu_seconds"] + cpu_s, 1),
            "sessions": cost["sessions"] + 1, "threads": threads, "load_average_at_end": round(os.getloadavg()[0], 2)}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cost, indent=1))
    tmp.replace(path)


def _submit_all(pool: ProcessPoolExecutor, runs: Sequence[tuple[Path, Any]], runs_dir: Path, force: bool,
                threads: Callable[[Any], int]) -> dict:
    """One future per run; each config carries its worker's thread count."""
    futures = {}
    for run_dir, config in runs:
        job = config.model_copy(update={"threads": threads(config)}).model_dump(mode="json")
        futures[pool.submit(_train_one, job, str(runs_dir), force)] = run_dir
    return futures


def train_queue(configs: Iterable[Any], runs_dir: str | Path, jobs: int, *, force: bool = False,
                say: Callable[[str], None] = print) -> list[QueuedRun]:
    """Train every distinct configuration with up to ``jobs`` at once; a failed run is reported, not raised
    (its notebook will train it again and fail visibly there)."""
    runs_dir = Path(runs_dir)
    runs = unique_runs(configs, runs_dir)
    if not runs:
        return []
    jobs = max(1, min(jobs, len(runs)))
    say(f"run queue: {len(runs)} run(s), {jobs} at a time -> {runs_dir}")
    context = multiprocessing.get_context("spawn")
    done: list[QueuedRun] = []
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = _submit_all(pool, runs, runs_dir, force, lambda c: threads_per_job(jobs, str(c.device)))
        for future in as_completed(futures):
            done.append(_outcome(future, futures[future]))
            say(f"run queue: [{len(done)}/{len(runs)}] {Path(done[-1].run_dir).name}  {done[-1].seconds:.1f}s"
                + (f"  FAILED: {done[-1].error}" if done[-1].error else ""))
    return done


def _outcome(future, run_dir: Path) -> QueuedRun:
    """The worker's result, or the error it raised (one line)."""
    try:
        return future.result()
    except Exception as exc:
        return QueuedRun(str(run_dir), 0.0, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
