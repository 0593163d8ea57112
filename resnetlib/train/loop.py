"""``fit(config)``: the training loop of Sec. 3.4 / 4.2, iteration-based, resumable, CPU or CUDA.

Read top to bottom: set up (device, data, model, optimizer), restore a checkpoint if resuming, then one
loop over iterations: lr from the schedule, a batch, forward/backward/step, and at fixed intervals
warm-up checks, evaluations (a metrics.csv row) and checkpoints. Everything the loop accumulates stays
on the device between evaluations, so a GPU is not synchronised every step.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml
from torch import nn
from tqdm import tqdm

from .. import data as datasets
from .. import models
from . import checkpoint as ckpt
from .config import TrainConfig
from .distributed import DistInfo, all_reduce_sum, barrier, init_distributed, shutdown
from .environment import describe_environment
from .schedule import learning_rate, warmup_finished

__all__ = ["fit", "RunResult", "NonFiniteLossError", "RunFolderError", "resolve_device", "evaluate"]

METRIC_FIELDS = [
    "iteration", "epoch", "lr", "train_loss", "train_error", "val_error", "test_error",
    "images_per_s", "elapsed_s",
]


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; earlier checkpoints are kept."""


class RunFolderError(RuntimeError):
    """The run folder holds a run that would be overwritten."""


@dataclass
class RunResult:
    """What a finished run left in its folder."""

    run_dir: Path
    config: TrainConfig
    summary: dict[str, Any]
    metrics: list[dict[str, float]]

    def load_model(self, device: str | torch.device = "cpu") -> nn.Module:
        """The trained network (final weights), in eval mode."""
        payload = ckpt.load_checkpoint(self.run_dir / "checkpoints" / "last.pt")
        net = build_model(self.config, self.summary["num_classes"], self.summary["in_channels"])
        ckpt.check_compatible(payload, net, self.run_dir / "checkpoints" / "last.pt")
        net.load_state_dict(payload["model"])
        return net.to(device).eval()


@dataclass
class TrainState:
    """Loop state saved in every checkpoint (besides model, optimizer and RNGs)."""

    iteration: int = 0
    warmup_done: bool = False
    warmup_end: int | None = None
    elapsed_s: float = 0.0
    interval_seen: int = 0  # images since the last evaluation (all ranks)
    warmup_seen: int = 0  # images since the last warm-up check (all ranks)
    metrics: list[dict[str, float]] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------- setup
def resolve_device(name: str, info: DistInfo) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' was asked for but torch sees no CUDA device; use device: cpu")
        if device.index is None:
            device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    return device


def build_model(config: TrainConfig, num_classes: int, in_channels: int) -> nn.Module:
    return models.build(config.model.name, **config.model.build_options(num_classes, in_channels))


@dataclass
class TrainingData:
    name: str
    source: str
    num_classes: int
    in_channels: int
    train: Any  # .batch(i, rank, world) -> (x, y); .batches_per_epoch
    evaluation: dict[str, Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]]]
    describe: str


def prepare_data(config: TrainConfig, device: torch.device, info: DistInfo) -> TrainingData:
    """Load the data set named in the config, whole onto ``device`` for the small sets (Sec. 4.2)."""
    d = config.data
    if d.name == "imagefolder":
        return _prepare_imagefolder(config, device, info)
    data = datasets.load(
        d.name, d.root or None, train_size=d.train_size, val_size=d.val_size, test_size=d.test_size,
        seed=config.seed, download=d.download,
    )
    if config.optim.batch_size % info.world:
        raise ValueError(f"batch_size {config.optim.batch_size} must be divisible by the {info.world} processes")
    train = datasets.DeviceBatches(
        data.train, data.mean, config.optim.batch_size, config.seed, device, augment=d.augment, padding=d.padding
    )
    evaluation = {}
    for split_name, split in (("val", data.val), ("test", data.test)):
        if split is not None and len(split):
            batches = datasets.DeviceBatches(
                split, data.mean, min(config.eval_batch_size, len(split)), config.seed, device, augment=False
            )
            evaluation[split_name] = lambda b=batches: b.eval_batches(config.eval_batch_size)
    return TrainingData(
        data.name, data.source, data.num_classes, data.in_channels, train, evaluation, data.describe()
    )


