#!/usr/bin/env python
"""Training throughput of resnetlib's loop against a bare step and a conventional DataLoader pipeline.

Three measurements per model, side by side in one process (batch 128 by default):

  bare          forward / backward / SGD step on device-resident random tensors, the same batch every
                step: the ceiling for this model on this device (no data, no augmentation, no metrics).
  ours          ``resnetlib.train.fit`` on the 3x32x32 ``synthetic`` data set with augmentation on
                (DeviceBatches: uint8 data on the device, batched pad/crop/flip as tensor ops), with
                ``eval_every = iters`` and ``iterations = iters x (1 + rounds)``. The first interval is
                the warm-up and is discarded; for the others the loop's own ``images_per_s`` (which
                excludes evaluation time) is the result. The test set is 1 image and the only
                checkpoint is written after the last interval. On CUDA the loop stamps an interval's
                end without a device synchronisation, so there the synchronised wall time from the
                end of one ``on_evaluation`` callback to the start of the next is the result (it
                includes the 1-image evaluation); both numbers are in the JSON.
  conventional  what users usually write: a torchvision-style CIFAR data set over uint8 HWC numpy
                images (the same synthetic images) -> ``DataLoader(shuffle=True, num_workers=W)`` ->
                PIL ``RandomCrop(32, padding=4)`` + ``RandomHorizontalFlip`` + ``ToTensor`` +
                ``Normalize``, then the same step as ``bare``. On a CPU the loader workers would compete
                with the compute threads for the same cores, so the default is ``num_workers=0`` with
                ``--threads`` compute threads; ``--worker-variant`` adds a labelled "1 worker + 1
                compute thread" row-mate. On CUDA the default is min(8, cores) workers and pinned
                memory.

Noise control: the measurements of a model are interleaved in ``--rounds`` rounds of ``--iters`` steps
each. fit's ``on_evaluation`` callback, called after each of its intervals, runs the next chunk of every
other method (in an order that rotates each round); the loop restarts its interval clock after the
callback, so that time is never counted as the loop's. Load from other processes thus hits all methods
alike; the table gives the median images/s over rounds and the median of the per-round (paired)
ratios. Every chunk also records its CPU share (process CPU time / (wall time x threads)), a direct
reading of how much of the machine the benchmark actually got.

With ``--amp bf16`` (CPU autocast, opt-in) the run also measures the conventional pipeline in fp32,
the baseline of the issue's bf16 target. Targets (2-core CPU, from the issue):
  fp32: ours >= 0.95 x bare and ours >= 1.1 x conventional;  bf16: ours >= 1.5 x conventional-fp32.

Memory: peak memory of one training step of ``--mem-model`` (default ResNet-1202) with and without
activation checkpointing, each variant in a fresh subprocess. On CUDA: torch.cuda.max_memory_allocated.
On CPU: (a) bytes of the tensors autograd saves for backward (``saved_tensors_hooks``, deduplicated
by storage), measured at ``--mem-batch`` and extrapolated linearly to ``--batch`` from a second
batch-1 forward; (b) the growth of the process's peak RSS over one full step: the kernel's high-water
mark (VmHWM) is reset through /proc/self/clear_refs just before the step, because ``ru_maxrss`` of a
fresh child starts at the parent's RSS (it survives fork/exec) and would hide the step's peak; the
``ru_maxrss`` readings are kept in the JSON.

    python benchmarks/train_throughput.py                       # fp32, ResNet-20/56/110, CPU
    python benchmarks/train_throughput.py --amp bf16            # + the fp32 conventional baseline
    python benchmarks/train_throughput.py --quick               # a short smoke run
    python benchmarks/train_throughput.py --device cuda --compile --cuda-graphs

Results: ``benchmarks/results/train_throughput-<host or GPU>[-<amp>][-quick].json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_MODELS = "cifar_resnet20,cifar_resnet56,cifar_resnet110"
QUICK_MODELS = "cifar_resnet20"
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
LR, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 1e-4  # the same optimiser in all three measurements
MEM_MARK = "MEMRESULT "

TARGETS = {  # (amp, numerator, denominator) -> threshold; the targets on a 2-core CPU
    "off": [("ours", "bare", 0.95), ("ours", "conventional", 1.1)],
    "bf16": [("ours", "conventional_fp32", 1.5)],
}


# ------------------------------------------------------------------------------------------- settings
@dataclass
class Settings:
    models: list[str]
    device: torch.device
    amp: str
    batch: int
    iters: int | None  # None: chosen from the first warm-up steps (--seconds per measurement)
    warmup: int
    rounds: int
    seconds: float
    threads: int | None
    workers: int
    worker_variant: bool
    train_size: int
    compile: bool
    cuda_graphs: bool
    channels_last: bool  # (1) bare and (2) ours
    conventional_channels_last: bool  # (3): users' pipelines usually run NCHW
    quick: bool


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--models", default=None, help=f"comma-separated model names (default {DEFAULT_MODELS}; "
                   f"--quick: {QUICK_MODELS})")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--iters", type=int, default=None,
                   help="timed steps per method and round, also fit's eval_every (default: sized from the bare "
                        "warm-up so that one chunk lasts about --seconds)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps of each comparison method before the "
                   "rounds (default 2; --quick 1); fit's warm-up is its first interval of --iters steps")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds per model (default 3; --quick 1)")
    p.add_argument("--seconds", type=float, default=10.0, help="target length of one timed chunk when "
                   "--iters is not given")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default 2 on CPU, "
                   "torch's default on CUDA)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--amp", choices=["off", "bf16", "fp16"], default=None,
                   help="autocast dtype (default: off on CPU, bf16 on CUDA)")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers of the conventional pipeline "
                   "(default 0 on CPU, min(8, cores) on CUDA)")
    p.add_argument("--worker-variant", action="store_true",
                   help="CPU: also measure the conventional pipeline with 1 loader worker + 1 compute thread")
    p.add_argument("--train-size", type=int, default=None, help="synthetic training images (default 10000; "
                   "--quick 512)")
    p.add_argument("--channels-last", choices=["auto", "on", "off"], default="auto",
                   help="NHWC model and inputs in (1) bare and (2) ours (auto: the loop's default, on)")
    p.add_argument("--conventional-channels-last", action="store_true",
                   help="NHWC in (3) too (default off: the conventional pipeline as users write it, NCHW)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model in every measurement")
    p.add_argument("--cuda-graphs", action="store_true", help="CUDA: also measure the bare step captured in a "
                   "CUDA graph (whole-step capture)")
    p.add_argument("--quick", action="store_true", help="a short run: 1 round, 1 warm-up + 2 timed steps, "
                   "small data, ResNet-20 only, memory at batch 2")
    p.add_argument("--skip-memory", action="store_true", help="skip the activation-checkpointing memory check")
    p.add_argument("--mem-model", default="cifar_resnet1202")
    p.add_argument("--mem-batch", type=int, default=None, help="batch of the memory check (default: --batch on "
                   "CUDA, 8 on CPU where a ResNet-1202 step at batch 128 takes minutes; --quick 2)")
    p.add_argument("--mem-timeout", type=float, default=1800.0, help="seconds allowed per memory subprocess")
    p.add_argument("--out", default=str(RESULTS_DIR), help="folder for the JSON and markdown results")
    p.add_argument("--tag", default=None, help="file name tag (default: host name on CPU, GPU name on CUDA, "
                   "plus -<amp> and -quick)")
    p.add_argument("--mem-child", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def resolve_settings(a: argparse.Namespace) -> Settings:
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device")
    amp = a.amp or ("bf16" if device.type == "cuda" else "off")
    if amp == "fp16" and device.type != "cuda":
        raise SystemExit("--amp fp16 needs CUDA; use --amp bf16 on CPU")
    models = [m.strip() for m in (a.models or (QUICK_MODELS if a.quick else DEFAULT_MODELS)).split(",") if m.strip()]
    warmup = a.warmup if a.warmup is not None else (1 if a.quick else 2)
    iters = a.iters if a.iters is not None else (2 if a.quick else None)
    rounds = a.rounds if a.rounds is not None else (1 if a.quick else 3)
    train_size = a.train_size if a.train_size is not None else (512 if a.quick else 10_000)
    threads = a.threads if a.threads is not None else (2 if device.type == "cpu" else None)
    workers = a.workers if a.workers is not None else (0 if device.type == "cpu" else min(8, os.cpu_count() or 1))
    for name, value in (("batch", a.batch), ("warmup", warmup), ("rounds", rounds)):
        if value < 1:
            raise SystemExit(f"--{name} must be >= 1")
    if iters is not None and iters < 1:
        raise SystemExit("--iters must be >= 1")
    if train_size < a.batch:
        raise SystemExit(f"--train-size {train_size} is smaller than --batch {a.batch}")
    return Settings(
        models=models, device=device, amp=amp, batch=a.batch, iters=iters, warmup=warmup, rounds=rounds,
        seconds=a.seconds, threads=threads, workers=workers,
        worker_variant=a.worker_variant and device.type == "cpu", train_size=train_size, compile=a.compile,
        cuda_graphs=a.cuda_graphs and device.type == "cuda",
        channels_last=a.channels_last != "off", conventional_channels_last=a.conventional_channels_last,
        quick=a.quick,
    )


# ------------------------------------------------------------------------------------------ utilities
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast_for(amp: str, device: torch.device, cache_enabled: bool = True) -> Callable[[], Any]:
    if amp == "off":
        return contextlib.nullcontext
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return lambda: torch.autocast(device.type, dtype=dtype, cache_enabled=cache_enabled)


@contextlib.contextmanager
def num_threads(n: int | None):
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} logical cores"


def file_tag(s: Settings, tag: str | None) -> str:
    if tag is None:
        tag = torch.cuda.get_device_name(s.device) if s.device.type == "cuda" else socket.gethostname()
        if s.amp != "off":
            tag += f"-{s.amp}"
        if s.quick:
            tag += "-quick"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", tag).strip("-") or "unknown"


@dataclass
class Timing:
    img_s: float
    seconds: float
    cpu_share: float | None  # process CPU time / (wall x threads); < 1 means other work held the cores
    extra: dict[str, Any]


class CpuClock:
    """Wall time and this process's CPU time (all threads) over a block."""

    def __init__(self, threads: int | None) -> None:
        self.threads = threads or torch.get_num_threads()

    def __enter__(self) -> CpuClock:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.wall0
        self.cpu = time.process_time() - self.cpu0

    @property
    def share(self) -> float:
        return round(self.cpu / max(self.wall * self.threads, 1e-9), 3)


