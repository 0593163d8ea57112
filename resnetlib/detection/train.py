"""End-to-end Faster R-CNN training (SGD, step schedule, iteration-based), checkpointed and cached.

The paper trains Faster R-CNN with the 4-step alternating scheme of ref. [32]; torchvision's model is
trained end to end (RPN and detector losses summed, "approximate joint training", also from [32]),
which is what this loop does. The lr is ``resnetlib.train.schedule.learning_rate`` of the config's
``optim`` (the classifiers' schedule; detectors warm up linearly from lr/1000).

Determinism: batch ``i`` is a pure function of ``(seed, i)`` (epoch ``e``'s order is a permutation
drawn from ``(seed, e)``, the flip of each image from ``(seed, i)``), and the global torch RNG (used
by torchvision's RPN/RoI samplers) is seeded once at the start; on the CPU two runs with the same
seed give the same losses. A checkpoint (``resnetlib.train.checkpoint``: atomic) holds the model,
the optimizer, the RNGs and the averaged losses so far, so a crashed run resumes where it stopped and
ends as an uninterrupted one would.

``cached_detector`` puts a trained detector into the run cache of ``resnetlib.train.runs``:
``<runs>/detection/<backbone>-s<seed>-<key>/`` holds ``config.yaml``, ``checkpoints/last.pt`` and, once
finished, ``summary.json`` (the loss log and the training time).
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from ..devices import resolve_device
from ..train import checkpoint as ckpt
from ..train.loop import seed_everything
from ..train.runs import DETECTOR_CODE, cached_run, run_dir_for
from ..train.schedule import learning_rate
from .config import DetectorConfig
from .data import hflip

__all__ = ["LOSS_KEYS", "DetectorRun", "cached_detector", "train_detector"]

LOSS_KEYS = ("loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg")


def _batch_indices(n: int, batch_size: int, iteration: int, seed: int) -> list[int]:
    """Indices of batch ``iteration``: consecutive slices of per-epoch permutations seeded by (seed, epoch)."""
    out: list[int] = []
    start = iteration * batch_size
    while len(out) < batch_size:
        epoch, offset = divmod(start + len(out), n)
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        perm = torch.randperm(n, generator=g)
        take = min(batch_size - len(out), n - offset)
        out.extend(perm[offset : offset + take].tolist())
    return out


def _batch(train_ds: Any, config: DetectorConfig, it: int, device: torch.device) -> tuple[list, list]:
    """Images and targets of iteration ``it`` on ``device``, flipped with probability ``hflip_prob``."""
    g = torch.Generator().manual_seed(config.seed * 7_919 + it)
    images, targets = [], []
    for idx in _batch_indices(len(train_ds), config.optim.batch_size, it, config.seed):
        image, target = train_ds[idx]
        if config.hflip_prob > 0 and torch.rand((), generator=g).item() < config.hflip_prob:
            image, target = hflip(image, target)
        images.append(image.to(device))
        targets.append({k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in target.items()})
    return images, targets


# ------------------------------------------------------------------------------------- one step


def _step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: tuple[list, list], where: str) -> dict:
    """One SGD step on the summed losses; returns the total and the four components as floats."""
    losses = model(*batch)
    loss = sum(losses.values())
    zero = loss.detach().new_zeros(())
    values = torch.stack([loss.detach(), *(losses.get(k, zero).detach() for k in LOSS_KEYS)]).tolist()  # one sync
    logged = {"loss": values[0], **dict(zip(LOSS_KEYS, values[1:]))}
    if not math.isfinite(values[0]):
        raise FloatingPointError(f"{where}: loss is {values[0]} ({ {k: round(v, 4) for k, v in logged.items()} }); "
                                 "lower the lr or add warm-up")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return logged


@dataclass
class _State:
    """Where training stands: what a checkpoint holds besides the model, the optimizer and the RNGs."""

    iteration: int = 0
    sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(("loss", *LOSS_KEYS), 0.0))
    count: int = 0
    seconds: float = 0.0  # training time up to the last checkpoint (where a resumed run goes on)
    log: list[dict[str, float]] = field(default_factory=list)

    def add(self, losses: dict[str, float]) -> None:
        for k in self.sums:
            self.sums[k] += losses[k]
        self.count += 1

    def close_interval(self, lr: float, seconds: float) -> dict[str, float]:
        """The averaged losses since the last log row, as a new log row; starts the next interval."""
        entry = {"iteration": self.iteration, "lr": lr, **{k: v / self.count for k, v in self.sums.items()}}
        entry["seconds"] = round(seconds, 2)
        self.log.append(entry)
        self.sums, self.count = dict.fromkeys(self.sums, 0.0), 0
        return entry


# ---------------------------------------------------------------------------------- checkpoints


def _checkpoint_path(run_dir: Path) -> Path:
    return run_dir / "checkpoints" / "last.pt"


def _save(run_dir: Path, config: DetectorConfig, model: nn.Module, optimizer, state: _State) -> None:
    payload = {
        "config": config.model_dump(mode="json"),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "state": asdict(state),
        "rng": ckpt.rng_state(),
    }
    ckpt.save_atomic(payload, _checkpoint_path(run_dir))


def _restore(run_dir: Path, model: nn.Module, optimizer) -> _State:
    path = _checkpoint_path(run_dir)
    payload = ckpt.load_checkpoint(path)
    ckpt.check_compatible(payload, model, path)
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    ckpt.set_rng_state(payload["rng"])
    return _State(**payload["state"])


# ----------------------------------------------------------------------------------------- loop


def _progress_bar(progress: bool | None, config: DetectorConfig, state: _State, label: str):
    if not (sys.stderr.isatty() if progress is None else progress):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=config.optim.iterations, initial=state.iteration, desc=label or "train", leave=False)


def _report(entry: dict[str, float], bar, total: int, label: str) -> None:
    """One printed line per log row off a terminal (papermill logs); the bar shows the loss otherwise."""
    if bar is not None:
        bar.set_postfix(loss=f"{entry['loss']:.3f}")
        return
    parts = " ".join(f"{k.removeprefix('loss_')}={entry[k]:.3f}" for k in LOSS_KEYS)
    print(
        f"{label + ' ' if label else ''}iter {entry['iteration']}/{total} lr {entry['lr']:.2g} "
        f"loss {entry['loss']:.3f} ({parts}) {entry['seconds']:.0f}s",
        flush=True,
    )


def _check_inputs(config: DetectorConfig, train_ds: Any, resume: bool, run_dir: Path | None) -> None:
    if len(train_ds) == 0:
        raise ValueError("the training set is empty")
    if resume and run_dir is None:
        raise ValueError("resume=True needs the run_dir holding checkpoints/last.pt")


def train_detector(
    model: nn.Module,
    train_ds: Any,
    config: DetectorConfig,
    *,
    run_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool | None = None,
    label: str = "",
) -> list[dict[str, float]]:
    """Train ``model`` (a torchvision detection model) in place for ``config.optim.iterations`` SGD steps.

    ``train_ds[i]`` returns ``(image, target)``. With ``run_dir``, a checkpoint is written every
    ``config.checkpoint_every`` iterations and at the end; ``resume`` continues from it. ``progress``: a
    tqdm bar (None = only when stderr is a terminal); otherwise one printed line per ``log_every``
    iterations. Returns one dict per logged interval: ``iteration`` (1-based, the last of the interval),
    ``lr``, ``loss`` and the four loss components, each averaged over the interval, plus ``seconds``
    since the start. Raises FloatingPointError if the loss becomes NaN or infinite.
    """
    return _train(model, train_ds, config, Path(run_dir) if run_dir else None, resume, progress, label).log


def _train(
    model, train_ds, config: DetectorConfig, run_dir: Path | None, resume: bool, progress, label
) -> _State:
    _check_inputs(config, train_ds, resume, run_dir)
    device = resolve_device(config.device)
    seed_everything(config.seed)
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    o = config.optim
    optimizer = torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    state = _restore(run_dir, model, optimizer) if resume else _State()
    trainer = _Trainer(model, optimizer, train_ds, config, device, run_dir, label)
    bar = _progress_bar(progress, config, state, label)
    trainer.run(state, bar)
    if bar is not None:
        bar.close()
    return state


@dataclass
class _Trainer:
    """One detector's training: what every iteration needs besides the state it advances."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    train_ds: Any
    config: DetectorConfig
    device: torch.device
    run_dir: Path | None
    label: str

    def run(self, state: _State, bar) -> None:
        total, start = self.config.optim.iterations, time.perf_counter() - state.seconds
        while state.iteration < total:
            lr = self.iteration(state)
            if bar is not None:
                bar.update(1)
            if state.iteration % self.config.log_every == 0 or state.iteration == total:
                _report(state.close_interval(lr, time.perf_counter() - start), bar, total, self.label)
            if self.run_dir is not None and (
                state.iteration % self.config.checkpoint_every == 0 or state.iteration == total
            ):
                state.seconds = time.perf_counter() - start
                _save(self.run_dir, self.config, self.model, self.optimizer, state)

    def iteration(self, state: _State) -> float:
        """One SGD step at the schedule's lr (returned); its losses are added to ``state``."""
        lr = learning_rate(state.iteration, self.config.optim, warmup_done=True)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batch = _batch(self.train_ds, self.config, state.iteration, self.device)
        where = f"{self.label or 'training'} at iteration {state.iteration + 1}"
        state.add(_step(self.model, self.optimizer, batch, where))
        state.iteration += 1
        return lr