def _prepare_imagefolder(config: TrainConfig, device: torch.device, info: DistInfo) -> TrainingData:
    from ..data.loader import imagefolder_training_data

    return imagefolder_training_data(config, device, info)


def make_autocast(config: TrainConfig, device: torch.device) -> Callable[[], contextlib.AbstractContextManager]:
    if config.amp == "off":
        return contextlib.nullcontext
    dtype = torch.bfloat16 if config.amp == "bf16" else torch.float16
    return lambda: torch.autocast(device.type, dtype=dtype)


def configure_torch(config: TrainConfig, device: torch.device) -> None:
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.use_deterministic_algorithms(config.deterministic)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not config.deterministic
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


# ----------------------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate(
    model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], autocast=contextlib.nullcontext,
    channels_last: bool = False,
) -> tuple[float, float]:
    """(mean loss, error %) of ``model`` in eval mode; 5-D inputs are 10-crop stacks (Table 2)."""
    was_training = model.training
    model.eval()
    loss_sum = err_sum = None
    count = 0
    for x, y in batches:
        crops = x.shape[1] if x.dim() == 5 else 0
        if crops:
            x = x.flatten(0, 1)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast():
            logits = model(x).float()
        if crops:
            probs = logits.softmax(1).view(-1, crops, logits.shape[1]).mean(1)
            loss = F.nll_loss(probs.clamp_min(1e-12).log(), y, reduction="sum")
            pred = probs.argmax(1)
        else:
            loss = F.cross_entropy(logits, y, reduction="sum")
            pred = logits.argmax(1)
        err = (pred != y).sum()
        loss_sum = loss if loss_sum is None else loss_sum + loss
        err_sum = err if err_sum is None else err_sum + err
        count += y.numel()
    model.train(was_training)
    if not count:
        return math.nan, math.nan
    return loss_sum.item() / count, 100.0 * err_sum.item() / count


# ----------------------------------------------------------------------------------------- run folder
class RunFolder:
    """Files of one run; only rank 0 writes."""

    def __init__(self, path: Path, writer: bool) -> None:
        self.path, self.writer = path, writer
        self.checkpoint = path / "checkpoints" / "last.pt"

    def holds_run(self) -> bool:
        return self.checkpoint.exists() or (self.path / "summary.json").exists()

    def write_start(self, config: TrainConfig, environment: dict[str, Any]) -> None:
        if not self.writer:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "config.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
        (self.path / "environment.json").write_text(json.dumps(environment, indent=2))

    def write_metrics(self, rows: list[dict[str, float]]) -> None:
        if not self.writer:
            return
        tmp = self.path / ".metrics.csv.tmp"
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=METRIC_FIELDS)
            w.writeheader()
            w.writerows(rows)
        tmp.replace(self.path / "metrics.csv")

    def write_summary(self, summary: dict[str, Any]) -> None:
        if self.writer:
            tmp = self.path / ".summary.json.tmp"
            tmp.write_text(json.dumps(summary, indent=2))
            tmp.replace(self.path / "summary.json")


# ------------------------------------------------------------------------------------------------ fit
def fit(
    config: TrainConfig,
    run_dir: str | Path | None = None,
    resume: bool = False,
    on_evaluation: Callable[[dict[str, float]], None] | None = None,
) -> RunResult:
    """Train ``config`` into ``run_dir`` (``runs/<model>-<timestamp>`` if None) and return the result.

    With ``resume=True`` the run continues from ``run_dir/checkpoints/last.pt`` and ends exactly where
    an uninterrupted run would. Without it, a folder that already holds a run is refused rather than
    overwritten.
    """
    info = init_distributed("cuda" if config.device.startswith("cuda") or (
        config.device == "auto" and torch.cuda.is_available()) else "cpu")
    try:
        return _fit(config, run_dir, resume, on_evaluation, info)
    finally:
        shutdown(info)