# -------------------------------------------------------------------------------------- training step
def new_model(s: Settings, name: str, channels_last: bool, *, compile: bool | None = None, **options) -> nn.Module:
    from resnetlib import models

    model = models.build(name, **options).to(s.device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    return torch.compile(model) if (s.compile if compile is None else compile) else model


def new_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)


class Trainer:
    """Model + SGD + one forward/backward/step, as resnetlib's loop does it (loss in fp32, fp16 scaler)."""

    def __init__(self, s: Settings, name: str, amp: str, channels_last: bool) -> None:
        self.s, self.amp = s, amp
        self.model = new_model(s, name, channels_last)
        self.optimizer = new_optimizer(self.model)
        self.autocast = autocast_for(amp, s.device)
        self.scaler = torch.amp.GradScaler(s.device.type) if amp == "fp16" else None

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        with self.autocast():
            loss = F.cross_entropy(self.model(x).float(), y)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()


def timed_steps(s: Settings, n: int, one_step: Callable[[], None], threads: int | None) -> Timing:
    """``n`` steps, synchronised at both ends; images/s, seconds and the CPU share."""
    sync(s.device)
    with CpuClock(threads) as clock:
        for _ in range(n):
            one_step()
        sync(s.device)
    return Timing(n * s.batch / clock.wall, clock.wall, clock.share, {})


