"""``fit(config)``: the training loop of Sec. 3.4 / 4.2, iteration-based, resumable, CPU or CUDA.

Read top to bottom: ``fit`` sets up (device, run folder, data, model, optimizer), restores a checkpoint
if resuming, then ``_train`` runs one loop over iterations: lr from the schedule, a batch,
forward/backward/step, and at fixed intervals warm-up checks, evaluations (a metrics.csv row) and
checkpoints. Everything the loop accumulates stays on the device between evaluations, so a GPU is not
synchronised every step.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from .. import data as datasets
from .. import models
from ..config import ConfigError
from ..data.loader import imagefolder_training_data
from ..data.training import TrainingData, device_training_data
from ..devices import autocast as autocast_factory
from ..devices import resolve_device
from . import checkpoint as ckpt
from .config import TrainConfig
from .distributed import DistInfo, all_reduce_sum, barrier, init_distributed, shutdown
from .environment import describe_environment
from .evaluation import evaluate
from .lock import RunLock
from .run_folder import RunFolder, RunFolderError, open_run_folder, run_folder_path
from .schedule import learning_rate, warmup_finished

__all__ = [
    "fit", "RunResult", "NonFiniteLossError", "RunFolderError", "evaluate", "seed_everything", "build_model",
]

OnEvaluation = Callable[[dict[str, float]], None]


class NonFiniteLossError(FloatingPointError):
    """The loss or the training state became NaN or infinite; the kept (finite) checkpoints are untouched."""


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


@dataclass
class Run:
    """Everything one training process holds while it trains."""

    config: TrainConfig
    info: DistInfo
    device: torch.device
    folder: RunFolder
    data: TrainingData
    model: nn.Module  # the network itself: checkpoints and evaluation
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    state: TrainState
    # On-device sums (no GPU sync per step): loss and errors since the last evaluation, errors since the
    # last warm-up check. The image counts are known on the host (TrainState.interval_seen, warmup_seen).
    acc: torch.Tensor
    bad_iteration: torch.Tensor  # the first iteration whose loss was not finite, or -1
    net: nn.Module | None = None  # what trains: ``model``, DDP-wrapped and/or compiled
    lr_at: dict[int, float] = field(default_factory=dict)  # lr of each iteration since the last finite check
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext


@dataclass
class IntervalClock:
    """Wall time and images since the last evaluation (the callback's time is not counted)."""

    start: float = field(default_factory=time.perf_counter)
    images: int = 0

    def restart(self) -> None:
        self.start, self.images = time.perf_counter(), 0


# ------------------------------------------------------------------------------------------------ fit
def fit(
    config: TrainConfig,
    run_dir: str | Path | None = None,
    resume: bool = False,
    on_evaluation: OnEvaluation | None = None,
    allow_config_change: bool = False,
) -> RunResult:
    """Train ``config`` into ``run_dir`` (``runs/<model>-<timestamp>`` if None) and return the result.

    With ``resume=True`` the run continues from ``run_dir/checkpoints/last.pt`` and ends exactly where
    an uninterrupted run would. Without it, a folder that already holds a run is refused rather than
    overwritten, and resuming with other result-changing settings than the folder's config.yaml is
    refused unless ``allow_config_change`` (then recorded in the folder). The folder is locked for the
    whole run (``RunLockedError`` names the process holding it).
    """
    info = init_distributed(_checked_device(config.device).type)
    try:
        path = run_folder_path(config, run_dir)
        with RunLock(path) if info.is_main else contextlib.nullcontext():
            folder = open_run_folder(config, path, resume, info.is_main, allow_config_change)
            return _fit(config, folder, resume, on_evaluation, info)
    finally:
        shutdown(info)


def _checked_device(name: str) -> torch.device:
    """The configured device, or a ConfigError (a bad input) before any data is read."""
    try:
        return resolve_device(name)
    except RuntimeError as exc:
        raise ConfigError(str(exc)) from None


def _fit(config, folder: RunFolder, resume, on_evaluation, info: DistInfo) -> RunResult:
    device = use_device(config.device, info)
    configure_torch(config, device)
    run = _set_up(config, info, device, folder)
    if resume:
        _restore(run)
    else:
        folder.write_start(config, describe_environment(device, run.data.name, run.data.source, config.amp))
    _wrap_for_training(run)
    _train(run, on_evaluation)
    return _finish(run)


# ----------------------------------------------------------------------------------------------- setup
def use_device(name: str, info: DistInfo) -> torch.device:
    """The configured device, the process's own GPU under torchrun (made the current one)."""
    device = resolve_device(name, info.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def configure_torch(config: TrainConfig, device: torch.device) -> None:
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.use_deterministic_algorithms(config.deterministic)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not config.deterministic
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def seed_everything(seed: int) -> None:
    """Seed the generator that draws the initial weights (data order and augmentation have their own)."""
    torch.manual_seed(seed)


def _set_up(config: TrainConfig, info: DistInfo, device: torch.device, folder: RunFolder) -> Run:
    """Seed, then data, model, optimizer and a fresh loop state, in this order (the seeded draws)."""
    seed_everything(config.seed)
    data = prepare_data(config, device, info)
    model = _place(build_model(config, data.num_classes, data.in_channels), device, config.channels_last)
    return Run(
        config, info, device, folder, data, model, _sgd(model, config), _grad_scaler(config, device),
        TrainState(warmup_done=config.optim.warmup.mode != "until_error"),
        acc=torch.zeros(3, dtype=torch.float64, device=device),
        bad_iteration=torch.full((), -1, dtype=torch.long, device=device),
    )


def prepare_data(config: TrainConfig, device: torch.device, info: DistInfo) -> TrainingData:
    """The data set named in the config: whole on ``device`` for the small sets (Sec. 4.2), class folders
    through DataLoader workers (Sec. 3.4)."""
    d, batch = config.data, config.optim.batch_size
    if batch % info.world:
        raise ValueError(f"batch_size {batch} must be divisible by the {info.world} processes")
    if d.name == "imagefolder":
        return _imagefolder_data(config, device)
    data = datasets.load(
        d.name, d.root or None, train_size=d.train_size, val_size=d.val_size, test_size=d.test_size,
        seed=config.seed, download=d.download, image_size=d.image_size,
    )
    return device_training_data(
        data, batch_size=config.optim.batch_size, eval_batch_size=config.eval_batch_size, seed=config.seed,
        device=device, augment=d.augment, padding=d.padding,
    )


def _imagefolder_data(config: TrainConfig, device: torch.device) -> TrainingData:
    d = config.data
    return imagefolder_training_data(
        d.root, batch_size=config.optim.batch_size, eval_batch_size=config.eval_batch_size, seed=config.seed,
        device=device, workers=d.workers, scale=d.scale, crop=d.crop, train_size=d.train_size,
        test_size=d.test_size, augment=d.augment, ten_crop=d.ten_crop,
    )


def build_model(config: TrainConfig, num_classes: int, in_channels: int) -> nn.Module:
    return models.build(config.model.name, **config.model.build_options(num_classes, in_channels))


def _place(model: nn.Module, device: torch.device, channels_last: bool) -> nn.Module:
    model = model.to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def _sgd(model: nn.Module, config: TrainConfig) -> torch.optim.SGD:
    """Sec. 3.4 / 4.2: SGD with momentum and weight decay; the lr is set every iteration."""
    o = config.optim
    return torch.optim.SGD(model.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)


def _grad_scaler(config: TrainConfig, device: torch.device) -> torch.amp.GradScaler:
    return torch.amp.GradScaler(device.type, enabled=config.amp == "fp16")


def _restore(run: Run) -> None:
    """Continue from the run folder's checkpoint: weights, optimizer, scaler, loop state, sums, RNGs."""
    payload = ckpt.load_checkpoint(run.folder.checkpoint)
    ckpt.check_compatible(payload, run.model, run.folder.checkpoint)
    run.model.load_state_dict(payload["model"])
    run.optimizer.load_state_dict(payload["optimizer"])
    run.scaler.load_state_dict(payload["scaler"])
    run.state = TrainState(**payload["state"])
    run.acc.copy_(payload["accumulators"])
    ckpt.set_rng_state(payload["rng"])


def _wrap_for_training(run: Run) -> None:
    """DDP across processes, torch.compile and autocast, as configured."""
    net: nn.Module = run.model
    if run.info.enabled:
        device_ids = [run.device.index] if run.device.type == "cuda" else None
        net = nn.parallel.DistributedDataParallel(net, device_ids=device_ids)
    if run.config.compile:
        net = torch.compile(net)
    run.net = net
    run.autocast = autocast_factory(run.config.amp, run.device)


# ------------------------------------------------------------------------------------------- the loop
def _train(run: Run, on_evaluation: OnEvaluation | None) -> None:
    total = run.config.optim.iterations
    bar = _progress(run.config, run.info, total, run.state.iteration)
    clock = IntervalClock()
    run.net.train()
    while run.state.iteration < total:
        lr = _set_learning_rate(run)
        x, y = _batch(run)
        logits, loss = _step(run, x, y)
        _accumulate(run, logits, loss, y)
        _advance(run, clock, bar, y.numel())
        if _warmup_check_due(run):
            _check_warmup(run)
        if _evaluation_due(run):
            _evaluate_interval(run, clock, lr, bar, on_evaluation)
        if _checkpoint_due(run):
            _save_checkpoint(run)
    if bar is not None:
        bar.close()


def _set_learning_rate(run: Run) -> float:
    """Set and remember this iteration's lr (a divergence names the lr that was actually in force)."""
    lr = learning_rate(run.state.iteration, run.config.optim, run.state.warmup_done)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    run.lr_at[run.state.iteration] = lr
    return lr


def _batch(run: Run) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's share of global batch ``iteration`` (a pure function of (seed, iteration))."""
    x, y = run.data.train.batch(run.state.iteration, run.info.rank, run.info.world)
    if run.config.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y


def _step(run: Run, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward (loss in fp32), backward, SGD step; with fp16 through the gradient scaler."""
    with run.autocast():
        logits = run.net(x)
        loss = F.cross_entropy(logits.float(), y)
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    run.scaler.step(run.optimizer)
    run.scaler.update()
    return logits, loss


@torch.no_grad()
def _accumulate(run: Run, logits: torch.Tensor, loss: torch.Tensor, y: torch.Tensor) -> None:
    """Add the step's loss and errors to the on-device sums; remember the first non-finite loss."""
    wrong = (logits.argmax(1) != y).sum().double()
    run.acc += torch.stack((loss.detach().double() * y.numel(), wrong, wrong))
    bad = run.bad_iteration
    first_bad = (bad < 0) & ~torch.isfinite(loss.detach())
    run.bad_iteration = torch.where(first_bad, torch.full_like(bad, run.state.iteration), bad)


def _advance(run: Run, clock: IntervalClock, bar, batch_share: int) -> None:
    images = batch_share * run.info.world
    run.state.iteration += 1
    run.state.interval_seen += images
    run.state.warmup_seen += images
    clock.images += images
    if bar is not None:
        bar.update(1)


def _done(run: Run) -> bool:
    return run.state.iteration == run.config.optim.iterations


def _warmup_check_due(run: Run) -> bool:
    warmup = run.config.optim.warmup
    return warmup.mode == "until_error" and not run.state.warmup_done and (
        run.state.iteration % warmup.check_every == 0
    )


def _evaluation_due(run: Run) -> bool:
    return run.state.iteration % run.config.eval_every == 0 or _done(run)


def _checkpoint_due(run: Run) -> bool:
    return run.state.iteration % run.config.checkpoint_every == 0 or _done(run)


# ---------------------------------------------------------------------------- warm-up, NaN, evaluation
def _check_warmup(run: Run) -> None:
    """'until_error' warm-up (Sec. 4.2, ResNet-110): the training error of the last ``check_every``
    iterations decides whether the lr goes up to its schedule."""
    state = run.state
    errors = all_reduce_sum(run.acc[2:3].clone(), run.info)[0].item()
    _raise_if_nonfinite(run)
    error = 100.0 * errors / max(state.warmup_seen, 1)
    run.acc[2] = 0
    state.warmup_seen = 0
    if warmup_finished(error, run.config.optim):
        state.warmup_done = True
        state.warmup_end = state.iteration


def _raise_if_nonfinite(run: Run) -> None:
    """Stop at the first non-finite loss since the last check, naming its iteration and lr."""
    bad = int(run.bad_iteration.item())
    if bad >= 0:
        raise NonFiniteLossError(_divergence_message(run, "the training loss became NaN or infinite", bad))
    last = run.state.iteration - 1  # kept for _raise_if_state_nonfinite; older lrs are no longer needed
    run.lr_at = {last: run.lr_at[last]} if last in run.lr_at else {}


def _divergence_message(run: Run, what: str, iteration: int) -> str:
    """One line: what diverged, where, at which lr, and how to resume from the kept checkpoint."""
    lr = run.lr_at.get(iteration, math.nan)
    return (
        f"{what} at iteration {iteration} (lr {lr:g}); the run stopped and was not saved there: its kept "
        f"checkpoints are finite. Resume from them at a lower lr (--resume --run-dir {run.folder.path} "
        "--set optim.lr=... --allow-config-change), enable warm-up, or check the input data."
    )


def _raise_if_state_nonfinite(run: Run) -> None:
    """A finite loss can still come with NaN weights, momentum or BN statistics: never save those."""
    bad = ckpt.nonfinite_tensors({"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict()})
    if bad:
        what = f"{len(bad)} tensors of the training state (e.g. {bad[0]}) became NaN or infinite"
        raise NonFiniteLossError(_divergence_message(run, what, run.state.iteration - 1))


def _evaluate_interval(run: Run, clock: IntervalClock, lr: float, bar, on_evaluation: OnEvaluation | None):
    """Close the interval: time it, add a metrics row, write metrics.csv, report, call back."""
    if run.device.type == "cuda":
        torch.cuda.synchronize(run.device)  # time the queued GPU work too
    seconds = time.perf_counter() - clock.start
    run.state.elapsed_s += seconds
    row = _evaluation_row(run, lr, clock.images / max(seconds, 1e-9))
    run.state.metrics.append(row)
    run.folder.write_metrics(run.state.metrics)
    _report(row, bar, run.config, run.info)
    if on_evaluation is not None and run.info.is_main:
        on_evaluation(row)
    clock.restart()


def _evaluation_row(run: Run, lr: float, images_per_s: float) -> dict[str, float]:
    """One metrics.csv row: the interval's training loss and error, then the val/test errors."""
    _raise_if_nonfinite(run)
    state = run.state
    sums = all_reduce_sum(run.acc[:2].clone(), run.info)
    seen = max(state.interval_seen, 1)
    run.acc[:2] = 0
    state.interval_seen = 0
    row = {
        "iteration": state.iteration,
        "epoch": round(state.iteration / run.data.train.batches_per_epoch, 3),
        "lr": lr,
        "train_loss": sums[0].item() / seen,
        "train_error": 100.0 * sums[1].item() / seen,
        "val_error": math.nan,
        "test_error": math.nan,
        "images_per_s": round(images_per_s, 1),
        "elapsed_s": round(state.elapsed_s, 2),
    }
    for split_name, batches in run.data.evaluation.items():
        _, err = evaluate(run.model, batches(), run.autocast, run.config.channels_last)
        row[f"{split_name}_error"] = err
    return row


def _save_checkpoint(run: Run) -> None:
    """Everything needed to continue exactly (see ``checkpoint``), only if finite; rank 0 writes (keeping
    the checkpoint before it too), all ranks wait."""
    _raise_if_nonfinite(run)
    _raise_if_state_nonfinite(run)
    if run.info.is_main:
        ckpt.save_atomic(_checkpoint_payload(run), run.folder.checkpoint, keep_previous=True)
    barrier(run.info)


def _checkpoint_payload(run: Run) -> dict[str, Any]:
    return {
        "config": run.config.model_dump(mode="json"),
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scaler": run.scaler.state_dict(),
        "state": asdict(run.state),
        "accumulators": run.acc.cpu(),
        "rng": ckpt.rng_state(),
    }


# ------------------------------------------------------------------------------------------- progress
def _progress(config: TrainConfig, info: DistInfo, total: int, start: int):
    mode = config.log
    if mode == "auto":
        mode = "bar" if sys.stderr.isatty() else "lines"
    if mode != "bar" or not info.is_main:
        return None
    return tqdm(total=total, initial=start, desc=config.model.name, unit="it", dynamic_ncols=True)


def _report(row, bar, config: TrainConfig, info: DistInfo) -> None:
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
        where = f"[{config.model.name}] it {row['iteration']}/{config.optim.iterations}"
        print(f"{where}  {text}  ({row['elapsed_s']:.0f}s)", flush=True)


# --------------------------------------------------------------------------------------------- finish
def _finish(run: Run) -> RunResult:
    summary = _summary(run)
    run.folder.write_summary(summary)
    barrier(run.info)
    return RunResult(run.folder.path, run.config, summary, run.state.metrics)


def _summary(run: Run) -> dict[str, Any]:
    config, data, state, device = run.config, run.data, run.state, run.device
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