# ------------------------------------------------------------------------------------ run cache


@dataclass
class DetectorRun:
    """A trained detector in the run cache: folder, loss log, training seconds, and whether it was reused."""

    run_dir: Path
    log: list[dict[str, float]]
    train_seconds: float
    cached: bool

    @property
    def checkpoint(self) -> Path:
        """The trained weights (what a stage trained on top of this one is keyed by)."""
        return _checkpoint_path(self.run_dir)


def _fit(config: DetectorConfig, model: nn.Module, train_ds: Any, run_dir: Path, resume: bool, label: str):
    run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    state = _train(model, train_ds, config, run_dir, resume, None, label)
    tmp = run_dir / "summary.json.tmp"  # summary.json marks the run finished: written whole or not at all
    tmp.write_text(json.dumps({"log": state.log, "train_seconds": state.seconds}, indent=1))
    tmp.replace(run_dir / "summary.json")
    return DetectorRun(run_dir, state.log, state.seconds, cached=False)


def _load(model: nn.Module, run_dir: Path, label: str) -> DetectorRun:
    model.load_state_dict(ckpt.load_checkpoint(_checkpoint_path(run_dir))["model"])
    saved = json.loads((run_dir / "summary.json").read_text())
    print(f"{label}: reusing the trained run in {run_dir} (force=True retrains)", flush=True)
    return DetectorRun(run_dir, saved["log"], float(saved["train_seconds"]), cached=True)


def cached_detector(
    config: DetectorConfig, model: nn.Module, train_ds: Any, runs_dir: str | Path, *, force: bool = False
) -> DetectorRun:
    """Train ``model`` as ``config`` says, or load the cached run of this exact configuration (and code).

    ``model`` must have been built from ``config`` (after seeding with ``config.seed``); it ends up holding
    the trained weights either way. A crashed run is resumed from its last checkpoint.
    """
    label = config.model.name
    return cached_run(
        run_dir_for(config, Path(runs_dir) / "detection", DETECTOR_CODE),
        train=lambda run_dir, resume: _fit(config, model, train_ds, run_dir, resume, label),
        load=lambda run_dir: _load(model, run_dir, label),
        force=force,
    )
