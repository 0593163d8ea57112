"""A small, clear end-to-end Faster R-CNN training loop (SGD, step schedule, iteration-based).

The paper trains Faster R-CNN with the 4-step alternating scheme of ref. [32]; torchvision's model is
trained end to end (RPN and detector losses summed, "approximate joint training", also from [32]),
which is what this loop does.

Determinism: batch ``i`` is a pure function of ``(seed, i)`` (epoch ``e``'s order is a permutation
drawn from ``(seed, e)``, the flip of each image from ``(seed, i)``), and the global torch RNG (used
by torchvision's RPN/RoI samplers) is seeded once at the start; on the CPU two runs with the same
seed give the same losses.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .data import hflip

__all__ = ["LOSS_KEYS", "train_detector"]

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


def _lr_at(iteration: int, lr: float, milestones: Sequence[int], gamma: float, warmup: int) -> float:
    value = lr * gamma ** sum(iteration >= m for m in milestones)
    if warmup > 0 and iteration < warmup:
        alpha = iteration / warmup
        value *= 0.001 * (1 - alpha) + alpha  # linear warm-up from lr/1000, as torchvision's reference
    return value


def train_detector(
    model: nn.Module,
    train_ds: Any,
    *,
    iterations: int,
    batch_size: int,
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
    milestones: Sequence[int] = (),
    gamma: float = 0.1,
    warmup_iters: int = 0,
    hflip_prob: float = 0.5,
    device: str | torch.device = "cpu",
    seed: int = 0,
    log_every: int = 10,
    progress: bool | None = None,
    label: str = "",
) -> list[dict[str, float]]:
    """Train ``model`` (a torchvision detection model) in place for ``iterations`` SGD steps.

    ``train_ds[i]`` returns ``(image, target)``. ``milestones``: iterations at which the lr is
    multiplied by ``gamma``. ``progress``: a tqdm bar (None = only when stderr is a terminal);
    otherwise one printed line per ``log_every`` iterations. Returns one dict per logged interval:
    ``iteration`` (1-based, the last of the interval), ``lr``, ``loss`` and the four loss components,
    each averaged over the interval, plus ``seconds`` since the start.
    Raises FloatingPointError if the loss becomes NaN or infinite.
    """
    if iterations < 0 or batch_size < 1 or log_every < 1:
        raise ValueError("iterations must be >= 0, batch_size and log_every >= 1")
    n = len(train_ds)
    if n == 0:
        raise ValueError("the training set is empty")
    device = torch.device(device)
    torch.manual_seed(seed)
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if progress is None:
        progress = sys.stderr.isatty()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=iterations, desc=label or "train", leave=False)
    log: list[dict[str, float]] = []
    sums = dict.fromkeys(("loss", *LOSS_KEYS), 0.0)
    count = 0
    start = time.perf_counter()
    for it in range(iterations):
        current_lr = _lr_at(it, lr, milestones, gamma, warmup_iters)
        for group in optimizer.param_groups:
            group["lr"] = current_lr
        g = torch.Generator().manual_seed(seed * 7_919 + it)
        images, targets = [], []
        for idx in _batch_indices(n, batch_size, it, seed):
            image, target = train_ds[idx]
            if hflip_prob > 0 and torch.rand((), generator=g).item() < hflip_prob:
                image, target = hflip(image, target)
            images.append(image.to(device))
            targets.append(
                {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in target.items()}
            )
        losses = model(images, targets)
        loss = sum(losses.values())
        if not math.isfinite(loss.item()):
            raise FloatingPointError(
                f"{label or 'training'}: loss is {loss.item()} at iteration {it + 1} "
                f"({ {k: round(v.item(), 4) for k, v in losses.items()} }); lower the lr or add warm-up"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sums["loss"] += loss.item()
        for k in LOSS_KEYS:
            sums[k] += float(losses[k].item()) if k in losses else 0.0
        count += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if (it + 1) % log_every == 0 or it + 1 == iterations:
            entry = {"iteration": it + 1, "lr": current_lr, **{k: v / count for k, v in sums.items()}}
            entry["seconds"] = round(time.perf_counter() - start, 2)
            log.append(entry)
            if bar is None:
                parts = " ".join(f"{k.removeprefix('loss_')}={entry[k]:.3f}" for k in LOSS_KEYS)
                print(
                    f"{label + ' ' if label else ''}iter {it + 1}/{iterations} lr {current_lr:.2g} "
                    f"loss {entry['loss']:.3f} ({parts}) {entry['seconds']:.0f}s",
                    flush=True,
                )
            sums = dict.fromkeys(sums, 0.0)
            count = 0
    if bar is not None:
        bar.close()
    return log