def _fit(config, run_dir, resume, on_evaluation, info: DistInfo) -> RunResult:
    device = resolve_device(config.device, info)
    run = RunFolder(Path(run_dir) if run_dir else _default_run_dir(config), writer=info.is_main)
    if resume and not run.checkpoint.exists():
        raise ckpt.CheckpointError(f"--resume: no checkpoint in {run.path}; start the run without --resume")
    if not resume and run.holds_run():
        raise RunFolderError(
            f"{run.path} already holds a run; continue it with --resume, or choose another --run-dir"
        )
    configure_torch(config, device)
    channels_last = config.channels_last

    torch.manual_seed(config.seed)
    data = prepare_data(config, device, info)
    model = build_model(config, data.num_classes, data.in_channels).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.optim.lr, momentum=config.optim.momentum,
        weight_decay=config.optim.weight_decay,
    )
    scaler = torch.amp.GradScaler(device.type, enabled=config.amp == "fp16")
    state = TrainState(warmup_done=config.optim.warmup.mode != "until_error")
    # On-device sums (no GPU sync per step): loss and errors since the last evaluation, errors since the
    # last warm-up check. The image counts are known on the host (TrainState.interval_seen, warmup_seen).
    acc = torch.zeros(3, dtype=torch.float64, device=device)

    if resume:
        payload = ckpt.load_checkpoint(run.checkpoint)
        ckpt.check_compatible(payload, model, run.checkpoint)
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        scaler.load_state_dict(payload["scaler"])
        state = TrainState(**payload["state"])
        acc.copy_(payload["accumulators"])
        ckpt.set_rng_state(payload["rng"])
    else:
        run.write_start(config, describe_environment(device, data.name, data.source))

    net: nn.Module = model
    if info.enabled:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if config.compile:
        net = torch.compile(net)
    autocast = make_autocast(config, device)
    optim_cfg = config.optim
    total = optim_cfg.iterations
    bad_iteration = torch.full((), -1, dtype=torch.long, device=device)

    def save_checkpoint() -> None:
        _raise_if_nonfinite(bad_iteration, optim_cfg, state)
        if info.is_main:
            ckpt.save_atomic(
                {
                    "config": config.model_dump(mode="json"),
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict(),
                    "state": asdict(state),
                    "accumulators": acc.cpu(),
                    "rng": ckpt.rng_state(),
                },
                run.checkpoint,
            )
        barrier(info)

    bar = _progress(config, info, total, state.iteration)
    interval_start, interval_images = time.perf_counter(), 0
    net.train()
    while state.iteration < total:
        it = state.iteration
        lr = learning_rate(it, optim_cfg, state.warmup_done)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = data.train.batch(it, info.rank, info.world)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast():
            logits = net(x)
            loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

        with torch.no_grad():
            wrong = (logits.argmax(1) != y).sum().double()
            acc += torch.stack((loss.detach().double() * y.numel(), wrong, wrong))
            bad_iteration = torch.where(
                (bad_iteration < 0) & ~torch.isfinite(loss.detach()), torch.full_like(bad_iteration, it),
                bad_iteration,
            )
        state.iteration = it + 1
        state.interval_seen += y.numel() * info.world
        state.warmup_seen += y.numel() * info.world
        interval_images += y.numel() * info.world
        if bar is not None:
            bar.update(1)

        done = state.iteration == total
        if optim_cfg.warmup.mode == "until_error" and not state.warmup_done and (
            state.iteration % optim_cfg.warmup.check_every == 0
        ):
            _check_warmup(acc, state, optim_cfg, info, bad_iteration)
        if state.iteration % config.eval_every == 0 or done:
            if device.type == "cuda":
                torch.cuda.synchronize(device)  # time the queued GPU work too
            now = time.perf_counter()
            state.elapsed_s += now - interval_start
            row = _evaluation_row(
                net, model, data, acc, state, lr, interval_images / max(now - interval_start, 1e-9),
                autocast, channels_last, info, bad_iteration, optim_cfg,
            )
            state.metrics.append(row)
            run.write_metrics(state.metrics)
            _report(row, bar, config, info, total)
            if on_evaluation is not None and info.is_main:
                on_evaluation(row)
            interval_start, interval_images = time.perf_counter(), 0
        if state.iteration % config.checkpoint_every == 0 or done:
            save_checkpoint()
    if bar is not None:
        bar.close()

    summary = _summary(config, data, state, device)
    run.write_summary(summary)
    barrier(info)
    return RunResult(run.path, config, summary, state.metrics)


