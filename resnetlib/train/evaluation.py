"""Test-time error of a network (Sec. 4.2: single view; Table 2: the 10-crop average of Sec. 3.4)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["evaluate"]


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
        loss, err = _batch_loss_and_errors(model, x, y, autocast, channels_last)
        loss_sum = loss if loss_sum is None else loss_sum + loss
        err_sum = err if err_sum is None else err_sum + err
        count += y.numel()
    model.train(was_training)
    if not count:
        return math.nan, math.nan
    return loss_sum.item() / count, 100.0 * err_sum.item() / count


def _batch_loss_and_errors(model, x, y, autocast, channels_last) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed loss and number of wrong predictions of one batch, on the device (no sync)."""
    crops = x.shape[1] if x.dim() == 5 else 0
    if crops:
        x = x.flatten(0, 1)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with autocast():
        logits = model(x).float()
    if crops:
        loss, pred = _ten_crop_loss_and_predictions(logits, y, crops)
    else:
        loss, pred = F.cross_entropy(logits, y, reduction="sum"), logits.argmax(1)
    return loss, (pred != y).sum()


def _ten_crop_loss_and_predictions(logits, y, crops: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Table 2's 10-crop testing: average the crops' softmax scores, then loss and argmax."""
    probs = logits.softmax(1).view(-1, crops, logits.shape[1]).mean(1)
    return F.nll_loss(probs.clamp_min(1e-12).log(), y, reduction="sum"), probs.argmax(1)