# --------------------------------------------------------------------------------------- measurements
class Runner:
    """One comparison method (bare, conventional, ...) that runs ``n`` more steps whenever asked."""

    threads: int | None = None

    def __init__(self, s: Settings) -> None:
        self.s = s

    def step(self) -> None:
        raise NotImplementedError

    def run(self, n: int) -> Timing:
        with num_threads(self.threads or self.s.threads):
            return timed_steps(self.s, n, self.step, self.threads or self.s.threads)

    def close(self) -> None:
        pass


class BareRunner(Runner):
    """(1) forward/backward/SGD on one device-resident random batch."""

    def __init__(self, s: Settings, name: str) -> None:
        super().__init__(s)
        self.trainer = Trainer(s, name, s.amp, s.channels_last)
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(s.batch, 3, 32, 32, generator=g).to(s.device)
        if s.channels_last:
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.y = torch.randint(0, 10, (s.batch,), generator=g).to(s.device)

    def step(self) -> None:
        self.trainer.step(self.x, self.y)


class CudaGraphRunner(Runner):
    """(1') the bare step captured whole in a CUDA graph and replayed (PyTorch's "whole network capture":
    warm up on a side stream, capture forward + backward + SGD step once, replay on the same batch)."""

    def __init__(self, s: Settings, name: str) -> None:
        super().__init__(s)
        if s.amp == "fp16":
            raise RuntimeError("whole-step capture with the fp16 GradScaler is not supported here")
        from resnetlib import models

        model = models.build(name).to(s.device).to(memory_format=torch.channels_last).train()
        opt = new_optimizer(model)
        ac = autocast_for(s.amp, s.device, cache_enabled=False)
        x = torch.randn(s.batch, 3, 32, 32, device=s.device).contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 10, (s.batch,), device=s.device)

        def step() -> None:
            with ac():
                loss = F.cross_entropy(model(x).float(), y)
            loss.backward()
            opt.step()

        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                opt.zero_grad(set_to_none=True)
                step()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(self.graph):
            step()
        self._keep = (model, opt, x, y)

    def step(self) -> None:
        self.graph.replay()


class ConventionalRunner(Runner):
    """(3) torchvision-style data set + DataLoader + PIL transforms, then the bare step."""

    def __init__(self, s: Settings, name: str, images_hwc: np.ndarray, labels: list[int], amp: str, workers: int,
                 threads: int | None) -> None:
        super().__init__(s)
        self.threads, self.workers = threads, workers
        self.trainer = Trainer(s, name, amp, s.conventional_channels_last)
        with num_threads(threads or s.threads):
            loader = conventional_loader(images_hwc, labels, s.batch, workers, s.device.type == "cuda")
            self.batches = forever(loader)

    def step(self) -> None:
        x, y = next(self.batches)
        x, y = x.to(self.s.device, non_blocking=True), y.to(self.s.device, non_blocking=True)
        if self.s.conventional_channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        self.trainer.step(x, y)

    def close(self) -> None:
        self.batches.close()  # ends the loader's worker processes


