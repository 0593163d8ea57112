"""The rounds of one model: fit() runs with ``eval_every = iters``; after each of its intervals its
``on_evaluation`` callback runs ``iters`` timed steps of every other method (rotating their order), so
round r is [other methods' chunk r, fit's interval r + 1] back to back. fit's first interval is its
warm-up and is discarded; the loop restarts its interval clock after the callback, so the other
methods' time is never counted as the loop's."""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from resnetlib.train import TrainConfig, fit

from .bare_step import BareRunner, CudaGraphRunner, Runner
from .conventional import ConventionalRunner
from .settings import LR, MOMENTUM, WEIGHT_DECAY, Settings
from .summary import summarise
from .timing import Timing, cpu_share, loadavg, sync

#: Methods whose failure ends the benchmark; the others (CUDA graphs, ...) are optional.
REQUIRED = ("bare", "conventional")


def bench_model(s: Settings, name: str, data) -> dict[str, Any]:
    """Interleave the methods of model ``name``; the summary of its rounds (see the module docstring)."""
    errors: dict[str, str] = {}
    runners = make_runners(s, name, data, errors)
    try:
        iters = chunk_steps(s, warm_up(s, runners))
        rounds = Interleaver(s, name, runners, errors, iters)
        with tempfile.TemporaryDirectory(prefix="bench-fit-") as tmp:
            fit(fit_config(s, name, iters), Path(tmp) / "run", on_evaluation=rounds)
    finally:
        for runner in runners.values():
            runner.close()
    return summarise(s, rounds.runs, errors, iters)


def make_runners(s: Settings, name: str, data, errors: dict[str, str]) -> dict[str, Runner]:
    makers = _runner_makers(s, name, data)
    runners = {}
    for key, make in makers.items():
        runner = attempt(key, name, errors, make)
        if runner is not None:
            runners[key] = runner
    return runners


def _runner_makers(s: Settings, name: str, data) -> dict[str, Callable[[], Runner]]:
    images_hwc = data.train.images.permute(0, 2, 3, 1).contiguous().numpy()  # torchvision's CIFAR10 layout
    labels = data.train.labels.tolist()
    makers: dict[str, Callable[[], Runner]] = {
        "bare": lambda: BareRunner(s, name),
        "conventional": lambda: ConventionalRunner(s, name, images_hwc, labels, s.amp, s.workers, s.threads),
    }
    if s.amp != "off":
        makers["conventional_fp32"] = lambda: ConventionalRunner(
            s, name, images_hwc, labels, "off", s.workers, s.threads)
    if s.worker_variant:
        makers["conventional_1w1t"] = lambda: ConventionalRunner(s, name, images_hwc, labels, s.amp, 1, 1)
    if s.cuda_graphs:
        makers["bare_cuda_graph"] = lambda: CudaGraphRunner(s, name)
    return makers


def attempt(key: str, name: str, errors: dict[str, str], action: Callable[[], Any]) -> Any:
    """``action()``; an optional method's failure is recorded in ``errors`` (None returned), not raised."""
    try:
        return action()
    except Exception as exc:  # noqa: BLE001  an optional path (CUDA graphs) must not sink the run
        if key in REQUIRED:
            raise
        errors[key] = f"{type(exc).__name__}: {exc}"
        print(f"  [{name}] {key}: FAILED ({errors[key]})", flush=True)
        return None


def warm_up(s: Settings, runners: dict[str, Runner]) -> float | None:
    """Untimed steps of the comparison methods; the last bare step's seconds (sizes the chunks)."""
    step_s = None
    for key, runner in runners.items():
        if key == "bare":
            for _ in range(s.warmup):
                step_s = runner.run(1).seconds
        elif s.warmup:
            runner.run(s.warmup)
    return step_s


def chunk_steps(s: Settings, step_s: float | None) -> int:
    """--iters, or as many steps as last about --seconds (1 to 500)."""
    return s.iters or max(1, min(500, math.ceil(s.seconds / max(step_s or 1e-3, 1e-4))))


def fit_config(s: Settings, name: str, iters: int) -> TrainConfig:
    """(2) ours: the same SGD on synthetic data, one evaluation (of 1 test image) per chunk."""
    total = iters * (1 + s.rounds)
    return TrainConfig.model_validate({
        "model": {"name": name},
        "data": {"name": "synthetic", "train_size": s.train_size, "test_size": 1, "augment": True},
        "optim": {"batch_size": s.batch, "lr": LR, "momentum": MOMENTUM, "weight_decay": WEIGHT_DECAY,
                  "iterations": total, "milestones": []},
        "device": str(s.device), "amp": s.amp, "compile": s.compile, "threads": s.threads,
        "channels_last": s.channels_last, "eval_every": iters, "checkpoint_every": total,
        "eval_batch_size": 1, "log": "none",
    })


class Interleaver:
    """fit's ``on_evaluation`` callback: records fit's interval k (k >= 1; 0 is the warm-up), then runs
    chunk k of every other method; ``runs`` holds every method's timed chunks."""

    def __init__(self, s: Settings, name: str, runners: dict[str, Runner], errors: dict[str, str],
                 iters: int) -> None:
        self.s, self.name, self.runners, self.errors, self.iters = s, name, runners, errors, iters
        self.runs: dict[str, list[dict[str, Any]]] = {"ours": [], **{k: [] for k in runners}}
        self.intervals = 0
        self.resumed = (0.0, 0.0)  # wall / CPU clock when the callback hands control back to fit

    def __call__(self, row: dict[str, float]) -> None:
        sync(self.s.device)
        now = (time.perf_counter(), time.process_time())
        k, self.intervals = self.intervals, self.intervals + 1
        if k >= 1:
            self._record(k - 1, "ours", self._ours(row, now))
        if k < self.s.rounds:
            self._run_others(k)
        self.resumed = (time.perf_counter(), time.process_time())

    def _ours(self, row: dict[str, float], now: tuple[float, float]) -> Timing:
        """fit's interval: the loop's own images/s (CPU) or the synchronised wall time (CUDA)."""
        s = self.s
        wall = now[0] - self.resumed[0]
        share = cpu_share(now[1] - self.resumed[1], wall, s.threads or torch.get_num_threads())
        loop_img_s = float(row["images_per_s"])
        wall_img_s = self.iters * s.batch / wall
        primary = wall_img_s if s.device.type == "cuda" else loop_img_s
        extra = {"loop_reported_img_s": loop_img_s, "wall_img_s": round(wall_img_s, 2)}
        return Timing(primary, wall, share, extra)

    def _run_others(self, k: int) -> None:
        keys = list(self.runners)
        for key in keys[k % len(keys):] + keys[: k % len(keys)]:
            if key in self.errors:
                continue
            timing = attempt(key, self.name, self.errors, lambda key=key: self.runners[key].run(self.iters))
            if timing is not None:
                self._record(k, key, timing)

    def _record(self, r: int, key: str, t: Timing) -> None:
        s, load = self.s, loadavg()
        self.runs[key].append({"round": r, "img_s": round(t.img_s, 2), "seconds": round(t.seconds, 2),
                               "cpu_share": t.cpu_share, "loadavg_1min": load, **t.extra})
        share = f", CPU share {t.cpu_share:.2f}" if s.device.type == "cpu" else ""
        print(f"  [{self.name}] round {r + 1}/{s.rounds} {key:<18} {t.img_s:9.1f} img/s "
              f"({self.iters} steps in {t.seconds:.1f}s{share}, load {load})", flush=True)