def _default_run_dir(config: TrainConfig) -> Path:
    from .environment import REPO_ROOT

    return REPO_ROOT / "runs" / f"{config.model.name}-{time.strftime('%Y%m%d-%H%M%S')}"


def _raise_if_nonfinite(bad_iteration: torch.Tensor, optim_cfg, state: TrainState) -> None:
    bad = int(bad_iteration.item())
    if bad >= 0:
        warmed_up = optim_cfg.warmup.mode != "until_error" or (
            state.warmup_end is not None and bad >= state.warmup_end
        )
        lr = learning_rate(bad, optim_cfg, warmed_up)
        raise NonFiniteLossError(
            f"the training loss became NaN or infinite at iteration {bad} (lr {lr:g}); the run stopped and "
            "its earlier checkpoints are kept. Lower the lr, enable warm-up, or check the input data."
        )


def _check_warmup(acc, state: TrainState, optim_cfg, info: DistInfo, bad_iteration) -> None:
    """'until_error' warm-up: measure the training error of the last ``check_every`` iterations."""
    errors = all_reduce_sum(acc[2:3].clone(), info)[0].item()
    _raise_if_nonfinite(bad_iteration, optim_cfg, state)
    error = 100.0 * errors / max(state.warmup_seen, 1)
    acc[2] = 0
    state.warmup_seen = 0
    if warmup_finished(error, optim_cfg):
        state.warmup_done = True
        state.warmup_end = state.iteration


def _evaluation_row(net, model, data: TrainingData, acc, state: TrainState, lr, images_per_s, autocast,
                    channels_last, info: DistInfo, bad_iteration, optim_cfg) -> dict[str, float]:
    _raise_if_nonfinite(bad_iteration, optim_cfg, state)
    sums = all_reduce_sum(acc[:2].clone(), info)
    seen = max(state.interval_seen, 1)
    acc[:2] = 0
    state.interval_seen = 0
    row = {
        "iteration": state.iteration,
        "epoch": round(state.iteration / data.train.batches_per_epoch, 3),
        "lr": lr,
        "train_loss": sums[0].item() / seen,
        "train_error": 100.0 * sums[1].item() / seen,
        "val_error": math.nan,
        "test_error": math.nan,
        "images_per_s": round(images_per_s, 1),
        "elapsed_s": round(state.elapsed_s, 2),
    }
    for split_name, batches in data.evaluation.items():
        _, err = evaluate(model, batches(), autocast, channels_last)
        row[f"{split_name}_error"] = err
    return row


def _progress(config: TrainConfig, info: DistInfo, total: int, start: int):
    mode = config.log
    if mode == "auto":
        mode = "bar" if sys.stderr.isatty() else "lines"
    if mode != "bar" or not info.is_main:
        return None
    return tqdm(total=total, initial=start, desc=config.model.name, unit="it", dynamic_ncols=True)


def _report(row, bar, config: TrainConfig, info: DistInfo, total: int) -> None:
    if not info.is_main or config.log == "none":
        return
    errors = "  ".join(
        f"{split} {row[f'{split}_error']:.2f}%" for split in ("train", "val", "test")
        if math.isfinite(row[f"{split}_error"])
    )
    text = f"{errors}  lr {row['lr']:g}  {row['images_per_s']:.0f} img/s"
    if bar is not None:
        bar.set_postfix_str(text)
    else:
        print(f"[{config.model.name}] it {row['iteration']}/{total}  {text}  ({row['elapsed_s']:.0f}s)", flush=True)


def _summary(config: TrainConfig, data: TrainingData, state: TrainState, device: torch.device) -> dict[str, Any]:
    last = state.metrics[-1] if state.metrics else {}
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return {
        "model": config.model.name,
        "dataset": data.name,
        "data_source": data.source,
        "data": data.describe,
        "num_classes": data.num_classes,
        "in_channels": data.in_channels,
        "seed": config.seed,
        "iterations": state.iteration,
        "warmup_end": state.warmup_end,
        "final_train_error": _finite_or_none(last.get("train_error")),
        "final_val_error": _finite_or_none(last.get("val_error")),
        "final_test_error": _finite_or_none(last.get("test_error")),
        "train_seconds": round(state.elapsed_s, 2),
        "peak_cuda_memory_bytes": peak,
    }


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