class ConventionalCIFAR(torch.utils.data.Dataset):
    """torchvision.datasets.CIFAR10's __getitem__ over uint8 HWC images held in memory."""

    def __init__(self, data: np.ndarray, targets: list[int], transform: Callable) -> None:
        self.data, self.targets, self.transform = data, targets, transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        img, target = self.data[index], self.targets[index]
        return self.transform(Image.fromarray(img)), target


def conventional_loader(data: np.ndarray, targets: list[int], batch: int, workers: int, pin: bool):
    import torchvision.transforms as T

    transform = T.Compose([
        T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(CIFAR_MEAN, CIFAR_STD),
    ])
    return torch.utils.data.DataLoader(
        ConventionalCIFAR(data, targets, transform), batch_size=batch, shuffle=True, num_workers=workers,
        drop_last=True, pin_memory=pin,
    )


def forever(loader) -> Iterator:
    while True:
        it = iter(loader)
        try:
            yield from it
        finally:
            del it


def make_runners(s: Settings, name: str, data) -> tuple[dict[str, Runner], dict[str, str]]:
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
    runners, errors = {}, {}
    for key, make in makers.items():
        try:
            runners[key] = make()
        except Exception as exc:  # noqa: BLE001  an optional path (CUDA graphs) must not sink the run
            if key in ("bare", "conventional"):
                raise
            errors[key] = f"{type(exc).__name__}: {exc}"
            print(f"  [{name}] {key}: FAILED ({errors[key]})", flush=True)
    return runners, errors


def bench_model(s: Settings, name: str, data) -> dict[str, Any]:
    """Interleave the methods of one model: fit() runs with ``eval_every = iters``; after each of its
    intervals, its ``on_evaluation`` callback runs ``iters`` timed steps of every other method (rotating
    their order), so round r is [other methods' chunk r, fit's interval r + 1] back to back. fit's first
    interval is its warm-up and is discarded; the loop restarts its interval clock after the callback,
    so the other methods' time is never counted as the loop's."""
    from resnetlib.train import fit
    from resnetlib.train.config import TrainConfig

    runners, errors = make_runners(s, name, data)
    try:
        # warm-up of the other methods; the last bare warm-up step sizes the chunk when --iters is not given
        step_s = None
        for key, runner in runners.items():
            if key == "bare":
                for _ in range(s.warmup):
                    step_s = runner.run(1).seconds
            elif s.warmup:
                runner.run(s.warmup)
        iters = s.iters or max(1, min(500, math.ceil(s.seconds / max(step_s or 1e-3, 1e-4))))
        total = iters * (1 + s.rounds)
        config = TrainConfig.model_validate({
            "model": {"name": name},
            "data": {"name": "synthetic", "train_size": s.train_size, "test_size": 1, "augment": True},
            "optim": {"batch_size": s.batch, "lr": LR, "momentum": MOMENTUM, "weight_decay": WEIGHT_DECAY,
                      "iterations": total, "milestones": []},
            "device": str(s.device), "amp": s.amp, "compile": s.compile, "threads": s.threads,
            "channels_last": s.channels_last, "eval_every": iters, "checkpoint_every": total,
            "eval_batch_size": 1, "log": "none",
        })
        runs: dict[str, list[dict[str, Any]]] = {"ours": [], **{k: [] for k in runners}}
        rows: list[dict[str, float]] = []
        resumed = [0.0, 0.0]  # wall / CPU clock when the callback hands control back to fit

        def on_evaluation(row: dict[str, float]) -> None:
            sync(s.device)
            now_wall, now_cpu = time.perf_counter(), time.process_time()
            k = len(rows)  # interval k just ended (0 = warm-up)
            rows.append(row)
            if k >= 1:
                wall = now_wall - resumed[0]
                threads = s.threads or torch.get_num_threads()
                share = round((now_cpu - resumed[1]) / max(wall * threads, 1e-9), 3)
                loop_img_s = float(row["images_per_s"])
                wall_img_s = iters * s.batch / wall
                primary = wall_img_s if s.device.type == "cuda" else loop_img_s
                _record(s, name, runs["ours"], k - 1, "ours", Timing(primary, wall, share, {
                    "loop_reported_img_s": loop_img_s, "wall_img_s": round(wall_img_s, 2)}), iters)
            if k < s.rounds:
                keys = list(runners)
                for key in keys[k % len(keys):] + keys[: k % len(keys)]:
                    if key in errors:
                        continue
                    try:
                        timing = runners[key].run(iters)
                    except Exception as exc:  # noqa: BLE001  optional paths (CUDA graphs) must not sink the run
                        if key in ("bare", "conventional"):
                            raise
                        errors[key] = f"{type(exc).__name__}: {exc}"
                        print(f"  [{name}] {key}: FAILED ({errors[key]})", flush=True)
                        continue
                    _record(s, name, runs[key], k, key, timing, iters)
            resumed[0], resumed[1] = time.perf_counter(), time.process_time()

        with tempfile.TemporaryDirectory(prefix="bench-fit-") as tmp:
            fit(config, Path(tmp) / "run", on_evaluation=on_evaluation)
    finally:
        for runner in runners.values():
            runner.close()
    return summarise(s, runs, errors, iters)


