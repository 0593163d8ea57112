"""The learning rate as a pure function of (iteration, warm-up state): Sec. 4.2.

lr 0.1, divided by 10 at 32k and 48k iterations; for ResNet-110 a warm-up at 0.01 until the
training error is below 80% (about 400 iterations), then back to 0.1. Faster R-CNN (Sec. 4.3) warms
up linearly from lr/1000 ('linear' mode).
"""

from __future__ import annotations

from bisect import bisect_right

from .config import OptimConfig

#: 'linear' warm-up starts at this fraction of the lr (torchvision's detection reference: lr/1000).
LINEAR_WARMUP_START = 0.001


def learning_rate(iteration: int, optim: OptimConfig, warmup_done: bool) -> float:
    """lr for ``iteration`` (0-based). ``warmup_done`` matters only in 'until_error' mode."""
    warmup = optim.warmup
    if warmup.mode == "until_error" and not warmup_done:
        return warmup.lr
    if warmup.mode == "iterations" and iteration < warmup.iterations:
        return warmup.lr
    lr = optim.lr * optim.lr_decay ** bisect_right(optim.milestones, iteration)
    lr = float(f"{lr:.12g}")  # 0.1 * 0.1 is 0.010000000000000002 in binary floating point
    if warmup.mode == "linear" and iteration < warmup.iterations:
        alpha = iteration / warmup.iterations
        lr *= LINEAR_WARMUP_START * (1 - alpha) + alpha
    return lr


def warmup_finished(train_error_percent: float, optim: OptimConfig) -> bool:
    """'until_error' warm-up ends once the measured training error falls below the threshold."""
    return train_error_percent < optim.warmup.train_error_below
