"""Model size and cost as the paper counts them (Table 1, Table 6).

``count_macs`` uses ``torch.utils.flop_counter.FlopCounterMode``, which counts 2 FLOPs per
multiply-add of convolutions and matrix products; the paper's "FLOPs" in Table 1 are multiply-adds,
so we halve it. BN, ReLU, pooling and additions are not counted, as in the paper.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_params", "count_macs", "count_weighted_layers"]


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (Table 6 '#params'); buffers such as BN running stats are not parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@torch.no_grad()
def count_macs(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Multiply-adds of one forward pass on a single input of ``input_shape`` (C, H, W) or (N, C, H, W)."""
    shape = tuple(input_shape)
    if len(shape) == 3:
        shape = (1, *shape)
    if len(shape) != 4:
        raise ValueError(f"input_shape must be (C, H, W) or (N, C, H, W), got {tuple(input_shape)}")
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        counter = FlopCounterMode(display=False)
        with counter:
            model(torch.zeros(shape, device=device))
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2


def count_weighted_layers(model: nn.Module) -> int:
    """Convolutional and fully-connected layers on the main path: the depth the paper names a net by.

    Projection shortcuts (the ``downsample`` convs of options B/C) are not counted, as in the paper.
    """
    shortcut_convs = {
        id(m)
        for name, mod in model.named_modules()
        if name.endswith("downsample")
        for m in mod.modules()
    }
    return sum(
        1
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear)) and id(m) not in shortcut_convs
    )