def _record(s: Settings, name: str, runs: list, r: int, key: str, t: Timing, iters: int) -> None:
    load = loadavg()
    runs.append({"round": r, "img_s": round(t.img_s, 2), "seconds": round(t.seconds, 2), "cpu_share": t.cpu_share,
                 "loadavg_1min": load, **t.extra})
    share = f", CPU share {t.cpu_share:.2f}" if s.device.type == "cpu" else ""
    print(f"  [{name}] round {r + 1}/{s.rounds} {key:<18} {t.img_s:9.1f} img/s ({iters} steps in "
          f"{t.seconds:.1f}s{share}, load {load})", flush=True)


def summarise(s: Settings, runs: dict[str, list[dict[str, Any]]], errors: dict[str, str], iters: int):
    result: dict[str, Any] = {"iters": iters, "warmup": s.warmup, "rounds": s.rounds, "methods": {}}
    for m, rs in runs.items():
        if rs:
            vals = [x["img_s"] for x in rs]
            result["methods"][m] = {"img_s": round(statistics.median(vals), 2), "img_s_rounds": vals, "runs": rs}
    ratios, ratio_of_medians = {}, {}
    per_round = {m: {x["round"]: x["img_s"] for x in rs} for m, rs in runs.items()}
    for den in ("bare", "conventional", "conventional_fp32", "conventional_1w1t"):
        if den in result["methods"] and "ours" in result["methods"]:
            paired = [per_round["ours"][r] / per_round[den][r] for r in per_round["ours"] if r in per_round[den]]
            ratios[f"ours_over_{den}"] = round(statistics.median(paired), 3)
            ratio_of_medians[f"ours_over_{den}"] = round(
                result["methods"]["ours"]["img_s"] / result["methods"][den]["img_s"], 3)
    if "bare_cuda_graph" in result["methods"]:
        ratios["bare_cuda_graph_over_bare"] = round(
            result["methods"]["bare_cuda_graph"]["img_s"] / result["methods"]["bare"]["img_s"], 3)
    result["ratios"] = ratios  # median over rounds of the per-round (paired) ratios
    result["ratio_of_medians"] = ratio_of_medians
    result["targets"] = [
        {"target": f"{num} >= {thr} x {den}", "measured": ratios.get(f"{num}_over_{den}"), "threshold": thr,
         "status": ("PASS" if ratios[f"{num}_over_{den}"] >= thr else "MISS")
         if f"{num}_over_{den}" in ratios else "n/a"}
        for num, den, thr in (TARGETS.get(s.amp, []) if s.device.type == "cpu" else [])
    ]
    if errors:
        result["errors"] = errors
    return result


# -------------------------------------------------------------------------------------------- memory
def memory_child(spec: dict[str, Any]) -> dict[str, Any]:
    """One training step of spec['model'] in this fresh process; peak memory and saved-for-backward bytes."""
    from resnetlib import models

    device = torch.device(spec["device"])
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    channels_last = device.type == "cuda"
    ac = autocast_for(spec["amp"], device)

    def batch(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(n, 3, 32, 32, device=device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, torch.randint(0, 10, (n,), device=device)

    model = models.build(spec["model"], activation_checkpointing=spec["checkpointing"]).to(device).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = new_optimizer(model)
    param_ptrs = {p.untyped_storage().data_ptr() for p in model.parameters()}
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())

    def saved_bytes(n: int, then_step: bool) -> tuple[int, int, float]:
        """Forward at batch n recording saved tensors (by storage), then backward + step if asked."""
        seen: dict[Any, tuple[int, bool]] = {}

        def pack(t: torch.Tensor) -> torch.Tensor:
            try:
                storage = t.untyped_storage()
                key, nbytes = (storage.data_ptr(), str(t.device)), storage.nbytes()
            except (RuntimeError, NotImplementedError):
                key, nbytes = ("id", id(t)), t.numel() * t.element_size()
            if key not in seen:
                seen[key] = (nbytes, key[0] in param_ptrs)
            return t

        x, y = batch(n)
        sync(device)
        t0 = time.perf_counter()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), ac():
            loss = F.cross_entropy(model(x).float(), y)
        if then_step:
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sync(device)
        seconds = time.perf_counter() - t0
        del loss
        total = sum(b for b, _ in seen.values())
        params = sum(b for b, is_param in seen.values() if is_param)
        return total, params, seconds

    b = spec["batch"]
    small = None
    if b > 1 and spec["target_batch"] != b:  # a batch-1 forward for the linear extrapolation to target_batch
        small = saved_bytes(1, then_step=False)
    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        allocated_before = torch.cuda.memory_allocated(device)
    gc.collect()
    # Reset the kernel's RSS high-water mark to the current RSS (Linux >= 4.0), so the step's own peak is
    # seen even below earlier peaks (importing torch; the parent's pages inherited over fork/exec).
    hwm_reset = _reset_rss_high_water_mark()
    rss_before_kib = _proc_status_kib("VmRSS")
    maxrss_before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    total, params_saved, seconds = saved_bytes(b, then_step=True)
    maxrss_after_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    hwm_after_kib = _proc_status_kib("VmHWM")
    out: dict[str, Any] = {
        "model": spec["model"], "activation_checkpointing": spec["checkpointing"], "batch": b,
        "amp": spec["amp"], "device": str(device), "step_seconds": round(seconds, 2),
        "param_bytes": param_bytes,
        "saved_for_backward_bytes": total,
        "saved_for_backward_param_bytes": params_saved,
    }
    if small is not None:
        per_image = (total - small[0]) / (b - 1)
        out["saved_for_backward_bytes_extrapolated"] = int(total + per_image * (spec["target_batch"] - b))
        out["extrapolated_to_batch"] = spec["target_batch"]
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device)
        out.update({"cuda_max_memory_allocated_bytes": peak,
                    "cuda_step_peak_growth_bytes": peak - allocated_before})
    # ru_maxrss only shows the step's peak if it rose above the process's earlier high-water mark.
    ru_growth = (maxrss_after_kib - rss_before_kib) * 1024 \
        if rss_before_kib is not None and maxrss_after_kib > maxrss_before_kib else None
    if hwm_reset and hwm_after_kib is not None and rss_before_kib is not None:
        growth, method = (hwm_after_kib - rss_before_kib) * 1024, "VmHWM after a clear_refs reset - VmRSS before"
    else:
        growth, method = ru_growth, "ru_maxrss after - VmRSS before"
    out.update({
        "rss_before_kib": rss_before_kib,
        "ru_maxrss_before_kib": maxrss_before_kib,
        "ru_maxrss_after_kib": maxrss_after_kib,
        "vmhwm_after_kib": hwm_after_kib,
        "ru_maxrss_growth_bytes": ru_growth,
        "peak_rss_growth_bytes": growth,
        "peak_rss_method": method,
    })
    return out


def _proc_status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _reset_rss_high_water_mark() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def measure_memory(s: Settings, a: argparse.Namespace) -> dict[str, Any]:
    mem_batch = a.mem_batch or (2 if s.quick else (s.batch if s.device.type == "cuda" else 8))
    variants = []
    for checkpointing in (False, True):
        spec = {"model": a.mem_model, "checkpointing": checkpointing, "batch": mem_batch, "target_batch": s.batch,
                "device": str(s.device), "amp": s.amp, "threads": s.threads}
        label = "activation checkpointing" if checkpointing else "no checkpointing"
        print(f"  memory: {a.mem_model} batch {mem_batch}, {label} (subprocess) ...", flush=True)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--mem-child", json.dumps(spec)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=a.mem_timeout)
        except subprocess.TimeoutExpired:
            variants.append({"activation_checkpointing": checkpointing, "error": f"timeout {a.mem_timeout}s"})
            continue
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MEM_MARK)]
        if proc.returncode or not lines:
            variants.append({"activation_checkpointing": checkpointing,
                             "error": f"exit {proc.returncode}: {proc.stderr.strip()[-2000:]}"})
            continue
        variants.append(json.loads(lines[-1][len(MEM_MARK):]))
    note = []
    steps = [v["step_seconds"] for v in variants if "step_seconds" in v]
    if mem_batch != s.batch:
        why = ""
        if steps:
            est = max(steps) * s.batch / mem_batch
            why = f"; a step at batch {s.batch} would take ~{est:.0f} s here (linear estimate from the measured step)"
        note.append(f"measured at batch {mem_batch} (--mem-batch), not {s.batch}{why}; the saved-for-backward bytes "
                    f"are extrapolated linearly to batch {s.batch} from a second, batch-1 forward")
    if steps and max(steps) > 60:
        note.append(f"one step took {max(steps):.0f} s at batch {mem_batch} (> 60 s)")
    return {"model": a.mem_model, "batch": mem_batch, "target_batch": s.batch, "variants": variants, "notes": note}


# -------------------------------------------------------------------------------------------- report
def mib(n: float | None) -> str:
    return "—" if n is None else f"{n / 2**20:,.0f}"


def render(meta: dict[str, Any], throughput: dict[str, Any], memory: dict[str, Any] | None) -> str:
    amp = meta["amp"]
    cols = ["bare", "ours", "conventional"]
    extra_cols = [c for c in ("conventional_fp32", "conventional_1w1t", "bare_cuda_graph")
                  if any(c in r["methods"] for r in throughput.values())]
    names = {
        "bare": f"(1) bare [{amp}]", "ours": f"(2) ours: fit [{amp}]",
        "conventional": f"(3) conventional [{amp}, {meta['workers']}w+{meta['threads']}t]",
        "conventional_fp32": f"(3') conventional [fp32, {meta['workers']}w+{meta['threads']}t]",
        "conventional_1w1t": f"(3'') conventional [{amp}, 1w+1t]",
        "bare_cuda_graph": f"(1') bare + CUDA graph [{amp}]",
    }
    ratio_cols = [("ours_over_bare", "(2)/(1)"), ("ours_over_conventional", "(2)/(3)"),
                  ("ours_over_conventional_fp32", "(2)/(3')"), ("ours_over_conventional_1w1t", "(2)/(3'')")]
    ratio_cols = [(k, h) for k, h in ratio_cols if any(k in r["ratios"] for r in throughput.values())]
    lines = [
        f"# Training throughput — {meta['device_name']}",
        "",
        f"images/s, median of {meta['rounds']} interleaved rounds; batch {meta['batch']}, amp {amp}, "
        f"device {meta['device']}, {meta['threads']} torch threads, channels_last {meta['channels_last']} (conventional: {meta.get('conventional_channels_last', False)}), "
        f"compile {meta['compile']}, torch {meta['torch']}, "
        f"host {meta['host']}, {meta['started']}.",
        f"Load average (1 min) at start {meta['loadavg_start']}, at end {meta['loadavg_end']} "
        f"on {meta['cpu_count']} logical cores.",
        "",
        "| model | " + " | ".join(names[c] for c in cols + extra_cols) + " | "
        + " | ".join(h for _, h in ratio_cols) + " | steps x rounds | CPU share |",
        "|---" * (1 + len(cols) + len(extra_cols) + len(ratio_cols) + 2) + "|",
    ]
    for model, r in throughput.items():
        cells = [f"{r['methods'][c]['img_s']:,.1f}" if c in r["methods"] else "—" for c in cols + extra_cols]
        ratios = [f"{r['ratios'][k]:.3f}" if k in r["ratios"] else "—" for k, _ in ratio_cols]
        shares = [x["cpu_share"] for m in r["methods"].values() for x in m["runs"] if x.get("cpu_share")]
        share = f"{min(shares):.2f}–{max(shares):.2f}" if shares else "—"
        lines.append(f"| {model} | " + " | ".join(cells + ratios) + f" | {r['iters']} x {r['rounds']} | {share} |")
    targets = [(m, t) for m, r in throughput.items() for t in r["targets"]]
    if targets:
        lines += ["", "Targets (issue, 2-core CPU):", "", "| model | target | measured | status |", "|---|---|---|---|"]
        for m, t in targets:
            measured = "—" if t["measured"] is None else f"{t['measured']:.3f}"
            lines.append(f"| {m} | {t['target']} | {measured} | **{t['status']}** |")
    lines += ["", *[f"- {n}" for n in meta["notes"]]]
    if memory is not None:
        lines += ["", f"## Peak memory of one {memory['model']} training step (batch {memory['batch']}, "
                      f"amp {amp}, separate process per variant)", ""]
        if meta["device"].startswith("cuda"):
            lines += ["| variant | batch | torch.cuda.max_memory_allocated MiB | step peak growth MiB | "
                      "saved for backward MiB | step s |", "|---|---|---|---|---|---|"]
        else:
            lines += [f"| variant | batch | (a) saved for backward MiB | (a) extrapolated to batch "
                      f"{memory['target_batch']} MiB | (b) peak RSS growth over the step MiB | step s |",
                      "|---|---|---|---|---|---|"]
        for v in memory["variants"]:
            label = "activation checkpointing" if v.get("activation_checkpointing") else "no checkpointing"
            if "error" in v:
                lines.append(f"| {label} | {memory['batch']} | error: {v['error'][:200]} | | | |")
            elif meta["device"].startswith("cuda"):
                lines.append(f"| {label} | {v['batch']} | {mib(v.get('cuda_max_memory_allocated_bytes'))} | "
                             f"{mib(v.get('cuda_step_peak_growth_bytes'))} | {mib(v['saved_for_backward_bytes'])} | "
                             f"{v['step_seconds']} |")
            else:
                rss = mib(v["peak_rss_growth_bytes"])
                lines.append(f"| {label} | {v['batch']} | {mib(v['saved_for_backward_bytes'])} | "
                             f"{mib(v.get('saved_for_backward_bytes_extrapolated'))} | {rss} | {v['step_seconds']} |")
        ok = [v for v in memory["variants"] if "error" not in v]
        if len(ok) == 2:
            key = "cuda_max_memory_allocated_bytes" if meta["device"].startswith("cuda") else "saved_for_backward_bytes"
            plain, ck = (v[key] for v in sorted(ok, key=lambda v: v["activation_checkpointing"]))
            lines.append("")
            lines.append(f"Checkpointing keeps {ck / max(plain, 1):.1%} of the "
                         f"{'peak allocated memory' if key.startswith('cuda') else 'saved-for-backward bytes'}.")
        notes = list(memory["notes"])
        if not meta["device"].startswith("cuda"):
            method = ok[0]["peak_rss_method"] if ok else "?"
            notes.append("(a) autograd's saved-for-backward tensors (saved_tensors_hooks, deduplicated by storage; "
                         "weights included; with checkpointing only each block's input is kept, the rest is "
                         "recomputed in backward); (b) peak RSS growth over one forward+backward+SGD step, "
                         f"{method} (ru_maxrss-based numbers are in the JSON); it includes the gradients and the "
                         f"momentum buffers the first SGD step creates ({mib(ok[0]['param_bytes']) if ok else '?'} "
                         "MiB each) and allocator slack")
        lines += ["", *[f"- {n}" for n in notes]]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict[str, Any]:
    a = parse_args(argv)
    if a.mem_child is not None:
        result = memory_child(json.loads(a.mem_child))
        print(MEM_MARK + json.dumps(result), flush=True)
        return result
    s = resolve_settings(a)
    if s.threads:
        torch.set_num_threads(s.threads)
    if s.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    from resnetlib import data as datasets

    started = time.time()
    meta: dict[str, Any] = {
        "host": socket.gethostname(), "device": str(s.device), "device_name": device_label(s.device),
        "cpu_count": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
        "threads": torch.get_num_threads(), "workers": s.workers, "batch": s.batch, "amp": s.amp,
        "warmup": s.warmup, "iters": s.iters, "rounds": s.rounds, "train_size": s.train_size,
        "compile": s.compile, "channels_last": s.channels_last,
        "conventional_channels_last": s.conventional_channels_last, "quick": s.quick, "argv": sys.argv[1:] if argv is None
        else list(argv), "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "loadavg_start": loadavg(),
        "optimizer": f"SGD lr {LR}, momentum {MOMENTUM}, weight decay {WEIGHT_DECAY}",
    }
    print(f"train_throughput: {meta['device_name']}, {meta['threads']} threads, batch {s.batch}, amp {s.amp}, "
          f"models {', '.join(s.models)}, {s.rounds} rounds", flush=True)
    data = datasets.load("synthetic", train_size=s.train_size, test_size=1, seed=0)
    throughput = {}
    for name in s.models:
        throughput[name] = bench_model(s, name, data)
    memory = None if a.skip_memory else measure_memory(s, a)
    meta["loadavg_end"] = loadavg()
    meta["elapsed_s"] = round(time.time() - started, 1)
    notes = [
        "(1) bare: forward/backward/SGD step on one device-resident random batch; (2) ours: resnetlib.train.fit "
        "on synthetic 3x32x32 data, augmentation on (pad 4 + crop + flip on the device), the loop's own "
        f"images_per_s after a discarded warm-up interval; (3) conventional: torchvision-style CIFAR data set "
        f"(uint8 HWC numpy, PIL RandomCrop(32, padding=4) + RandomHorizontalFlip + ToTensor + Normalize) through "
        f"DataLoader(shuffle=True, num_workers={s.workers}), same step as (1). Same SGD ({meta['optimizer']}) "
        f"and {s.train_size} synthetic images everywhere.",
        "Interleaved: fit's on_evaluation callback runs each other method's chunk of the same number of steps "
        "after every fit interval (order rotating); images/s = median over rounds, ratios = median over rounds of "
        "the per-round ratios (ratio of medians in the JSON).",
    ]
    if s.device.type == "cpu":
        notes.append(f"CPU: num_workers={s.workers} with {meta['threads']} compute threads, since loader workers "
                     "would share the same cores with the compute threads.")
        load = max(x for x in (meta["loadavg_start"], meta["loadavg_end"]) if x is not None) \
            if meta["loadavg_start"] is not None else None
        if load is not None and load > 0.75 * (os.cpu_count() or 1):
            notes.append(f"Other processes were running: load average up to {load} on {os.cpu_count()} cores; "
                         "absolute numbers are depressed and noisy, the interleaved ratios less so. "
                         "'CPU share' = process CPU time / (wall x threads) over the timed steps.")
    else:
        notes.append("CUDA: ours = wall time between the loop's (synchronised) evaluation callbacks; the loop's "
                     "own images_per_s is in the JSON (loop_reported_img_s).")
    if s.amp == "bf16" and s.device.type == "cpu":
        notes.append("bf16: opt-in CPU autocast (torch.autocast('cpu', torch.bfloat16)); (3') is the fp32 "
                     "conventional pipeline, the baseline of the bf16 target.")
    meta["notes"] = notes
    table = render(meta, throughput, memory)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"train_throughput-{file_tag(s, a.tag)}"
    result = {"meta": meta, "throughput": throughput, "memory": memory, "table_markdown": table}
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2))
    (out / f"{stem}.md").write_text(table)
    print()
    print(table)
    print(f"wrote {out / (stem + '.json')} and {out / (stem + '.md')}")
    result["paths"] = {"json": str(out / f"{stem}.json"), "markdown": str(out / f"{stem}.md")}
    return result


if __name__ == "__main__":
    main()
